"""Bad input gets a rejecting answer in the outbox and reaches no queue."""

from __future__ import annotations

import pytest

from gateway.wire.edifact.envelope import read_interchange
from tests.support.edifact import cusdec, cusdec_message, interchange
from tests.support.harness import Gateway


def uci(contrl: bytes) -> list[str]:
    segment = next(s for s in read_interchange(contrl).messages[0].segments if s.tag == "UCI")
    return [segment.value(i) for i in range(4, 7)]


def ucm(contrl: bytes) -> list[str]:
    segment = next(s for s in read_interchange(contrl).messages[0].segments if s.tag == "UCM")
    return [segment.value(i) for i in range(3, 6)]


async def assert_nothing_routed(gateway: Gateway) -> None:
    assert await gateway.fetch("SELECT id FROM outbox WHERE channel = 'amqp'") == []
    assert await gateway.queue("customs", expect=0) == []
    assert await gateway.queue("quarantine", expect=0) == []


@pytest.mark.parametrize(
    ("name", "data", "level", "expected"),
    [
        ("unt-count.edi", interchange([cusdec_message(unt_count=3)], sender="VANA"),
         ucm, ["4", "29", "UNT"]),
        ("unz-reference.edi", cusdec(sender="VANA", unz_reference="WRONG"),
         uci, ["4", "28", "UNZ"]),
        ("not-my-sender.edi", cusdec(sender="VANB"), uci, ["4", "23", "UNB"]),
    ],
)
async def test_envelope_errors_get_a_rejecting_contrl(gateway: Gateway, name: str, data: bytes,
                                                      level: object, expected: list[str]) -> None:
    await gateway.upload("van-a", name, data)
    (answer,) = await gateway.answers("van-a", name)
    assert level(answer) == expected  # type: ignore[operator]
    await assert_nothing_routed(gateway)
    (row,) = await gateway.fetch("SELECT status, raw FROM interchanges")
    assert row["status"] == "rejected" and bytes(row["raw"]) == data  # nothing lost


async def test_random_bytes_get_a_readable_report(gateway: Gateway) -> None:
    await gateway.upload("van-a", "noise.bin", bytes(range(256)) * 4)
    (answer,) = await gateway.answers("van-a", "noise.bin")
    text = answer.decode()
    assert "rejected" in text and "noise.bin" in text and "UNA or UNB" in text
    await assert_nothing_routed(gateway)
