"""A CUSDEC dropped over SFTP reaches the agencies' queues and a CONTRL comes back."""

from __future__ import annotations

import json

from gateway.wire.edifact.envelope import read_interchange
from tests.support.edifact import cusdec
from tests.support.harness import Gateway


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
