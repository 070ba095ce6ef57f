"""Attacks on the AS2 unwrapping processes (gateway/app/as2_unwrap.py) over real HTTP: what
anyone can send under a partner's AS2-From is unwrapped before the sender is authenticated,
so what it costs there must not hold back the partner's own messages (DESIGN rule 6)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import DecompressionFailed
from gateway.security.as2_write import HttpMessage
from gateway.security.compressed import decompress
from tests.integration.test_as2_endpoint import VANA, as2_options, interchanges
from tests.support.as2_peer import as2_url, send
from tests.support.edifact import cusdec
from tests.support.harness import Gateway, gateway_fixture


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for running in gateway_fixture(tmp_path, **as2_options(tmp_path)):
        yield running


def _tlv(tag: int, value: bytes) -> bytes:
    size = len(value)
    if size < 0x80:
        return bytes([tag, size]) + value
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + value


def many_recipients(count: int) -> bytes:
    """An EnvelopedData (RFC 5652 section 6.1) listing ``count`` tiny KeyTransRecipientInfos
    (38 bytes each, a dozen BER elements), none of them ours."""
    rsa = _tlv(0x30, bytes.fromhex("06092a864886f70d010101"))
    ktri = _tlv(0x30, b"\x02\x01\x00" + _tlv(0x30, _tlv(0x30, b"") + b"\x02\x01\x01") + rsa
                + b"\x04\x01\x00")
    aes_cbc = _tlv(0x30, bytes.fromhex("0609608648016503040102") + b"\x04\x10" + bytes(16))
    content = _tlv(0x30, bytes.fromhex("06092a864886f70d010701") + aes_cbc
                   + b"\x80\x10" + bytes(16))
    enveloped = _tlv(0x30, b"\x02\x01\x00" + _tlv(0x31, ktri * count) + content)
    return _tlv(0x30, bytes.fromhex("06092a864886f70d010703") + _tlv(0xA0, enveloped))


def hostile(number: int) -> HttpMessage:
    """Under 256 KiB (the small lane, where every partner's ordinary messages go), no
    signature needed: decryption comes first."""
    body = base64.encodebytes(many_recipients(6_000))
    assert len(body) < 256 * 1024
    return HttpMessage((
        ("AS2-From", "VANA"), ("AS2-To", "SWGATEWAY"), ("AS2-Version", "1.2"),
        ("Message-ID", f"<hostile-{number}@VANA>"),
        ("Disposition-Notification-To", "mailto:x@example.com"),
        ("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data"),
        ("Content-Transfer-Encoding", "base64")), body)


async def test_unauthenticated_bodies_that_are_costly_to_decode_hold_back_no_partner(
        gateway: Gateway) -> None:
    """Sixteen EnvelopedDatas of 6,000 RecipientInfos each (a dozen BER elements apiece, ~1 s
    of pyasn1 each before MAX_RECIPIENTS was checked: 16 took both small-lane processes for
    ~8 s) are refused decryption-failed, and VANA's own message, sent behind them, is taken
    within a few seconds.  The bound on BER elements (security.cms.check_elements) refuses
    them before anything is decoded."""
    url = as2_url(gateway)
    flood = [asyncio.create_task(send(url, hostile(n))) for n in range(16)]
    await asyncio.sleep(0.3)  # their bodies are sent and queued for the small lane
    message, _ = VANA.message(cusdec(sender="VANA"), message_id="<own@VANA>")
    started = time.monotonic()
    response = await send(url, message)
    waited = time.monotonic() - started
    assert response.mdn().report.disposition.text() == "processed"
    assert waited < 3.0, f"VANA's own message waited {waited:.1f} s behind the flood"
    for answered in await asyncio.gather(*flood):
        report = answered.mdn().report
        assert report.disposition.text() == "processed/error: decryption-failed"
    assert len(await interchanges(gateway)) == 1


def test_a_compressed_content_streamed_in_a_million_chunks_is_refused_unread() -> None:
    """RFC 3274 CompressedData whose eContent is a constructed OCTET STRING of 1,000,000
    one-byte chunks (4 MiB): pyasn1 took 7.4 s to build it before zlib refused the bytes."""
    chunks = b"\x04\x01A" * 1_000_000
    content = (b"\x30\x80" + bytes.fromhex("06092a864886f70d010701") + b"\xa0\x80\x24\x80"
               + chunks + bytes(6))
    compressed = (b"\x30\x80\x02\x01\x00" + _tlv(0x30, bytes.fromhex("060b2a864886f70d0109100308"))
                  + content + bytes(2))
    message = (b"\x30\x80" + bytes.fromhex("060b2a864886f70d0109100109") + b"\xa0\x80"
               + compressed + bytes(4))
    started = time.thread_time()
    with pytest.raises(DecompressionFailed, match="BER elements"):
        decompress(message, 64 * 1024 * 1024)
    assert time.thread_time() - started < 1.0
