"""Answers by AS2, end to end over real HTTP: a partner with an AS2 url gets its CONTRL signed
and encrypted, POSTed to its server; the MDN is verified and its MIC compared; a partner down
for a while gets it later, never dropped; an MDN that does not confirm what was sent keeps
the answer queued; with asynchronous receipts the MDN comes back to our endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app.as2_receiver import LocalReceiver
from gateway.config.load import load_config
from gateway.transports.as2 import start_listener
from tests.integration.test_answers import FISH, Scene, adapters, gateway_command
from tests.support.agencies import agency_settings, provisioned_agencies, unique_users
from tests.support.as2_peer import (
    Receiver,
    as2_url,
    free_port,
    gateway_certificate,
    new_peer,
    receiver,
    send,
)
from tests.support.edifact import cusdec
from tests.support.harness import (
    DEMO_AGENCIES,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    gateway_fixture,
    start_gateway,
    write_files,
)

VANA = new_peer("VANA")


def options(root: Path, port: int, **gateway: object) -> dict[str, Any]:
    return {"settings": {"as2": json.dumps({"id": "SWGATEWAY", "port": 0, **gateway})},
            "partner_as2": {"van-a": VANA.settings(
                root, url=f"http://127.0.0.1:{port}/as2")}}


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[tuple[Gateway, Receiver]]:
    port = free_port()
    async with receiver(VANA, port) as taker:
        async for gateway in gateway_fixture(tmp_path, **options(tmp_path, port)):
            yield gateway, taker


url = as2_url


async def sent(gateway: Gateway) -> list[Any]:
    return await gateway.fetch("SELECT message_id, disposition, mic_matched, mdn_signed"
                               " FROM as2_sent ORDER BY sent_at")


async def test_an_as2_cusdec_is_routed_and_its_contrl_comes_back_by_as2(
        scene: tuple[Gateway, Receiver]) -> None:
    gateway, taker = scene
    response = await send(url(gateway), VANA.message(cusdec(sender="VANA"),
                                                     filename="decl.edi")[0])
    assert response.mdn().report.disposition.text() == "processed"
    assert len(await gateway.queue("customs", expect=1)) == 1
    await taker.wait(1)
    (contrl,) = taker.received
    # signed by the gateway (verified by read_as2 against its certificate), encrypted to us
    assert contrl.signed and contrl.encrypted and contrl.encryption == "aes256-cbc"
    assert b"UNH+" in contrl.payload and b"CONTRL" in contrl.payload
    assert contrl.filename is not None and contrl.filename.endswith(".contrl.edi")
    await gateway.settled()
    (row,) = await sent(gateway)
    assert (row["disposition"], row["mic_matched"], row["mdn_signed"]) == (
        "processed", True, True)
    # nothing in its SFTP outbox: the answer went by AS2
    assert not list(gateway.files.mailbox("van-a").glob("outbox/*.contrl.edi"))
    events = await gateway.fetch("SELECT detail FROM events WHERE kind = 'as2_sent'")
    detail = json.loads(events[0]["detail"])
    assert detail["mdn"] == "processed" and detail["as2_message_id"] == row["message_id"]
    # `gateway track` tells the story: taken by AS2, answered by AS2, confirmed
    code, story = await gateway_command(gateway, "track", "ICR0001")
    assert code == 0, story
    assert "AS2 received" in story and "signed, encrypted" in story
    assert f"as {row['message_id']}" in story and "MDN processed (signed)" in story


async def test_a_partner_down_for_a_while_gets_its_answer_later(
        scene: tuple[Gateway, Receiver]) -> None:
    gateway, taker = scene
    taker.failures = [503, 503]
    await send(url(gateway), VANA.message(cusdec(sender="VANA"))[0])
    await taker.wait(1, seconds=60)
    assert taker.failures == []
    await gateway.settled()
    rows = await gateway.fetch("SELECT attempts, dispatched_at FROM outbox"
                               " WHERE channel = 'as2'")
    assert len(rows) == 1 and rows[0]["dispatched_at"] is not None
    assert rows[0]["attempts"] == 2
    # one Message-ID for every try: the partner's duplicate check sees one message
    assert len(await sent(gateway)) == 1


async def test_an_mdn_with_the_wrong_mic_keeps_the_answer_queued(
        scene: tuple[Gateway, Receiver]) -> None:
    gateway, taker = scene
    taker.wrong_mic = True
    await send(url(gateway), VANA.message(cusdec(sender="VANA"))[0])
    await taker.wait(1)
    rows: list[Any] = []
    for _ in range(100):
        rows = await gateway.fetch("SELECT dispatched_at, parked_at, last_error FROM outbox"
                                   " WHERE channel = 'as2'")
        if rows and rows[0]["last_error"]:
            break
        await asyncio.sleep(0.1)
    (row,) = rows
    assert row["dispatched_at"] is None and row["parked_at"] is None
    assert "MIC" in row["last_error"]


async def test_an_asynchronous_mdn_confirms_the_send(tmp_path: Path) -> None:
    port = free_port()
    async with receiver(VANA, port) as taker:
        async for gateway in gateway_fixture(tmp_path, **options(
                tmp_path, port, receipt="async")):
            # the partner POSTs its MDN to our endpoint: public_url is where it is
            await send(url(gateway), VANA.message(cusdec(sender="VANA"))[0])
            await taker.wait(1)
            for _ in range(200):
                rows = await sent(gateway)
                if rows and rows[0]["disposition"] is not None:
                    break
                await asyncio.sleep(0.05)
            (row,) = rows
            assert (row["disposition"], row["mic_matched"]) == ("processed", True)


async def test_the_demo_receiver_stores_what_the_gateway_sends(tmp_path: Path) -> None:
    """`gateway demo as2-receiver`, the partner's server of the README, takes an answer."""
    received = tmp_path / "received"
    taker = LocalReceiver("VANA", VANA.key, [gateway_certificate()], received)
    listener = await start_listener(taker, host="127.0.0.1", port=0, path="/as2")
    try:
        async for gateway in gateway_fixture(tmp_path, **options(tmp_path, listener.port)):
            await send(url(gateway), VANA.message(cusdec(sender="VANA"),
                                                  filename="decl.edi")[0])
            for _ in range(300):
                rows = await sent(gateway)
                if rows and rows[0]["disposition"] is not None:
                    break
                await asyncio.sleep(0.05)
            assert (rows[0]["disposition"], rows[0]["mic_matched"]) == ("processed", True)
            (stored,) = received.iterdir()
            assert stored.name.endswith(".contrl.edi") and b"CONTRL" in stored.read_bytes()
    finally:
        await listener.close()


