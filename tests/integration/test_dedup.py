"""Rule 2: a resend is routed once and answered again with the same CONTRL."""

from __future__ import annotations

from tests.support.edifact import cusdec
from tests.support.harness import Gateway


async def test_same_interchange_twice_routes_once_and_answers_twice(gateway: Gateway) -> None:
    data = cusdec(("0303",), sender="VANA", control_reference="DUP1")
    await gateway.upload("van-a", "first.edi", data)
    await gateway.answers("van-a", "first.edi")
    await gateway.upload("van-a", "again.edi", data)
    (first,) = await gateway.answers("van-a", "first.edi")
    (again,) = await gateway.answers("van-a", "again.edi")
    assert again == first
    assert len(await gateway.queue("customs", expect=1, settle=1.0)) == 1
    assert len(await gateway.queue("quarantine", expect=1)) == 1
    statuses = [r["status"] for r in await gateway.fetch(
        "SELECT status FROM interchanges ORDER BY id")]
    assert statuses == ["accepted", "duplicate"]


async def test_same_control_reference_with_other_bytes_is_a_duplicate(gateway: Gateway) -> None:
    await gateway.upload("van-a", "one.edi", cusdec(("8471",), sender="VANA",
                                                    control_reference="REF9"))
    (first,) = await gateway.answers("van-a", "one.edi")
    await gateway.upload("van-a", "two.edi", cusdec(("0101",), sender="VANA",
                                                    control_reference="REF9"))
    (second,) = await gateway.answers("van-a", "two.edi")
    assert second == first
    assert len(await gateway.queue("customs", expect=1, settle=1.0)) == 1
    assert await gateway.queue("quarantine", expect=0) == []
    rows = await gateway.fetch("SELECT summary FROM interchanges WHERE status = 'duplicate'")
    assert "control reference REF9" in rows[0]["summary"]


async def test_the_same_reference_from_another_partner_is_not_a_duplicate(
        gateway: Gateway) -> None:
    await gateway.upload("van-a", "a.edi", cusdec(("8471",), sender="VANA",
                                                  control_reference="SHARED"))
    await gateway.upload("van-b", "b.edi", cusdec(("8471",), sender="VANB",
                                                  control_reference="SHARED"))
    await gateway.answers("van-a", "a.edi")
    await gateway.answers("van-b", "b.edi")
    assert len(await gateway.queue("customs", expect=2)) == 2
