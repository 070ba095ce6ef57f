"""The AS2 endpoint and the AS2 relay against a hostile partner and an unlucky operator, over
real HTTP into a real in-process gateway: what the partner sees, and that nothing accepted is
lost, doubled or answered to the wrong partner (DESIGN rules 1-6)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.security.as2_write import HttpMessage, ReceiptRequest
from tests.support.as2_peer import (
    Peer,
    Receiver,
    as2_port,
    as2_url,
    free_port,
    new_peer,
    receiver,
    send,
)
from tests.support.edifact import cusdec
from tests.support.harness import (
    DEMO_AGENCIES,
    Gateway,
    create_database,
    database_url,
    delete_topology,
    drop_database,
    gateway_fixture,
    start_gateway,
    write_files,
)
from tests.support.proxy import TcpProxy

VANA = new_peer("VANA")
VANB = new_peer("VANB")


def as2_options(root: Path, *, gateway: dict[str, object] | None = None,
                a: dict[str, object] | None = None,
                b: dict[str, object] | None = None) -> dict[str, Any]:
    """Two AS2 partners: van-a (VANA) and van-b (VANB), each with its own certificate."""
    return {"settings": {"as2": json.dumps({"id": "SWGATEWAY", "port": 0, **(gateway or {})})},
            "partner_as2": {"van-a": VANA.settings(root, **(a or {})),
                            "van-b": VANB.settings(root, **(b or {}))}}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for running in gateway_fixture(tmp_path, **as2_options(tmp_path)):
        yield running


port, url = as2_port, as2_url


async def interchanges(gateway: Gateway) -> list[Any]:
    return await gateway.fetch("SELECT id, partner_id FROM interchanges ORDER BY id")


async def raw_post(gateway: Gateway, head: list[tuple[bytes, bytes]], body: bytes,
                   *, length: bool = True) -> tuple[int, bytes]:
    """One POST written byte for byte (header values no client library would send);
    the status and the response body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port(gateway))
    try:
        lines = [b"POST /as2 HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
        lines += [name + b": " + value for name, value in head]
        if length:
            lines.append(b"Content-Length: " + str(len(body)).encode())
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def encoded(message: HttpMessage, **replace: bytes) -> list[tuple[bytes, bytes]]:
    """The message's headers as bytes, some replaced by raw values."""
    out = []
    for name, value in message.headers:
        new = replace.get(name.lower().replace("-", "_"))
        out.append((name.encode(), value.encode() if new is None else new))
    return out


async def still_serves(gateway: Gateway, peer: Peer = VANA) -> None:
    """Another, ordinary message is taken afterwards: the gateway is up for everyone."""
    response = await send(url(gateway), peer.message(cusdec(sender=peer.name))[0])
    assert response.status == 200
    assert response.mdn().report.disposition.text().startswith("processed")


# --- our infrastructure failing: 503, nothing half-recorded, the retry is taken -----------


async def test_the_database_down_during_a_post_is_a_503_and_the_retry_is_taken(
        tmp_path: Path) -> None:
    database = await create_database()
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    files = write_files(tmp_path, database, database_url_override=database_url(
        database).replace(":5432/", f":{proxy.port}/"), **as2_options(tmp_path))
    gateway = await start_gateway(files)
    try:
        message, _ = VANA.message(cusdec(sender="VANA"), message_id="<outage-1@VANA>")
        await proxy.cut()
        response = await send(url(gateway), message)
        # ours, not theirs (rule 4): "send it again later", not a 500 or a negative MDN
        assert response.status == 503, (response.status, response.body[:200])
        assert b"send it again" in response.body
        await proxy.restore()
        assert await interchanges(gateway) == []  # nothing recorded half
        again = await send(url(gateway), message)  # the partner's retry, same Message-ID
        assert again.status == 200
        assert again.mdn().report.disposition.text() == "processed"
        assert len(await interchanges(gateway)) == 1
    finally:
        if proxy.port and proxy._server is None:
            await proxy.restore()
        await gateway.stop()
        await proxy.close()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


# --- header abuse: every value a partner sends is hostile (rule 6) ------------------------


@pytest.mark.parametrize("message_id", [
    b"<nul\x00byte@VANA>", "<caf\u00e9-\u6771\u4eac@VANA>".encode(),
    b"<" + b"x" * 10_000 + b"@VANA>",
    b"\x00\x00\x00", b'"<quoted@VANA>"',
], ids=["nul", "non-ascii", "10kb", "only-nul", "quoted"])
async def test_a_hostile_message_id_is_answered_and_stops_no_one(
        gateway: Gateway, message_id: bytes) -> None:
    message, _ = VANA.message(cusdec(sender="VANA"))
    status, body = await raw_post(gateway, encoded(message, message_id=message_id),
                                  message.body)
    assert status in (200, 400), (status, body[:300])
    assert status != 500
    await still_serves(gateway)
    await still_serves(gateway, VANB)


@pytest.mark.parametrize(("as2_from", "as2_to"), [
    (b'"VANA"', b'"SWGATEWAY"'),  # RFC 4130 section 6.2: quoted names are the same names
    (b"VANA\x00", b"SWGATEWAY"),
    (b"V\xc3\xa4NA", b"SWGATEWAY"),
    (b"A" * 15_000, b"SWGATEWAY"),
])
async def test_hostile_as2_names_are_answered_not_crashed_on(
        gateway: Gateway, as2_from: bytes, as2_to: bytes) -> None:
    message, _ = VANA.message(cusdec(sender="VANA"))
    status, body = await raw_post(gateway, encoded(message, as2_from=as2_from,
                                                   as2_to=as2_to), message.body)
    if as2_from == b'"VANA"':
        assert status == 200 and b"processed" in body and b"error" not in body
        assert len(await interchanges(gateway)) == 1
    else:
        assert status in (200, 400), (status, body[:300])
        assert await interchanges(gateway) == []
    await still_serves(gateway, VANB)


async def test_a_duplicated_as2_from_cannot_borrow_another_partners_limit_or_name(
        gateway: Gateway) -> None:
    """Two AS2-From headers: the first names the partner for the limit and for the
    signature check alike; VANB's signature under VANA's name is refused."""
    message, _ = VANB.message(cusdec(sender="VANB"))
    head = [(n, v) for n, v in encoded(message) if n.lower() != b"as2-from"]
    head += [(b"AS2-From", b"VANA"), (b"AS2-From", b"VANB")]
    status, body = await raw_post(gateway, head, message.body)
    assert status == 200 and b"authentication-failed" in body
    assert await interchanges(gateway) == []


@pytest.mark.parametrize("content_type", [
    None, b"multipart/signed", b"multipart/signed; boundary=", b"application/pkcs7-mime",
    b"multipart/report", b"\x00", b"multipart/signed; boundary=\"" + b"b" * 5000 + b"\"",
], ids=["missing", "no-boundary", "empty-boundary", "no-smime-type", "report-no-boundary",
        "nul", "huge-boundary"])
async def test_a_broken_content_type_gets_a_negative_answer_not_a_500(
        gateway: Gateway, content_type: bytes | None) -> None:
    message, _ = VANA.message(cusdec(sender="VANA"), encryption=None)
    head = [(n, v) for n, v in encoded(message) if n.lower() != b"content-type"]
    if content_type is not None:
        head.append((b"Content-Type", content_type))
    status, body = await raw_post(gateway, head, message.body)
    assert status in (200, 400), (status, body[:300])
    if status == 200:
        assert b"processed/error" in body or b"error" in body
    assert await interchanges(gateway) == []
    await still_serves(gateway)


# --- a partner acting as another (rule 5) -------------------------------------------------


async def test_a_valid_signature_under_another_partners_name_is_refused(
        gateway: Gateway) -> None:
    """VANB's own valid certificate, AS2-From VANA: authentication-failed, nothing kept."""
    message, _ = Peer("VANA", VANB.issued).message(cusdec(sender="VANA"))
    response = await send(url(gateway), message)
    assert response.mdn().report.disposition.text() == "processed/error: authentication-failed"
    assert await interchanges(gateway) == []


async def test_dedup_is_per_partner_another_partners_message_id_gets_its_own_mdn(
        gateway: Gateway) -> None:
    shared = "<same-id@everyone>"
    first = await send(url(gateway), VANA.message(cusdec(sender="VANA"),
                                                  message_id=shared)[0])
    second = await send(url(gateway), VANB.message(cusdec(sender="VANB"),
                                                   message_id=shared)[0])
    assert first.status == second.status == 200
    assert second.body != first.body  # never VANA's MDN to VANB
    mdn = second.mdn()
    assert mdn.report.disposition.text() == "processed"
    assert dict(second.headers)["AS2-To"] == "VANB"
    rows = await interchanges(gateway)
    assert sorted(r["partner_id"] for r in rows) == ["van-a", "van-b"]


async def test_an_mdn_for_another_partners_message_is_not_taken(gateway: Gateway) -> None:
    """VANB signs an MDN naming a Message-ID we sent to VANA: 400, nothing recorded."""
    from gateway.security.as2_write import build_mdn
    from gateway.wire.as2.mic import Mic

    submission = (await gateway.fetch(
        "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256, status)"
        " VALUES ('van-a', 'as2', 'x', 'x', '\\x00', 'received') RETURNING id"))[0]["id"]
    await gateway.fetch("INSERT INTO as2_sent (message_id, outbox_id, interchange_id,"
                        " partner_id, mic) VALUES ('<ours-to-vana@SWGATEWAY>', 1, $1,"
                        " 'van-a', 'AAAA, sha256')", submission)
    mdn = build_mdn(original_message_id="<ours-to-vana@SWGATEWAY>", original_recipient="VANB",
                    as2_from="VANB", as2_to="SWGATEWAY", message_id="<mdn@VANB>",
                    disposition="processed", mic=Mic("AAAA", "sha256"), text="got it",
                    signer=VANB.key, micalg="sha256")
    response = await send(url(gateway), mdn)
    assert response.status == 400 and b"no message of ours to van-b" in response.body
    (row,) = await gateway.fetch("SELECT mdn_at FROM as2_sent")
    assert row["mdn_at"] is None


# --- SSRF: never POST to a URL an unauthenticated request names ---------------------------


@pytest.mark.parametrize("case", ["unknown partner", "bad signature", "garbage body"])
async def test_a_refused_message_asking_for_an_async_mdn_is_answered_in_the_response(
        gateway: Gateway, case: str) -> None:
    async with receiver(VANA) as internal:  # stands for an internal URL the attacker names
        receipt = ReceiptRequest(async_url=internal.url)
        if case == "unknown partner":
            message, _ = new_peer("MALLORY").message(b"x", receipt=receipt)
        elif case == "bad signature":
            message, _ = Peer("VANA", VANB.issued).message(b"x", receipt=receipt)
        else:
            good, _ = VANA.message(b"x", receipt=receipt)
            message = HttpMessage(good.headers, b"garbage" * 100)
        response = await send(url(gateway), message)
        assert response.status == 200
        assert "processed/error" in response.mdn().report.disposition.text()
        await gateway.settled()
        rows = await gateway.fetch("SELECT count(*) AS n FROM outbox WHERE channel = 'as2'")
        assert rows[0]["n"] == 0
        assert internal.mdns == [] and internal.received == []


# --- concurrency: nothing doubled, one never holds back the others ------------------------


async def test_the_same_message_id_ten_times_at_once_is_one_interchange(
        gateway: Gateway) -> None:
    message, _ = VANA.message(cusdec(sender="VANA"), message_id="<race@VANA>")
    responses = await asyncio.gather(*(send(url(gateway), message) for _ in range(10)))
    assert [r.status for r in responses] == [200] * 10
    dispositions = {r.mdn().report.disposition.text() for r in responses}
    assert dispositions == {"processed"}
    assert len(await interchanges(gateway)) == 1
    assert len(await gateway.queue("customs", expect=1)) == 1


async def test_a_chunked_body_over_the_limit_is_a_413(tmp_path: Path) -> None:
    async for gateway in gateway_fixture(tmp_path, **as2_options(tmp_path,
                                                                  a={"max_bytes": 4096})):
        message, _ = VANA.message(cusdec(sender="VANA"), encryption=None)
        head = [*encoded(message), (b"Transfer-Encoding", b"chunked")]
        chunk = b"x" * 1024
        body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(64))
        status, answer = await raw_post(gateway, head, body + b"0\r\n\r\n", length=False)
        assert status == 413 and b"4096" in answer
        # a Content-Length that lies (says small, sends more) is no way around it
        status, _ = await raw_post(gateway, [
            *encoded(message), (b"Content-Length", b"10")], message.body, length=False)
        assert status in (200, 400)
        assert await interchanges(gateway) == []
        await still_serves(gateway, VANB)


