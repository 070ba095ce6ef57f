"""Migration 0016 keeps the clearance report's milestones on narrow rows (agency_states
.delivered_at, messages.aeo) and fills them in for the rows stored before it, from their
outbox rows: the report over a filled store (bench/console_fill.py, rows shaped like the
pipeline's) is the same from the backfilled columns as from the columns written as the gateway
writes them, and a message with no outbox row left stays unknown."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench.console_fill import fill
from gateway.store import reports
from tests.support.harness import create_database, database_url, drop_database

MIGRATION = (Path(__file__).resolve().parents[2] / "gateway" / "store" / "migrations"
             / "0016_clearance_milestones.sql")
DECLARATIONS = 3000  # 43 minutes of traffic up to now, one every 0.864 s


@pytest.fixture
async def filled() -> AsyncIterator[Any]:
    name = await create_database()
    try:
        await fill(database_url(name), DECLARATIONS, lambda _: None)
        connection = await asyncpg.connect(database_url(name))
        try:
            yield connection
        finally:
            await connection.close()
    finally:
        await drop_database(name)


async def _report(connection: Any) -> list[reports.ClearanceRow]:
    now = dt.datetime.now(dt.UTC)
    return await reports.clearance_times(connection, now - dt.timedelta(hours=2),
                                         now + dt.timedelta(minutes=1))


async def _forget_and_backfill(connection: Any) -> None:
    """The store as it was before 0016 (the columns empty), then the migration again (its
    ADD COLUMN IF NOT EXISTS leaves the columns as they are; its UPDATEs fill them)."""
    await connection.execute("UPDATE agency_states SET delivered_at = NULL;"
                             " UPDATE messages SET aeo = NULL")
    async with connection.transaction():
        await connection.execute(MIGRATION.read_text())


async def test_the_backfill_gives_the_report_the_gateway_written_columns_give(
        filled: Any) -> None:
    written = await _report(filled)
    aeo = {r.value: r.declarations for r in written if r.dimension == "aeo"}
    assert set(aeo) == {"true", "false"} and aeo["true"] > 100  # one in seven
    customs = next(r for r in written if (r.dimension, r.value) == ("agency", "customs"))
    delivered = {s.name: s for s in customs.stages}["accepted_to_delivered"]
    assert delivered.count == customs.declarations > 2000 and (delivered.p50 or 0) > 0
    await _forget_and_backfill(filled)
    assert await _report(filled) == written


async def test_a_message_without_its_deliveries_is_unknown_not_guessed(filled: Any) -> None:
    gone = await filled.fetchval(
        "WITH d AS (DELETE FROM outbox WHERE channel = 'amqp' AND message_id % 11 = 0"
        " RETURNING message_id) SELECT count(DISTINCT message_id) FROM d")
    assert gone > 100
    await _forget_and_backfill(filled)
    assert await filled.fetchval(
        "SELECT count(*) FROM agency_states WHERE delivered_at IS NULL") == 2 * gone
    assert await filled.fetchval(
        "SELECT count(*) FROM messages WHERE status = 'routed' AND aeo IS NULL") == gone
    rows = await _report(filled)
    unknown = next(r for r in rows if (r.dimension, r.value) == ("aeo", "unknown"))
    assert unknown.declarations == gone
    customs = next(r for r in rows if (r.dimension, r.value) == ("agency", "customs"))
    delivered = {s.name: s for s in customs.stages}["accepted_to_delivered"]
    assert delivered.count == customs.declarations - gone
