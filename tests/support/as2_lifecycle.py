"""Helpers for tests/integration/test_as2_lifecycle.py: certificates from the demo CA with a
chosen start (rotations), a partner server that records every request and can hang (a
gateway dying mid-send), hostile AS2 bodies (a zlib bomb, a BER nesting bomb in a real envelope, a
multipart/signed of thousands of parts), and a raw HTTP client that speaks
``Expect: 100-continue`` itself."""

from __future__ import annotations

import asyncio
import datetime as dt
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder
from pyasn1_modules import rfc3274, rfc5652

from gateway.security.as2_write import HttpMessage
from gateway.security.pki import Issued, issue_signing_certificate
from tests.support.as2 import encrypt, p7m_entity, sign, signed_multipart
from tests.support.as2_peer import Peer, Receiver, receiver
from tests.support.cms import indefinite
from tests.support.harness import demo_pki


def demo_ca() -> Issued:
    folder = demo_pki()
    return Issued(x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes()),
                  serialization.load_pem_private_key(  # type: ignore[arg-type]
                      (folder / "ca.key").read_bytes(), None))


def issued_since(name: str, days_ago: float, *, days: int = 825) -> Issued:
    """An RSA certificate of the demo CA valid from ``days_ago`` days before now: a rotation's
    old and new certificates differ in notBefore by whole days, not by the second."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    return issue_signing_certificate(demo_ca(), name, kind="rsa-2048", now=start, days=days)


# --- a partner's server that records every request, and can hang -------------------------


@dataclass
class Recorded:
    message_id: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recording(Receiver):
    """A Receiver that keeps every request as it came; while ``hang`` is set it never answers
    (the gateway's POST stays in flight)."""

    requests: list[Recorded] = field(default_factory=list)
    hang: bool = False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Recorded(request.headers.get("Message-ID", ""),
                                      dict(request.headers), body))
        self.arrived.set()
        if self.hang:
            await asyncio.Event().wait()  # cancelled at cleanup, never answered
        return await super().handle(request)


@asynccontextmanager
async def recording_receiver(peer: Peer, port: int = 0) -> AsyncIterator[Recording]:
    async with receiver(peer, port, kind=Recording) as taker:
        assert isinstance(taker, Recording)
        yield taker


# --- hostile bodies ------------------------------------------------------------------------


def with_body(message: HttpMessage, content_type: str, body: bytes) -> HttpMessage:
    """``message``'s AS2 headers (names, Message-ID, receipt options) over another body."""
    headers = tuple((n, v) for n, v in message.headers if n.lower() != "content-type")
    return HttpMessage((*headers, ("Content-Type", content_type)), body)


def zlib_bomb(inflated: int) -> bytes:
    """A CompressedData (RFC 3274) whose zlib content inflates to ``inflated`` zero bytes,
    DER (about 1/1000 of that on the wire)."""
    compressed = rfc3274.CompressedData()
    compressed["version"] = 0
    compressed["compressionAlgorithm"]["algorithm"] = rfc3274.id_alg_zlibCompress
    encap = compressed["encapContentInfo"]
    encap["eContentType"] = rfc5652.id_data
    squeezer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [squeezer.compress(chunk) for _ in range(inflated >> 20)]
    encap["eContent"] = b"".join(parts) + squeezer.flush()
    info = rfc5652.ContentInfo()
    info["contentType"] = rfc3274.id_ct_compressedData
    info["content"] = encoder.encode(compressed)
    return bytes(encoder.encode(info))


def signed_bomb(peer: Peer, inflated: int) -> tuple[str, bytes]:
    """(Content-Type, body): a multipart/signed, validly signed by ``peer``, over a
    compressed-data entity that is a zlib bomb (the signature holds; the inflating must
    stop)."""
    inner = p7m_entity(zlib_bomb(inflated), "compressed-data")
    return signed_multipart(inner, sign(inner, peer.issued))


def nested_envelope(entity: bytes, recipient: x509.Certificate, depth: int) -> bytes:
    """A real EnvelopedData of ``entity`` for ``recipient``, in BER with indefinite lengths
    (X.690 section 8.1.3.6), whose encryptedContent is a constructed OCTET STRING nested
    ``depth`` times (X.690 section 8.1.3.6: each segment may itself be constructed).  A few
    levels are valid BER that decrypts; a hundred thousand make a recursive reader recurse
    a hundred thousand times."""
    der = encrypt(entity, recipient)
    info, _ = der_decoder.decode(der, asn1Spec=rfc5652.ContentInfo())
    enveloped, _ = der_decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.EnvelopedData())
    ciphertext = bytes(enveloped["encryptedContentInfo"]["encryptedContent"])
    ber = indefinite(der, 50)
    # [0] IMPLICIT OCTET STRING, primitive (RFC 5652 section 6.1), left as DER by indefinite
    primitive = b"\x80" + _length(len(ciphertext)) + ciphertext
    assert ber.count(primitive) == 1
    nested = (b"\xa0\x80" + b"\x24\x80" * depth + b"\x04" + _length(len(ciphertext))
              + ciphertext + b"\x00\x00" * (depth + 1))
    return ber.replace(primitive, nested)


def _length(size: int) -> bytes:
    """A DER length (X.690 section 8.1.3)."""
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def many_parts(peer: Peer, entity: bytes, count: int) -> tuple[str, bytes]:
    """(Content-Type, body): a multipart/signed of ``count`` parts: the entity, its valid
    signature, then ``count - 2`` more (RFC 1847 section 2.1 allows exactly two)."""
    boundary = "b-many"
    content_type, body = signed_multipart(entity, sign(entity, peer.issued), boundary=boundary)
    closing = f"\r\n--{boundary}--\r\n".encode()
    assert body.endswith(closing)
    extra = b"".join(f"\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\npart {n}".encode()
                     for n in range(count - 2))
    return content_type, body[:-len(closing)] + extra + closing


# --- Expect: 100-continue, by hand -----------------------------------------------------------


@dataclass
class ContinueExchange:
    """What a client that asks ``Expect: 100-continue`` saw."""

    #: The status of the first response (100, or a final one without the body being sent).
    first: int
    body_sent: bool
    #: The final status and body (the first one when it was final).
    status: int
    body: bytes


async def post_expecting_continue(port: int, headers: list[tuple[str, str]], body: bytes,
                                  *, wait: float = 20.0) -> ContinueExchange:
    """POST /as2 with ``Expect: 100-continue`` (RFC 9110 section 10.1.1): the headers, then
    the body only once the server said 100 Continue.  ``wait`` bounds how long the first
    response may take (a server that waits for the body instead would hang the test)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = ["POST /as2 HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
                "Expect: 100-continue", f"Content-Length: {len(body)}",
                *(f"{n}: {v}" for n, v in headers if n.lower() != "content-length")]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        first, rest = await asyncio.wait_for(_response_head(reader), wait)
        if first != 100:
            return ContinueExchange(first, False, first, await _rest(reader, rest))
        writer.write(body)
        await writer.drain()
        status, rest = await asyncio.wait_for(_response_head(reader), wait)
        return ContinueExchange(100, True, status, await _rest(reader, rest))
    finally:
        writer.close()


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), fields


async def _rest(reader: asyncio.StreamReader, fields: dict[str, Any]) -> bytes:
    length = fields.get("content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    return await reader.read()