async def test_a_slow_client_holds_back_no_other_partner(gateway: Gateway) -> None:
    """A slowloris: a request whose body never finishes; other partners are still served."""
    message, _ = VANA.message(cusdec(sender="VANA"))
    _, writer = await asyncio.open_connection("127.0.0.1", port(gateway))
    head = b"\r\n".join([b"POST /as2 HTTP/1.1", b"Host: x",
                         *(n + b": " + v for n, v in encoded(message)),
                         b"Content-Length: %d" % len(message.body)])
    writer.write(head + b"\r\n\r\n" + message.body[:100])
    await writer.drain()
    slow = [asyncio.create_task(asyncio.open_connection("127.0.0.1", port(gateway)))
            for _ in range(20)]
    others = await asyncio.gather(*slow)
    for _, other in others:
        other.write(head + b"\r\n\r\n")
    try:
        await still_serves(gateway, VANB)
        await still_serves(gateway, VANA)
    finally:
        writer.close()
        for _, other in others:
            other.close()
    assert len(await interchanges(gateway)) == 2


async def test_many_big_posts_at_once_leave_the_gateway_answering_sftp_and_as2(
        gateway: Gateway) -> None:
    """30 concurrent 2 MB garbage POSTs: each refused, and meanwhile an SFTP upload and
    another partner's AS2 message are taken."""
    message, _ = VANA.message(b"x", encryption=None)
    garbage = HttpMessage(message.headers, b"A" * 2_000_000)
    flood = [asyncio.create_task(send(url(gateway), garbage)) for _ in range(30)]
    await gateway.upload("van-b", "decl.edi", cusdec(("0303",), sender="VANB"))
    await still_serves(gateway, VANB)
    results = await asyncio.gather(*flood)
    assert {r.status for r in results} <= {200, 400}
    assert all(b"processed/error" in r.body for r in results if r.status == 200)
    (answer,) = await gateway.answers("van-b", "decl.edi")
    assert answer.startswith((b"UNA", b"UNB"))


