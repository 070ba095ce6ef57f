"""The console's Attention page through ``gateway serve`` (SFTP, PostgreSQL, RabbitMQ; issue
14): held and unroutable messages, parked submissions and parked dispatches listed; an
operator releases a held message (delivered), replays an unroutable one after a routing change
(routed and delivered), a parked submission (decided) and a parked dispatch (published); each
action once (a second POST does nothing and says so) and audited once; a viewer refused on
every action; the Partners page shows fingerprints and no private material."""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from tests.integration.test_console_observability import scrape, value
from tests.integration.test_replay_dead_letters import genuine_dead_letter
from tests.support.console import Browser, console_gateway
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import (
    AMQP_URL,
    Gateway,
    add_delivery,
    database_url,
)

pytestmark = pytest.mark.integration
#: A guard against a hang, not a measure.
PATIENCE_SECONDS = 30.0
FISH_AND_HOLD = (
    "rules:\n  - name: fish\n    match: {hs_chapters: ['03']}\n    deliver: [customs]\n"
    "  - name: hold-large\n    match:\n"
    "      customs_value_at_least: {amount: 50000, currency: USD}\n    hold: true\n")
EVERY_DECLARATION = ("  - name: customs-sees-all\n    match: {kind: CustomsDeclaration}\n"
                     "    deliver: [customs]\n")


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for running in console_gateway(tmp_path):
        yield running


def replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


async def applied(gateway: Gateway, needle: str) -> None:
    """Wait until the routing table holding ``needle`` is the one applied."""
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            rows = await gateway.fetch("SELECT body FROM routing_versions"
                                       " WHERE status = 'applied' ORDER BY id DESC LIMIT 1")
            if rows and needle in rows[0]["body"]:
                return
            await asyncio.sleep(0.1)


async def until(gateway: Gateway, sql: str, *args: object) -> None:
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            if await gateway.fetch(sql, *args):
                return
            await asyncio.sleep(0.1)


async def client_of(gateway: Gateway, name: str) -> Browser:
    assert gateway.running is not None and gateway.running.console_port is not None
    client = Browser(f"http://127.0.0.1:{gateway.running.console_port}")
    assert (await client.log_in(name))[0] == 303
    return client


async def act(client: Browser, path: str, data: dict[str, str]) -> tuple[int, str]:
    token = await client.token("/attention")
    status, page, _ = await client.post(path, data, token=token)
    return status, html.unescape(page)


async def message_id(gateway: Gateway, document: str) -> int:
    (row,) = await gateway.fetch("SELECT id, status FROM messages WHERE document_ref = $1",
                                 document)
    return int(row["id"])


async def audited(gateway: Gateway, action: str) -> int:
    return len(await gateway.fetch("SELECT 1 FROM console_audit WHERE action = $1", action))


async def test_release_a_held_message_and_replay_an_unroutable_one(gateway: Gateway) -> None:
    routing = gateway.files.root / "routing.yaml"
    replace(routing, FISH_AND_HOLD)
    await applied(gateway, "hold-large")
    big = [s.replace("MOA+40:1000:USD", "MOA+40:90000:USD")
           for s in cusdec_message(declaration="BIG-1", commodity_codes=("0303",))]
    await gateway.upload("van-a", "big.edi", interchange([big], sender="VANA",
                                                         control_reference="C1"))
    await gateway.answers("van-a", "big.edi")
    await gateway.upload("van-a", "nobody.edi", interchange(
        [cusdec_message(declaration="NOBODY-1", commodity_codes=("8471",))], sender="VANA",
        control_reference="C2"))
    await gateway.answers("van-a", "nobody.edi")
    held, lost = await message_id(gateway, "BIG-1"), await message_id(gateway, "NOBODY-1")
    assert len(await gateway.queue("customs", expect=0)) == 0
    metrics = await scrape(gateway)  # what the page lists, /metrics counts (alerting)
    assert value(metrics, "gateway_messages_waiting_for_ops", status="held") == 1
    assert value(metrics, "gateway_messages_waiting_for_ops", status="unroutable") == 1

    viewer, operator = await client_of(gateway, "vera"), await client_of(gateway, "otto")
    try:
        status, page, _ = await viewer.get("/attention")
        assert status == 200
        assert f'id="release-message-{held}"' not in page  # a viewer sees no action
        assert "BIG-1" in page and "NOBODY-1" in page and "no routing rule matched" in page
        assert "held by hold-large<" in page
        assert f"/timeline?message={held}" in page
        page = (await operator.get("/attention"))[1]
        assert f'id="release-message-{held}"' in page and f'id="replay-message-{lost}"' in page

        for path, data in (("/attention/release", {"message": str(held)}),
                           ("/attention/replay", {"what": "message", "id": str(lost)})):
            status, _ = await act(viewer, path, data)
            assert status == 403
        assert await audited(gateway, "message_released") == 0

        # a double click: two POSTs at once, one acts (the row is locked), the other says so
        outcomes = sorted(await asyncio.gather(*(
            act(operator, "/attention/release", {"message": str(held)}) for _ in range(2))))
        (status, page), (again, second) = outcomes
        assert status == 200 and f"released message {held} (BIG-1) to customs" in page
        assert again == 409 and "not held" in second and "nothing done" in second
        assert len(await gateway.queue("customs", expect=1)) == 1
        status, page = await act(operator, "/attention/release", {"message": str(held)})
        assert status == 409 and "not held" in page
        assert await audited(gateway, "message_released") == 1

        status, page = await act(operator, "/attention/replay",
                                 {"what": "message", "id": str(lost)})
        assert status == 200 and "still no rule matches" in page  # not routable yet
        assert await audited(gateway, "message_replayed") == 1  # the attempt is recorded

        replace(routing, FISH_AND_HOLD + EVERY_DECLARATION)
        await applied(gateway, "customs-sees-all")
        status, page = await act(operator, "/attention/replay",
                                 {"what": "message", "id": str(lost)})
        assert status == 200 and "(NOBODY-1): routed to customs" in page
        assert len(await gateway.queue("customs", expect=2)) == 2
        status, page = await act(operator, "/attention/replay",
                                 {"what": "message", "id": str(lost)})
        assert status == 409 and "not unroutable" in page
        assert await audited(gateway, "message_replayed") == 2
        (row,) = await gateway.fetch("SELECT status FROM messages WHERE id = $1", lost)
        assert row["status"] == "routed"
        # Released and replayed, each keeps the AEO status its deliveries carried (no
        # trader registered here: false), as a message routed at once does (the report).
        kept = await gateway.fetch("SELECT id, aeo FROM messages WHERE id = ANY($1)",
                                   [held, lost])
        assert {r["id"]: r["aeo"] for r in kept} == {held: False, lost: False}
        page = (await viewer.get("/attention?list=unroutable"))[1]
        assert "NOBODY-1" not in page
    finally:
        await viewer.close()
        await operator.close()