async def test_an_agencys_decision_goes_back_by_as2_too(tmp_path: Path) -> None:
    """Business answers, not only the CONTRL: customs decides, its CUSRES reaches the
    partner's AS2 server, confirmed by a signed MDN."""
    port = free_port()
    database = await create_database()
    users = unique_users(DEMO_AGENCIES)
    files = write_files(tmp_path, database, agency_settings=agency_settings(users),
                        **options(tmp_path, port))
    config = load_config(files.config_path, environ={})
    async with receiver(VANA, port) as taker, \
            provisioned_agencies(config, {"customs": users["customs"]}) as agencies:
        scene = Scene(await start_gateway(files), agencies, tmp_path)
        try:
            async with adapters(scene, "customs"):
                await send(url(scene.gateway), VANA.message(FISH, filename="fish.edi")[0])
                await taker.wait(2, seconds=60)  # the CONTRL, then customs' CUSRES
            kinds = sorted(p.filename.rsplit(".", 2)[-2] for p in taker.received
                           if p.filename is not None)
            assert "cusres" in kinds and "contrl" in kinds
            cusres = next(p for p in taker.received
                          if p.filename is not None and p.filename.endswith(".cusres.edi"))
            assert b"CUSRES" in cusres.payload and cusres.signed and cusres.encrypted
            await scene.gateway.settled()
            rows = await sent(scene.gateway)
            assert len(rows) >= 2
            assert all(r["disposition"] == "processed" and r["mic_matched"] for r in rows)
        finally:
            await scene.gateway.stop()
            await delete_topology(files, DEMO_AGENCIES)
            await drop_database(database)