# --- outbound: a hostile or broken partner server -----------------------------------------


class Hostile(Receiver):
    """A partner's AS2 server that misbehaves as ``mode`` says; otherwise a Receiver."""

    mode: str = "normal"
    hung: asyncio.Event | None = None

    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        from gateway.security.as2 import read_as2
        from gateway.security.as2_write import build_mdn
        from tests.support.as2_peer import gateway_certificate

        body = await request.read()
        if self.mode == "hang":
            self.received.append(None)  # type: ignore[arg-type]
            self.arrived.set()
            await asyncio.Event().wait()  # never answers
        if self.mode == "huge":
            self.received.append(None)  # type: ignore[arg-type]
            self.arrived.set()
            return web.Response(status=200, body=b"x" * 50_000_000)
        if self.mode == "redirect":
            self.received.append(None)  # type: ignore[arg-type]
            self.arrived.set()
            raise web.HTTPFound(location=self.url.replace("/as2", "/internal"))
        payload = read_as2(dict(request.headers), body, keys=[
            (self.peer.issued.certificate, self.peer.issued.private_key)],
            partner_certificates=[gateway_certificate()], max_bytes=10_000_000)
        self.received.append(payload)
        self.arrived.set()
        signer = VANB.key if self.mode == "wrong key" else self.peer.key
        original = "<someone-else@SWGATEWAY>" if self.mode == "other id" \
            else request.headers["Message-ID"]
        mdn = build_mdn(original_message_id=original, original_recipient=self.peer.name,
                        as2_from=self.peer.name, as2_to="SWGATEWAY", message_id="<m@p>",
                        disposition="processed", mic=payload.mic, text="ok", signer=signer,
                        micalg=payload.options.micalg)
        return web.Response(status=200, headers=list(mdn.headers),
                            body=mdn.body)


