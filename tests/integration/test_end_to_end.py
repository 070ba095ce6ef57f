"""A CUSDEC dropped over SFTP reaches the agencies' queues and a CONTRL comes back."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from gateway.wire.edifact.envelope import read_interchange
from tests.support.edifact import cusdec, interchange
from tests.support.harness import Gateway

SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "samples"


def sample(name: str) -> bytes:
    """A demo sample, sent as the test partner (UNB sender VANA)."""
    return (SAMPLES / name).read_bytes().replace(b"DEMOVAN", b"VANA")


def uci_action(contrl: bytes) -> str:
    segments = read_interchange(contrl).messages[0].segments
    return next(s for s in segments if s.tag == "UCI").value(4)


async def test_food_reaches_customs_and_quarantine(gateway: Gateway) -> None:
    data = cusdec(("0303.55", "8438.50"), sender="VANA", control_reference="FISH1")
    await gateway.upload("van-a", "fish.edi", data)
    (answer,) = await gateway.answers("van-a", "fish.edi")
    assert uci_action(answer) == "7"
    customs = await gateway.queue("customs", expect=1)
    quarantine = await gateway.queue("quarantine", expect=1)
    assert len(customs) == 1 and len(quarantine) == 1
    message = customs[0]
    body = json.loads(message.body)
    assert body["kind"] == "CustomsDeclaration" and body["declaration_number"] == "DEC-1"
    assert message.type == "CustomsDeclaration"
    assert message.delivery_mode == 2  # persistent
    assert message.headers == {**message.headers, "agency": "customs", "partner": "van-a",
                               "message_type": "CUSDEC"}
    assert message.message_id and message.message_id != quarantine[0].message_id
    assert message.correlation_id == quarantine[0].correlation_id
    kinds = [r["kind"] for r in await gateway.fetch("SELECT kind FROM events ORDER BY id")]
    assert kinds[:2] == ["received", "accepted"]
    assert kinds.count("delivered") == 2 and "acknowledged" in kinds


async def test_machinery_reaches_customs_only(gateway: Gateway) -> None:
    await gateway.upload("van-a", "lathe.edi", cusdec(("8458.11",), sender="VANA"))
    (answer,) = await gateway.answers("van-a", "lathe.edi")
    assert uci_action(answer) == "7"
    assert len(await gateway.queue("customs", expect=1)) == 1
    assert await gateway.queue("quarantine", expect=0) == []


async def test_a_partners_contrl_is_recorded_against_our_answer(gateway: Gateway) -> None:
    await gateway.upload("van-a", "decl.edi", cusdec(sender="VANA", control_reference="D1"))
    (answer,) = await gateway.answers("van-a", "decl.edi")
    our_reference = read_interchange(answer).header.control_reference
    contrl = interchange([[
        "UNH+1+CONTRL:D:3:UN", f"UCI+{our_reference}+SWGATEWAY+VANA:ZZZ+7", "UNT+3+1",
    ]], sender="VANA", control_reference="ACK9")
    await gateway.upload("van-a", "ack.edi", contrl)
    for _ in range(200):
        rows = await gateway.fetch(
            "SELECT interchange_id, detail::text FROM events WHERE kind = 'partner_acknowledged'")
        if rows:
            break
        await asyncio.sleep(0.05)
    (row,) = rows
    assert row["interchange_id"] == int(our_reference)
    assert '"action": "7"' in row["detail"]
    # the declaration's own delivery, nothing more
    assert len(await gateway.queue("customs", expect=1)) == 1
    outbox = os.listdir(gateway.files.mailbox("van-a") / "outbox")
    assert not any(name.startswith("ack.edi") for name in outbox)  # never answered


async def test_what_an_agency_rejects_goes_to_its_dead_letter_queue(gateway: Gateway) -> None:
    import aio_pika

    from tests.support.harness import AMQP_URL

    await gateway.upload("van-a", "decl.edi", cusdec(("8471",), sender="VANA"))
    await gateway.answers("van-a", "decl.edi")
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(gateway.files.queue_prefix + "customs")
        for _ in range(200):
            message = await queue.get(no_ack=False, fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.05)
        assert message is not None
        await message.reject(requeue=False)  # the agency cannot take it
        dead = await channel.get_queue(gateway.files.queue_prefix + "customs.dead")
        for _ in range(200):
            kept = await dead.get(no_ack=True, fail=False)
            if kept is not None:
                break
            await asyncio.sleep(0.05)
        assert kept is not None and kept.message_id == message.message_id
    finally:
        await connection.close()


async def test_cargo_reports_and_container_events_reach_their_agencies(
        gateway: Gateway) -> None:
    """CUSCAR, CODECO and IFTMIN go through their mapping files like CUSDEC."""
    gate_in, booking = sample("codeco-d96b.edi"), sample("iftmin-d96b.edi")
    manifest = interchange([[
        "UNH+M1+CUSCAR:D:96B:UN", "BGM+85+MANIFEST-1+9", "DTM+137:202612030852:203",
        "NAD+CA+EVE:172:20", "TDT+20+031W+1++EVE:172:20", "LOC+60+TWKHH::6",
        "CNI+1", "RFF+BM:BL-0001", "LOC+9+CNSHA::6", "LOC+11+TWKHH::6",
        "GID+1+10:CT", "FTX+AAA+++FROZEN FISH", "MEA+AAE+G+KGM:1250.5", "CST++030355:122",
        "UNT+15+M1"]], sender="VANA", control_reference="MANI1")
    for name, data in (("gate.edi", gate_in), ("booking.edi", booking),
                       ("manifest.edi", manifest)):
        await gateway.upload("van-a", name, data)
        (answer,) = await gateway.answers("van-a", name)
        assert uci_action(answer) == "7", answer.decode("latin-1")
    port = await gateway.queue("port", expect=3)
    kinds = sorted(json.loads(m.body)["kind"] for m in port)
    assert kinds == ["CargoReport", "ContainerEvent", "TransportInstruction"]
    (customs,) = await gateway.queue("customs", expect=1)
    report = json.loads(customs.body)
    assert report["kind"] == "CargoReport" and report["report_number"] == "MANIFEST-1"
    (consignment,) = report["consignments"]
    assert consignment["transport_document"] == "BL-0001"
    assert consignment["place_of_loading"] == "CNSHA"
    assert consignment["items"][0]["commodity_code"] == "030355"
    event = next(json.loads(m.body) for m in port if m.type == "ContainerEvent")
    assert event["event"] == "gate_in" and event["equipment"][0]["id"] == "HMMU1234567"
