"""A partner's side of AS2 for integration tests: its key and certificate from the tests' demo
CA, messages built and POSTed to the gateway, and a receiver that takes the gateway's answers
and MDNs over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.security.as2 import As2Payload, Mdn, read_as2, read_mdn
from gateway.security.as2_write import HttpMessage, ReceiptRequest, build_mdn, build_message
from gateway.security.pki import Issued, issue_signing_certificate
from gateway.security.signing import SigningKey
from gateway.wire.as2.mic import Mic
from tests.support.harness import Gateway, demo_pki


@dataclass(frozen=True)
class Peer:
    """A partner: its AS2 name and its key, issued by the tests' demo CA."""

    name: str
    issued: Issued

    @property
    def key(self) -> SigningKey:
        return SigningKey(self.issued.certificate, self.issued.private_key)

    def write_certificate(self, root: Path) -> str:
        """Its certificate beside the gateway's files; the name partners.yaml gives."""
        name = f"{self.name.lower()}-as2.crt"
        (root / name).write_bytes(self.issued.certificate_pem)
        return name

    def settings(self, root: Path, **more: object) -> dict[str, object]:
        """Its partners.yaml ``as2:`` settings."""
        return {"id": self.name, "certificates": [self.write_certificate(root)], **more}

    def message(self, payload: bytes, *,
                filename: str = "declaration.edi", message_id: str | None = None,
                encryption: str | None = "aes256-cbc", sign: bool = True,
                compress: bool = False, receipt: ReceiptRequest | None = ReceiptRequest(),  # noqa: B008
                as2_to: str = "SWGATEWAY") -> tuple[HttpMessage, Mic]:
        return build_message(
            payload, filename=filename, content_type="application/EDIFACT",
            as2_from=self.name, as2_to=as2_to,
            message_id=message_id or f"<{uuid.uuid4().hex}@{self.name}>", subject="test",
            signer=self.key if sign else None, digest="sha256",
            recipients=(gateway_certificate(),), encryption=encryption, compress=compress,
            receipt=receipt)


def new_peer(name: str) -> Peer:
    ca_folder = demo_pki()
    ca = Issued(x509.load_pem_x509_certificate((ca_folder / "ca.crt").read_bytes()),
                serialization.load_pem_private_key(  # type: ignore[arg-type]
                    (ca_folder / "ca.key").read_bytes(), None))
    return Peer(name, issue_signing_certificate(ca, name, kind="rsa-2048"))


def gateway_certificate() -> x509.Certificate:
    """The gateway's certificate (every test gateway has the tests' demo PKI)."""
    return x509.load_pem_x509_certificate((demo_pki() / "gateway.crt").read_bytes())


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def mdn(self) -> Mdn:
        """The synchronous MDN, verified against the gateway's certificate."""
        return read_mdn(self.headers, self.body, partner_certificates=[gateway_certificate()])


async def send(url: str, message: HttpMessage) -> Response:
    async with aiohttp.ClientSession() as session, \
            session.post(url, data=message.body, headers=list(message.headers)) as response:
        return Response(response.status, dict(response.headers), await response.read())


@dataclass
class Receiver:
    """A partner's AS2 server: it reads what the gateway sends with the partner's key and
    answers with a signed MDN (or what ``answer`` says); MDNs POSTed to it are kept."""

    peer: Peer
    url: str = ""
    received: list[As2Payload] = field(default_factory=list)
    mdns: list[Mdn] = field(default_factory=list)
    #: HTTP statuses to answer with first (a partner down for a while), then normally.
    failures: list[int] = field(default_factory=list)
    #: A MIC to report instead of the right one (a partner that got something else).
    wrong_mic: bool = False
    #: The disposition its MDNs give (say "processed/warning: duplicate-document").
    disposition: str = "processed"
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    #: Asynchronous MDNs being POSTed back.
    later: list[asyncio.Future[Response]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        headers: Mapping[str, str] = request.headers
        body = await request.read()
        if self.failures:
            return web.Response(status=self.failures.pop(0), text="down for maintenance")
        certificate = gateway_certificate()
        if "multipart/report" in body[:4096].decode("latin-1") or \
                headers.get("Content-Type", "").startswith("multipart/report"):
            self.mdns.append(read_mdn(dict(headers), body, partner_certificates=[certificate]))
            self.arrived.set()
            return web.Response(status=200)
        payload = read_as2(dict(headers), body, keys=[(self.peer.issued.certificate,
                                                       self.peer.issued.private_key)],
                           partner_certificates=[certificate], max_bytes=10_000_000)
        self.received.append(payload)
        self.arrived.set()
        mic = Mic("AAAA", payload.mic.algorithm) if self.wrong_mic else payload.mic
        mdn = build_mdn(original_message_id=headers.get("Message-ID", ""),
                        original_recipient=self.peer.name, as2_from=self.peer.name,
                        as2_to=headers.get("AS2-From", ""),
                        message_id=f"<{uuid.uuid4().hex}@{self.peer.name}>",
                        disposition=self.disposition, mic=mic, text="received",
                        signer=self.peer.key, micalg=payload.options.micalg)
        asynchronous = headers.get("Receipt-Delivery-Option")
        if asynchronous:  # RFC 4130 section 7.3: 200 now, the MDN in a request of its own
            self.later.append(asyncio.ensure_future(send(asynchronous, mdn)))
            return web.Response(status=200)
        return web.Response(status=200, headers=list(mdn.headers), body=mdn.body)

    async def wait(self, count: int, what: str = "received", seconds: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while len(getattr(self, what)) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"{len(getattr(self, what))} of {count} {what} after "
                                     f"{seconds} s")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                continue


def as2_port(gateway: Gateway) -> int:
    """The port of a test gateway's AS2 listener."""
    assert gateway.running is not None and gateway.running.as2_port is not None
    return gateway.running.as2_port


def as2_url(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{as2_port(gateway)}/as2"


@asynccontextmanager
async def receiver(peer: Peer, port: int = 0, *,
                   kind: type[Receiver] = Receiver) -> AsyncIterator[Receiver]:
    """A Receiver (or ``kind`` of one) listening on loopback (``port``, or a free one) at
    /as2."""
    taker = kind(peer)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/as2", taker.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    taker.url = f"http://127.0.0.1:{runner.addresses[0][1]}/as2"
    try:
        yield taker
    finally:
        await runner.cleanup()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
