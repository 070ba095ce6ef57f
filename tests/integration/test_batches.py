"""Decisions and dispatches in batches (issue 13) keep what one at a time kept: each submission
all or nothing, one bad submission alone retried and parked, a destination's rows in
decision order."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

from tests.integration.test_poison import postgres_sees_raw_values, wait_for
from tests.support.edifact import cusdec
from tests.support.harness import Gateway

COUNT = 12


async def submit_together(gateway: Gateway, raws: list[bytes]) -> None:
    """Commit the submissions in one statement, so the processor finds them all at once and
    claims them in one batch (an upload at a time would be decided as it arrives)."""
    names = [f"batch{n:02d}.edi" for n in range(len(raws))]
    await gateway.fetch(
        "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256)"
        " SELECT 'van-a', 'sftp', f, r, s FROM unnest($1::text[], $2::bytea[], $3::bytea[])"
        " AS t(f, r, s)", names, raws, [hashlib.sha256(r).digest() for r in raws])


def raws(poison_at: int | None = None) -> list[bytes]:
    return [cusdec(("8471",), sender="VANA", control_reference=(
        "P\x00ISON" if n == poison_at else f"BATCH{n:02d}")) for n in range(COUNT)]


async def test_a_refused_decision_in_a_batch_leaves_the_others_decided(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """The batch's transaction fails on the one value PostgreSQL refuses; each submission is
    then decided on its own: the others at once, the refused one retried alone."""
    with postgres_sees_raw_values(), caplog.at_level(logging.WARNING, "gateway.processor"):
        await submit_together(gateway, raws(poison_at=5))
        decided = await wait_for(lambda: gateway.fetch(
            "SELECT count(*) FROM interchanges WHERE status = 'accepted'"
            " HAVING count(*) = $1", COUNT - 1), "the others are decided", seconds=30)
        assert decided
    rows = await gateway.fetch("SELECT file_name, status, attempts, last_error"
                               " FROM interchanges ORDER BY id")
    poison = rows[5]
    assert poison["status"] == "received" and "PostgreSQL refused" in poison["last_error"]
    assert all(r["status"] == "accepted" and r["attempts"] == 1
               for n, r in enumerate(rows) if n != 5)  # no retry of theirs was needed
    assert any(r.getMessage() == "batch_split" for r in caplog.records)
    await gateway.queue("customs", expect=COUNT - 1)


async def test_a_batch_keeps_each_destinations_order(gateway: Gateway) -> None:
    """Rows collected over a batch of decisions are written in decision order: an agency
    receives the declarations in the order the partner's submissions were taken."""
    await submit_together(gateway, raws())
    got = await gateway.queue("customs", expect=COUNT)
    order = [json.loads(m.body)["source"]["interchange_reference"] for m in got]
    assert order == [f"BATCH{n:02d}" for n in range(COUNT)]
    batched = await gateway.fetch(
        "SELECT count(DISTINCT xmin::text) AS transactions FROM messages")
    assert batched[0]["transactions"] < COUNT  # some were decided together


async def test_resends_in_the_batch_of_their_original_get_its_answer(gateway: Gateway) -> None:
    """Rule 2 inside one batch: the original's answer is among the batch's deferred writes
    (store.deferred) when its resend is decided; the resend still gets that very answer, and
    nothing is routed twice."""
    original = cusdec(("8471",), sender="VANA", control_reference="TWICE")
    other_bytes = cusdec(("0101",), sender="VANA", control_reference="TWICE")
    await submit_together(gateway, [original, original, other_bytes])
    await wait_for(lambda: gateway.fetch(
        "SELECT 1 FROM interchanges HAVING count(*) FILTER (WHERE status = 'received') = 0"),
        "all three decided", seconds=30)
    rows = await gateway.fetch(
        "SELECT i.status, i.summary, i.duplicate_of, a.body FROM interchanges i"
        " JOIN acknowledgements a ON a.interchange_id = i.id ORDER BY i.id")
    assert [r["status"] for r in rows] == ["accepted", "duplicate", "duplicate"]
    assert "same bytes" in rows[1]["summary"]
    assert "control reference TWICE" in rows[2]["summary"]
    assert rows[1]["body"] == rows[2]["body"] == rows[0]["body"]
    assert len(await gateway.queue("customs", expect=1, settle=1.0)) == 1
    batched = await gateway.fetch("SELECT count(DISTINCT xmin::text) AS n FROM interchanges")
    assert batched[0]["n"] == 1  # decided together, in one transaction


async def test_copies_a_resend_and_a_poison_in_one_batch(gateway: Gateway) -> None:
    """The batch is rolled back by the poison after the original claimed its key and the
    copies read its deferred answer; decided again one by one, the original is routed once,
    each copy and the same-key resend answered as duplicates with its answer, the poison
    retried alone."""
    original = cusdec(("8471",), sender="VANA", control_reference="SPLIT")
    resend = cusdec(("0101",), sender="VANA", control_reference="SPLIT")
    poison = cusdec(("8471",), sender="VANA", control_reference="P\x00ISON")
    with postgres_sees_raw_values():
        await submit_together(gateway, [original, original, poison, original, resend])
        await wait_for(lambda: gateway.fetch(
            "SELECT 1 FROM interchanges HAVING count(*) FILTER (WHERE status = 'received')"
            " = 1"), "all but the poison decided", seconds=30)
    rows = await gateway.fetch(
        "SELECT i.status, a.body FROM interchanges i"
        " LEFT JOIN acknowledgements a ON a.interchange_id = i.id ORDER BY i.id")
    assert [r["status"] for r in rows] == ["accepted", "duplicate", "received", "duplicate",
                                           "duplicate"]
    assert rows[0]["body"] is not None
    assert all(rows[n]["body"] == rows[0]["body"] for n in (1, 3, 4))
    assert len(await gateway.queue("customs", expect=1, settle=1.0)) == 1