async def hostile_server(peer: Peer, mode: str) -> tuple[Hostile, Any]:
    from aiohttp import web

    taker = Hostile(peer)
    taker.mode = mode
    internal: list[bytes] = []

    async def internal_url(request: web.Request) -> web.Response:
        internal.append(await request.read())
        return web.Response(status=200)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/as2", taker.handle)
    app.router.add_route("*", "/internal", internal_url)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", free_port())
    await site.start()
    taker.url = f"http://127.0.0.1:{runner.addresses[0][1]}/as2"
    taker.internal = internal  # type: ignore[attr-defined]
    return taker, runner


async def last_error(gateway: Gateway, partner: str) -> Any:
    for _ in range(300):
        rows = await gateway.fetch("SELECT dispatched_at, parked_at, last_error FROM outbox"
                                   " WHERE channel = 'as2' AND destination = $1", partner)
        if rows and rows[0]["last_error"]:
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no failed send to {partner} recorded")


@pytest.mark.parametrize("mode", ["huge", "redirect", "wrong key", "other id"])
async def test_a_hostile_partner_server_keeps_the_answer_queued(
        tmp_path: Path, mode: str) -> None:
    taker, runner = await hostile_server(VANA, mode)
    try:
        async for gateway in gateway_fixture(tmp_path, **as2_options(
                tmp_path, a={"url": taker.url})):
            await send(url(gateway), VANA.message(cusdec(sender="VANA"))[0])
            await taker.wait(1)
            row = await last_error(gateway, "van-a")
            # not confirmed: the answer stays queued for a retry, not dropped, not parked
            assert row["dispatched_at"] is None and row["parked_at"] is None, dict(row)
            assert taker.internal == []  # type: ignore[attr-defined]  # no redirect followed
            await still_serves(gateway, VANB)
    finally:
        await runner.cleanup()


async def test_a_partner_that_never_answers_does_not_hold_back_another(
        tmp_path: Path) -> None:
    hanging, runner = await hostile_server(VANA, "hang")
    try:
        async with receiver(VANB) as fine:
            async for gateway in gateway_fixture(tmp_path, **as2_options(
                    tmp_path, gateway={"send_timeout_seconds": 600},
                    a={"url": hanging.url}, b={"url": fine.url})):
                await send(url(gateway), VANA.message(cusdec(sender="VANA"))[0])
                await hanging.wait(1)  # the gateway's POST to VANA hangs from now on
                await send(url(gateway), VANB.message(cusdec(sender="VANB"))[0])
                await fine.wait(1, seconds=30)  # VANB's CONTRL: 570 s before VANA's timeout
                # and whatever VANB sends later, by SFTP too, is answered while VANA hangs
                await gateway.upload("van-b", "d.edi", cusdec(("0303",), sender="VANB",
                                                              control_reference="ICR0002"))
                await fine.wait(2, seconds=30)
                assert len(hanging.received) == 1  # still hanging: tried once, in flight
    finally:
        await runner.cleanup()