async def test_replay_a_parked_submission_and_a_parked_dispatch(gateway: Gateway) -> None:
    data = interchange([cusdec_message(declaration="PARK-1")], sender="VANA",
                       control_reference="P1")
    await gateway.upload("van-a", "first.edi", data)
    await gateway.answers("van-a", "first.edi")
    assert len(await gateway.queue("customs", expect=1)) == 1
    (first,) = await gateway.fetch("SELECT id FROM interchanges WHERE file_name = 'first.edi'")
    rows = await gateway.fetch(
        "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256, status,"
        " last_error) VALUES ('van-a', 'sftp', 'parked.edi', $1, '\\x00', 'parked',"
        " 'StoreUnavailable: the test parked it') RETURNING id",
        data.replace(b"P1", b"P2").replace(b"PARK-1", b"PARK-2"))
    parked = int(rows[0]["id"])
    connection = await asyncpg.connect(database_url(gateway.files.database))
    try:
        await add_delivery(connection, first["id"], "port", "parked-key-1")
        await connection.execute("UPDATE outbox SET parked_at = now(), last_error = 'refused'"
                                 " WHERE dispatch_key = 'parked-key-1'")
    finally:
        await connection.close()

    operator = await client_of(gateway, "otto")
    try:
        page = (await operator.get("/attention"))[1]
        assert "StoreUnavailable: the test parked it" in page and "amqp to port" in page
        status, page = await act(operator, "/attention/replay",
                                 {"what": "submission", "id": str(parked)})
        assert status == 200 and "now waiting to be decided again" in page
        await until(gateway, "SELECT 1 FROM interchanges WHERE id = $1 AND status = 'accepted'",
                    parked)
        status, page = await act(operator, "/attention/replay",
                                 {"what": "submission", "id": str(parked)})
        assert status == 409 and "not parked" in page

        status, page = await act(operator, "/attention/replay",
                                 {"what": "dispatches", "id": str(first["id"])})
        assert status == 200 and "is sent again" in page
        assert len(await gateway.queue("port", expect=1)) == 1
        status, page = await act(operator, "/attention/replay",
                                 {"what": "dispatches", "id": str(first["id"])})
        assert status == 409 and "no parked dispatch" in page
        assert await audited(gateway, "submission_replayed") == 1
        assert await audited(gateway, "dispatches_replayed") == 1
        status, page = await act(operator, "/attention/replay", {"what": "everything",
                                                                 "id": "1"})
        assert status == 400
    finally:
        await operator.close()


async def test_partners_page_shows_fingerprints_and_no_private_material(
        gateway: Gateway) -> None:
    viewer = await client_of(gateway, "vera")
    try:
        status, page, _ = await viewer.get("/partners")
    finally:
        await viewer.close()
    assert status == 200
    assert 'id="partner-van-a"' in page and 'id="partner-van-b"' in page
    assert page.count("ssh-ed25519 SHA256:") == 2
    assert "PRIVATE" not in page and "BEGIN" not in page


async def test_replay_a_dead_letter_once(gateway: Gateway) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    operator = await client_of(gateway, "otto")
    try:
        channel = await connection.channel()
        submission, letter = await genuine_dead_letter(gateway, channel)
        page = html.unescape((await operator.get("/attention"))[1])
        assert f"<code>{letter}</code>" in page and f"#{submission}" in page
        assert 'id="replay-dead-1"' in page
        outcomes = sorted(await asyncio.gather(*(
            act(operator, "/attention/replay-dead", {"agency": "customs", "letter": letter})
            for _ in range(2))))
        (status, page), (again, second) = outcomes
        assert status == 200 and "published to customs again" in page
        assert again == 409 and "nothing published" in second
        assert len(await gateway.queue("customs", expect=1)) == 1
        assert await audited(gateway, "dead_letter_replayed") == 1
        page = html.unescape((await operator.get("/attention"))[1])
        assert f"<code>{letter}</code>" not in page
    finally:
        await operator.close()
        await connection.close()
