"""The trader registry (C-TPAT / AEO authorisations and the partners each trader is registered
to), read by the processor and changed by ops: replaced whole by an import, one trader
suspended or reinstated at once.  Every change bumps ``trader_registry_version`` (a statement
trigger, migration 0018), which the processor reads in the statement that claims its batch."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.model.traders import AeoRegistry, Suspension, TrustedTrader
from gateway.store.database import translated_errors

_ALL = ("SELECT v.version, t.id, t.name, t.aeo, t.partners, t.programme, t.tier, t.status,"
        " t.valid_from, t.valid_until, t.mutual_recognition, t.suspended_at, t.suspended_by,"
        " t.suspension_reason"
        " FROM trader_registry_version v LEFT JOIN traders t ON t.aeo")


async def registry(pool: Any) -> AeoRegistry:
    """The authorised economic operators and the registry's version, in one statement (so
    the version names exactly what was read)."""
    async with translated_errors("reading the trader registry"), pool.acquire() as connection:
        rows = await connection.fetch(_ALL)
    traders = {str(r["id"]): _trader(r) for r in rows if r["id"] is not None}
    return AeoRegistry(traders, int(rows[0]["version"]) if rows else 0)


def _trader(row: Any) -> TrustedTrader:
    suspension = None if row["suspended_at"] is None else Suspension(
        row["suspended_at"], row["suspended_by"] or "", row["suspension_reason"] or "")
    return TrustedTrader(
        id=row["id"], name=row["name"], aeo=row["aeo"], partners=frozenset(row["partners"]),
        programme=row["programme"], tier=row["tier"], status=row["status"],
        valid_from=row["valid_from"], valid_until=row["valid_until"],
        mutual_recognition=tuple(row["mutual_recognition"]), suspension=suspension)


async def replace_all(pool: Any, traders: list[TrustedTrader]) -> None:
    """``traders`` become the whole registry, in one transaction.  A suspension ops made is
    kept for a trader the new file still lists: importing the programme's file again does
    not lift it (``gateway traders reinstate`` does).

    Three statements whatever the file's size: the rows are copied into a temporary table
    and merged from there.  One INSERT per row (executemany) fired the statement trigger of
    migration 0018 twice per row (an upsert is an INSERT and an UPDATE statement), each a
    new version of the one ``trader_registry_version`` row in the same transaction: 20,000
    traders took 16 s and 100,000 passed the 60 s command timeout.  ``id <> ALL(array)`` was
    quadratic as well."""
    async with translated_errors("importing the trader registry"), pool.acquire() as connection, \
            connection.transaction():
        await _lock_registry(connection)
        await connection.execute(
            "CREATE TEMPORARY TABLE traders_import (id text PRIMARY KEY, name text NOT NULL,"
            " aeo boolean NOT NULL, partners text[] NOT NULL, programme text NOT NULL,"
            " tier text NOT NULL, status text NOT NULL, valid_from date, valid_until date,"
            " mutual_recognition text[] NOT NULL) ON COMMIT DROP")
        await connection.copy_records_to_table(
            "traders_import",
            records=[(t.id, t.name, t.aeo, sorted(t.partners), t.programme, t.tier, t.status,
                      t.valid_from, t.valid_until, list(t.mutual_recognition))
                     for t in traders])
        await connection.execute("ANALYZE traders_import")
        await connection.execute(
            "DELETE FROM traders t WHERE NOT EXISTS"
            " (SELECT 1 FROM traders_import i WHERE i.id = t.id)")
        await connection.execute(
            "INSERT INTO traders (id, name, aeo, partners, programme, tier, status, valid_from,"
            " valid_until, mutual_recognition, updated_at, suspended_at, suspended_by,"
            " suspension_reason)"
            " SELECT i.id, i.name, i.aeo, i.partners, i.programme, i.tier, i.status,"
            " i.valid_from, i.valid_until, i.mutual_recognition, now(), e.at, e.by_whom,"
            " e.reason FROM traders_import i LEFT JOIN (" + _LAST_ACT + ") e"
            " ON e.trader_id = i.id AND e.kind = 'suspended'"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, aeo = excluded.aeo,"
            " partners = excluded.partners, programme = excluded.programme,"
            " tier = excluded.tier, status = excluded.status,"
            " valid_from = excluded.valid_from, valid_until = excluded.valid_until,"
            " mutual_recognition = excluded.mutual_recognition, updated_at = now()")


#: Each trader's last suspension or reinstatement.  A trader a file left out loses its row,
#: not its suspension: when a later file lists it again, the suspension ops made and never
#: lifted is applied again (before, the row came back without it: lifted silently, with no
#: 'reinstated' in trader_events).
_LAST_ACT = ("SELECT DISTINCT ON (trader_id) trader_id, kind, at, by_whom, reason"
             " FROM trader_events WHERE kind IN ('suspended', 'reinstated')"
             " ORDER BY trader_id, id DESC")


async def _lock_registry(connection: Any) -> None:
    """Take the registry's lock (REGISTRY_LOCK) and version row first, in every transaction
    that changes ``traders``.  The trigger takes the row after the trader rows a statement
    changes; an import (its DELETE holds the version, its upsert then wants trader X) and a
    suspension of X (holds X, then its trigger wants the version) waited on each other until
    PostgreSQL's deadlock detector aborted one of them.  One order for all: version, then
    traders."""
    await connection.execute("SELECT pg_advisory_xact_lock($1)", REGISTRY_LOCK)
    await connection.execute("SELECT 1 FROM trader_registry_version FOR UPDATE")


#: Taken shared by every decision and alone by every change of ``traders``, before the
#: version row.  PostgreSQL lets a new FOR SHARE of a row past a FOR UPDATE waiting for it, so
#: decisions that overlap without a gap (any steady load) kept a suspension waiting for as
#: long as the load lasted; a lock of the lock manager queues in order: the suspension waits
#: for the decisions in hand, the ones after it wait for the suspension (beside the routing
#: lead's 72016 and the port alarms' 72017).
REGISTRY_LOCK = 72018


async def suspend(pool: Any, trader_id: str, by: str, reason: str) -> dt.datetime | None:
    """Suspend ``trader_id`` now and record who and why; when, or None for an unknown id."""
    return await _record(pool, trader_id, "suspended", by, reason,
                         "UPDATE traders SET suspended_at = now(), suspended_by = $2,"
                         " suspension_reason = $3, updated_at = now() WHERE id = $1"
                         " RETURNING now() AS at")


async def reinstate(pool: Any, trader_id: str, by: str) -> dt.datetime | None:
    """Lift ops' suspension of ``trader_id`` (the file's own status stays as it is)."""
    return await _record(pool, trader_id, "reinstated", by, "",
                         "UPDATE traders SET suspended_at = NULL, suspended_by = NULL,"
                         " suspension_reason = NULL, updated_at = now() WHERE id = $1"
                         " AND $2::text IS NOT NULL AND $3::text IS NOT NULL"
                         " RETURNING now() AS at")


async def _record(pool: Any, trader_id: str, kind: str, by: str, reason: str,
                  change: str) -> dt.datetime | None:
    async with translated_errors(f"recording a trader {kind}"), pool.acquire() as connection, \
            connection.transaction():
        await _lock_registry(connection)
        at = await connection.fetchval(change, trader_id, by, reason)
        if at is not None:
            await connection.execute(
                "INSERT INTO trader_events (trader_id, kind, at, by_whom, reason)"
                " VALUES ($1, $2, $3, $4, $5)", trader_id, kind, at, by, reason)
        return at  # type: ignore[no-any-return]


async def entry(pool: Any, trader_id: str) -> TrustedTrader | None:
    """One trader as the registry holds it (any AEO status)."""
    async with translated_errors("reading the trader registry"), pool.acquire() as connection:
        row = await connection.fetchrow(
            _ALL.replace("ON t.aeo", "ON t.id = $1"), trader_id)
    return None if row is None or row["id"] is None else _trader(row)


async def hold_version(connection: Any) -> int:
    """The registry's version, held FOR SHARE until the caller's transaction ends: a
    suspension (``_lock_registry`` takes the row FOR UPDATE) then waits for the decision
    being made, and a decision made after a suspension committed sees its new version."""
    await connection.execute("SELECT pg_advisory_xact_lock_shared($1)", REGISTRY_LOCK)
    return int(await connection.fetchval(
        "SELECT version FROM trader_registry_version FOR SHARE"))


async def version(connection: Any) -> int:
    """The registry's version, on a connection the caller holds (one short statement)."""
    async with translated_errors("reading the trader registry version"):
        return int(await connection.fetchval("SELECT version FROM trader_registry_version"))
