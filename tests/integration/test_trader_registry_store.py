"""The trader registry's store under load and contention (migration 0018's version trigger):
an import costs a few version bumps whatever its size, and an import racing a suspension
finishes both instead of one being aborted by PostgreSQL's deadlock detector."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.model.traders import TrustedTrader
from gateway.store import traders as store

TRADERS = [TrustedTrader(f"T{i:06d}", "x", True, frozenset({"van-a"})) for i in range(20_000)]


async def _version(pool: Any) -> int:
    return int(await pool.fetchval("SELECT version FROM trader_registry_version"))


async def test_an_import_bumps_the_version_a_few_times_not_once_per_row(pool: Any) -> None:
    before = await _version(pool)
    started = time.monotonic()
    await store.replace_all(pool, TRADERS)
    await store.replace_all(pool, TRADERS)  # again: every row an update
    elapsed = time.monotonic() - started
    # One INSERT per row fired the statement trigger twice per row: 40,002 bumps of the one
    # version row in one transaction, 16 s for these 20,000 traders (100,000 passed the 60 s
    # command timeout); now 3 statements per import, 0.3 s.
    assert await _version(pool) - before <= 8
    assert elapsed < 10, elapsed
    assert await pool.fetchval("SELECT count(*) FROM traders") == len(TRADERS)


async def _waiting(pool: Any, count: int) -> None:
    """Until ``count`` sessions wait on a lock."""
    for _ in range(500):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()")
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} sessions never waited on a lock")


async def test_an_import_racing_a_suspension_finishes_both(pool: Any) -> None:
    few = TRADERS[:100]
    await store.replace_all(pool, few)
    # Hold the version row so that the interleaving is the unlucky one every time: the import
    # queues for the version first, then the suspension of a trader the import will update.
    async with pool.acquire() as holder:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM trader_registry_version FOR UPDATE")
        importing = asyncio.create_task(store.replace_all(pool, few))
        await _waiting(pool, 1)
        suspending = asyncio.create_task(store.suspend(pool, few[-1].id, "ops", "audit"))
        await _waiting(pool, 2)
        await transaction.commit()
    # Before: the import took the version (its DELETE's trigger) and then wanted the trader's
    # row; the suspension held that row and wanted the version: 'deadlock detected'.
    await asyncio.wait_for(importing, 30)
    assert await asyncio.wait_for(suspending, 30) is not None
    entry = await store.entry(pool, few[-1].id)
    assert entry is not None and entry.suspension is not None


async def test_a_file_that_leaves_a_suspended_trader_out_does_not_lift_its_suspension(
        pool: Any) -> None:
    suspended, other = TRADERS[0], TRADERS[1]
    await store.replace_all(pool, [suspended, other])
    assert await store.suspend(pool, suspended.id, "ops", "audit") is not None
    await store.replace_all(pool, [other])  # a partial nightly file
    await store.replace_all(pool, [suspended, other])
    entry = await store.entry(pool, suspended.id)
    assert entry is not None and entry.suspension is not None, "lifted with no reinstate"
    assert (entry.suspension.by, entry.suspension.reason) == ("ops", "audit")
    # A reinstatement in between is kept as well: the trader comes back trusted.
    assert await store.reinstate(pool, suspended.id, "ops") is not None
    await store.replace_all(pool, [other])
    await store.replace_all(pool, [suspended, other])
    entry = await store.entry(pool, suspended.id)
    assert entry is not None and entry.suspension is None
