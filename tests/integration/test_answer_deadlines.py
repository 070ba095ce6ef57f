"""An agency that never decides is overdue once its deadline passes: an event in the
declaration's history, shown by ``gateway track``, and an alarm; one that decides in time is
not (real gateway, RabbitMQ and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.cli import main
from tests.support.edifact import cusdec, cusdec_message, interchange
from tests.support.harness import (
    DEMO_AGENCIES,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    start_gateway,
    write_files,
)


@pytest.fixture
async def deadlines(tmp_path: Path) -> AsyncIterator[Gateway]:
    """Quarantine must decide within half a second; customs has no deadline."""
    database = await create_database()
    files = write_files(tmp_path, database,
                        agency_settings={"quarantine": {"answer_within_seconds": 0.5}},
                        settings={"overdue_check_seconds": 0.1})
    gateway = await start_gateway(files)
    try:
        yield gateway
    finally:
        await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def overdue_events(gateway: Gateway, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 20
    while True:
        rows = await gateway.fetch(
            "SELECT detail ->> 'agency' AS agency, message_id FROM events"
            " WHERE kind = 'answer_overdue' ORDER BY id")
        if len(rows) >= count or time.monotonic() > deadline:
            return [dict(r) for r in rows]
        await asyncio.sleep(0.1)


async def test_an_agency_that_never_answers_is_overdue_once(deadlines: Gateway) -> None:
    gateway = deadlines
    await gateway.upload("van-a", "fish.edi", cusdec(("0303.55",), sender="VANA",
                                                    control_reference="LATE1"))
    await gateway.answers("van-a", "fish.edi")
    (late,) = await overdue_events(gateway, 1)
    assert late["agency"] == "quarantine"  # customs has no deadline: never overdue
    await asyncio.sleep(0.5)  # several more checks: still marked once
    assert len(await gateway.fetch("SELECT 1 FROM events WHERE kind = 'answer_overdue'")) == 1
    (state,) = await gateway.fetch(
        "SELECT state, overdue_at IS NOT NULL AS overdue FROM agency_states"
        " WHERE agency = 'quarantine'")
    assert (state["state"], state["overdue"]) == ("awaiting", True)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = await asyncio.to_thread(
            main, ["--config", str(gateway.files.config_path), "track", "LATE1"])
    assert code == 0
    story = out.getvalue()
    assert "OVERDUE" in story and "quarantine has not decided within 0.5 s" in story
    assert "quarantine awaiting (overdue)" in story and "customs awaiting" in story


async def test_a_message_not_yet_delivered_is_not_overdue(deadlines: Gateway) -> None:
    """The deadline runs from the delivery RabbitMQ confirmed, not from the decision: a
    message still waiting in the outbox (the agency's queue full, the broker down) is the
    gateway's delay, not the agency's."""
    gateway = deadlines
    await gateway.upload("van-a", "fish.edi", cusdec(("0303.55",), sender="VANA"))
    await gateway.answers("van-a", "fish.edi")
    await overdue_events(gateway, 1)
    (row,) = await gateway.fetch(
        "SELECT s.message_id FROM agency_states s WHERE s.agency = 'quarantine'")
    # The same message to quarantine again, as an outbox row never dispatched: one statement,
    # so the watch (every 0.1 s) never sees the mark cleared while the delivery still stands.
    await gateway.fetch(
        "WITH undelivered AS (UPDATE outbox SET dispatched_at = NULL,"
        " next_attempt_at = 'infinity' WHERE destination = 'quarantine' RETURNING 1)"
        " UPDATE agency_states SET overdue_at = NULL")
    await asyncio.sleep(1.0)
    assert await gateway.fetch(
        "SELECT 1 FROM agency_states WHERE message_id = $1 AND overdue_at IS NOT NULL",
        row["message_id"]) == []


async def test_a_cancelled_declaration_is_not_overdue_its_cancellation_is(
        deadlines: Gateway) -> None:
    """The trader cancels the declaration it sent: the agency has the cancellation to decide,
    and only that is awaited (the cancellation follows the original to quarantine)."""
    gateway = deadlines
    original = cusdec_message("1", ("0303.55",), declaration="DEC-9")
    cancellation = cusdec_message("2", ("0303.55",), declaration="DEC-9", function="1")
    await gateway.upload("van-a", "both.edi", interchange([original, cancellation],
                                                          sender="VANA"))
    await gateway.answers("van-a", "both.edi")
    (late,) = await overdue_events(gateway, 1)
    await asyncio.sleep(0.5)  # the original's deadline passed several checks ago
    (message,) = await gateway.fetch("SELECT id FROM messages WHERE position = 2")
    assert late == {"agency": "quarantine", "message_id": message["id"]}
    assert len(await gateway.fetch("SELECT 1 FROM events WHERE kind = 'answer_overdue'")) == 1
