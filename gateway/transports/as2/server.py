"""The AS2 endpoint: an aiohttp server that takes POSTs on one path and hands each request's
headers and body to the inbox (app/as2_inbound.py).

The body is read here, up to the limit of the partner the request names (AS2-From): a
Content-Length over it is refused before a byte is read, and a chunked body as soon as it
passes it (HTTP 413).  aiohttp's own 1 MiB ``client_max_size`` applies only to its
``read()``, which is not used: a partner's limit is its own (partners.yaml as2.max_bytes)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import HttpVersion11, web

from gateway.logs import event

log = logging.getLogger("gateway.as2")


@dataclass(frozen=True, slots=True)
class Reply:
    """The HTTP response to one request."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def text(cls, status: int, text: str) -> Reply:
        return cls(status, (("Content-Type", "text/plain; charset=utf-8"),),
                   text.encode("utf-8") + b"\n")


class Inbox(Protocol):
    def limit_for(self, as2_from: str | None) -> int:
        """The largest body read from a request with this AS2-From."""

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """The response to one AS2 request."""


@dataclass
class As2Listener:
    runner: web.AppRunner
    #: The bound ports: plain HTTP, then HTTPS when configured.
    port: int
    https_port: int | None

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_listener(inbox: Inbox, *, host: str, port: int, path: str,
                         https: tuple[str, int, ssl.SSLContext] | None = None) -> As2Listener:
    """Listen on ``host:port`` (and the HTTPS ``(host, port, context)``) for POSTs to
    ``path``."""
    app = web.Application(handler_args={"max_field_size": 16 * 1024})
    handler = _Handler(inbox)
    app.router.add_post(path, handler.post, expect_handler=handler.expect)
    app.router.add_get(path, handler.get)
    # In-flight requests get a few seconds to finish at shutdown (their payloads commit
    # before their MDN; one cut short is sent again by the partner).
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1])  # the port given may be 0 (tests): the one taken
    https_port = None
    if https is not None:
        tls = web.TCPSite(runner, https[0], https[1], ssl_context=https[2])
        await tls.start()
        https_port = int(runner.addresses[-1][1])
    return As2Listener(runner, bound, https_port)


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def get(self, request: web.Request) -> web.Response:
        return web.Response(status=405, headers={"Allow": "POST"},
                            text="this is an AS2 endpoint (RFC 4130): POST messages here\n")

    async def expect(self, request: web.Request) -> web.Response | None:
        """``Expect: 100-continue`` (RFC 9110 section 10.1.1): a body over the sender's limit
        is refused before it is sent, not invited and then refused; otherwise aiohttp's own
        answer, 100 Continue."""
        limit = self._inbox.limit_for(request.headers.get("AS2-From"))
        length = request.content_length
        if length is not None and length > limit:
            return self._too_large(request, limit, length)
        if request.version < HttpVersion11:
            return None  # RFC 9110 section 10.1.1: ignored in an HTTP/1.0 request
        if request.headers.get("Expect", "").lower() != "100-continue":
            raise web.HTTPExpectationFailed(text="only Expect: 100-continue is understood\n")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # as aiohttp's own handler: the response is still to come
        return None

    async def post(self, request: web.Request) -> web.Response:
        limit = self._inbox.limit_for(request.headers.get("AS2-From"))
        length = request.content_length
        if length is not None and length > limit:
            return self._too_large(request, limit, length)
        body = await _read_body(request, limit)
        if body is None:
            return self._too_large(request, limit, None)
        reply = await self._inbox.receive(request.headers, body)
        return web.Response(status=reply.status, headers=list(reply.headers),
                            body=reply.body)

    def _too_large(self, request: web.Request, limit: int, length: int | None) -> web.Response:
        event(log, "as2_too_large", level=logging.WARNING,
              as2_from=request.headers.get("AS2-From", "")[:128], limit=limit, length=length,
              peer=request.remote)
        return web.Response(status=413, text=f"the message is larger than the {limit} bytes "
                            "this gateway takes from this sender; nothing was kept\n",
                            headers={"Connection": "close"})


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is over ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
