"""The cargo trail, its checks and the port alarms (migration 0017, docs/port-alarms.md).
Every write is keyed so that reading one message twice changes nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from gateway.model.canonical.port_alarm import PortAlarm
from gateway.pipeline.port_rules import Check, TrailStep
from gateway.store.database import translated_errors

#: The kinds of stored message the trail reads.
KINDS = ("ContainerEvent", "CustomsDeclaration")


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored message after the cursor: ``canonical`` only when it is of ``KINDS``."""

    id: int
    kind: str | None
    canonical: str | None
    received_at: dt.datetime


async def cursor(connection: Any) -> int:
    async with translated_errors("reading the cargo trail's cursor"):
        value: int = await connection.fetchval(
            "SELECT message_id FROM cargo_trail_cursor FOR UPDATE")
    return value


async def set_cursor(connection: Any, message_id: int) -> None:
    async with translated_errors("moving the cargo trail's cursor"):
        await connection.execute("UPDATE cargo_trail_cursor SET message_id = $1", message_id)


async def after(connection: Any, message_id: int, limit: int) -> list[Stored]:
    """Every accepted message after ``message_id`` (ids of other kinds too: the cursor sees
    which ids are not yet visible), in id order."""
    async with translated_errors("reading messages for the cargo trail"):
        rows = await connection.fetch(
            "SELECT m.id, CASE WHEN m.status IN ('routed', 'unroutable')"
            " AND m.canonical ->> 'kind' = ANY($3::text[]) THEN m.canonical::text END"
            " AS canonical, m.canonical ->> 'kind' AS kind, i.received_at FROM messages m"
            " JOIN interchanges i ON i.id = m.interchange_id"
            " WHERE m.id > $1 ORDER BY m.id LIMIT $2", message_id, limit, list(KINDS))
    return [Stored(r["id"], r["kind"], r["canonical"], r["received_at"]) for r in rows]


async def add_step(connection: Any, step: TrailStep) -> None:
    async with translated_errors("recording a cargo trail step"):
        await connection.execute(
            "INSERT INTO cargo_trail (container, event, node, occurred_at, message_id)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            step.container, step.event, step.node, step.at, step.message_id)


async def first_step(connection: Any, container: str, events: tuple[str, ...],
                     node: str | None, since: dt.datetime, *, strictly: bool = False
                     ) -> TrailStep | None:
    """The first step of ``container`` with one of ``events`` (at ``node``, or anywhere) at
    ``since`` or later (``strictly``: later)."""
    async with translated_errors("reading the cargo trail"):
        row = await connection.fetchrow(
            "SELECT container, event, node, occurred_at, message_id FROM cargo_trail"
            " WHERE container = $1 AND event = ANY($2::text[])"
            " AND ($3::text IS NULL OR node = $3)"
            " AND (occurred_at > $4 OR (NOT $5 AND occurred_at = $4))"
            " ORDER BY occurred_at, message_id LIMIT 1",
            container, list(events), node, since, strictly)
    return None if row is None else TrailStep(row["container"], row["event"], row["node"],
                                               row["occurred_at"], row["message_id"])


async def open_check(connection: Any, check: Check) -> Check | None:
    """Store ``check`` unless its (container, rule, start) has one already; the stored
    clock (with its id) when started."""
    async with translated_errors("starting a port check"):
        check_id = await connection.fetchval(
            "INSERT INTO port_checks (container, rule, alarm, node, started_at, due_at,"
            " limit_seconds, message_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT DO NOTHING RETURNING id",
            check.container, check.rule, check.alarm, check.node, check.started_at,
            check.due_at, check.limit_seconds, check.message_id)
    return None if check_id is None else replace(check, check_id=check_id)


_CHECK_COLUMNS = ("id, container, rule, alarm, node, started_at, due_at, limit_seconds,"
                  " message_id, ended_at")


async def last_started(connection: Any, container: str, rule: str, at: dt.datetime
                       ) -> Check | None:
    """The clock of ``container`` and ``rule`` started last at or before ``at``, locked:
    the visit ``at`` may fall in."""
    async with translated_errors("reading port checks"):
        row = await connection.fetchrow(
            f"SELECT {_CHECK_COLUMNS} FROM port_checks WHERE container = $1 AND rule = $2"
            " AND started_at <= $3 ORDER BY started_at DESC LIMIT 1 FOR UPDATE",
            container, rule, at)
    return None if row is None else _check(row)


async def next_started(connection: Any, container: str, rule: str, at: dt.datetime
                       ) -> Check | None:
    """The clock of ``container`` and ``rule`` started first after ``at``."""
    async with translated_errors("reading port checks"):
        row = await connection.fetchrow(
            f"SELECT {_CHECK_COLUMNS} FROM port_checks WHERE container = $1 AND rule = $2"
            " AND started_at > $3 ORDER BY started_at LIMIT 1", container, rule, at)
    return None if row is None else _check(row)


async def end_visit(connection: Any, check: Check, ended_at: dt.datetime) -> None:
    """The visit of ``check`` ended at ``ended_at``, or earlier if it was told so before."""
    async with translated_errors("ending a visit"):
        await connection.execute(
            "UPDATE port_checks SET ended_at = $2 WHERE id = $1"
            " AND (ended_at IS NULL OR ended_at > $2)", check.check_id, ended_at)


async def is_open(connection: Any, check: Check) -> bool:
    async with translated_errors("reading a port check"):
        found = await connection.fetchval(
            "SELECT closed_at IS NULL FROM port_checks WHERE id = $1", check.check_id)
    return bool(found)


async def open_checks(connection: Any, container: str, alarm: str) -> list[Check]:
    """The open checks of ``container`` of one kind, locked."""
    async with translated_errors("reading port checks"):
        rows = await connection.fetch(
            f"SELECT {_CHECK_COLUMNS} FROM port_checks WHERE container = $1 AND alarm = $2"
            " AND closed_at IS NULL ORDER BY id FOR UPDATE", container, alarm)
    return [_check(r) for r in rows]


async def due_checks(connection: Any, limit: int) -> list[Check]:
    """Open checks past their due time, locked (another process takes the others)."""
    async with translated_errors("reading due port checks"):
        rows = await connection.fetch(
            f"SELECT {_CHECK_COLUMNS} FROM port_checks WHERE closed_at IS NULL"
            " AND due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED", limit)
    return [_check(r) for r in rows]


def _check(row: Any) -> Check:
    return Check(row["container"], row["rule"], row["alarm"], row["node"], row["started_at"],
                 row["due_at"], row["limit_seconds"], row["message_id"], row["id"],
                 row["ended_at"])


async def close_check(connection: Any, check: Check) -> None:
    async with translated_errors("closing a port check"):
        await connection.execute(
            "UPDATE port_checks SET closed_at = now() WHERE id = $1 AND closed_at IS NULL",
            check.check_id)


async def add_declaration(connection: Any, container: str, message_id: int,
                          declared_at: dt.datetime) -> None:
    async with translated_errors("recording a declared container"):
        await connection.execute(
            "INSERT INTO cargo_declarations (container, message_id, declared_at)"
            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", container, message_id, declared_at)


async def declared_between(connection: Any, container: str, earliest: dt.datetime,
                           latest: dt.datetime) -> bool:
    async with translated_errors("reading declared containers"):
        found = await connection.fetchval(
            "SELECT true FROM cargo_declarations WHERE container = $1"
            " AND declared_at BETWEEN $2 AND $3 LIMIT 1", container, earliest, latest)
    return bool(found)


async def raise_alarm(connection: Any, check: Check, code: str,
                      ended_at: dt.datetime | None) -> PortAlarm | None:
    """The alarm of ``check``, or None when its clock has one already."""
    async with translated_errors("raising a port alarm"):
        row = await connection.fetchrow(
            "INSERT INTO port_alarms (check_id, container, rule, alarm, code, node, started_at,"
            " ended_at, limit_seconds, message_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            f" ON CONFLICT DO NOTHING RETURNING {_ALARM_COLUMNS}",
            check.check_id, check.container, check.rule, check.alarm, code, check.node,
            check.started_at, ended_at, check.limit_seconds, check.message_id)
    return None if row is None else _alarm(row)


_ALARM_COLUMNS = ("id, container, rule, alarm, code, node, started_at, ended_at,"
                  " limit_seconds, message_id, raised_at")


def _alarm(row: Any) -> PortAlarm:
    return PortAlarm(alarm_id=row["id"], code=row["code"], alarm=row["alarm"], rule=row["rule"],
                     container=row["container"], node=row["node"],
                     started_at=row["started_at"], limit_seconds=row["limit_seconds"],
                     ended_at=row["ended_at"], raised_at=row["raised_at"],
                     message_id=row["message_id"])


#: pg_try_advisory_xact_lock's key for "publishing port alarms" (any constant no other lock
#: of the gateway uses: 72001 is the migrations', routing_proposals.WRITE_LOCK the console's).
PUBLISH_LOCK = 72017


async def take_publishing(connection: Any) -> bool:
    """Whether this transaction is the one publishing port alarms (two gateways on one
    database each run a watcher; without it both published every alarm, 800 alarms reached
    the exchange 1,600 times).  An advisory lock, not row locks: the console's
    acknowledgement updates the same rows and must not wait for the broker."""
    async with translated_errors("taking the port alarms' publishing lock"):
        taken: bool = await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)",
                                                PUBLISH_LOCK)
    return taken


async def unpublished(connection: Any, limit: int) -> list[PortAlarm]:
    async with translated_errors("reading unpublished port alarms"):
        rows = await connection.fetch(
            f"SELECT {_ALARM_COLUMNS} FROM port_alarms WHERE published_at IS NULL"
            " ORDER BY id LIMIT $1", limit)
    return [_alarm(r) for r in rows]


async def mark_published(connection: Any, ids: list[int]) -> None:
    async with translated_errors("marking port alarms published"):
        await connection.execute(
            "UPDATE port_alarms SET published_at = now() WHERE id = ANY($1::bigint[])"
            " AND published_at IS NULL", ids)


@dataclass(frozen=True, slots=True)
class Listed:
    alarm: PortAlarm
    published_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None


async def listed(connection: Any, *, open_only: bool, limit: int) -> list[Listed]:
    """The newest alarms (only those not acknowledged, with ``open_only``)."""
    async with translated_errors("reading port alarms"):
        rows = await connection.fetch(
            f"SELECT {_ALARM_COLUMNS}, published_at, acknowledged_at, acknowledged_by"
            " FROM port_alarms WHERE NOT $1 OR acknowledged_at IS NULL"
            " ORDER BY id DESC LIMIT $2", open_only, limit)
    return [Listed(_alarm(r), r["published_at"], r["acknowledged_at"], r["acknowledged_by"])
            for r in rows]


async def acknowledge(connection: Any, alarm_id: int, user: str) -> str:
    """"acknowledged", "already" (by someone before) or "unknown"."""
    async with translated_errors("acknowledging a port alarm"):
        done = await connection.fetchval(
            "UPDATE port_alarms SET acknowledged_at = now(), acknowledged_by = $2"
            " WHERE id = $1 AND acknowledged_at IS NULL RETURNING true", alarm_id, user)
        if done:
            return "acknowledged"
        exists = await connection.fetchval("SELECT true FROM port_alarms WHERE id = $1",
                                           alarm_id)
    return "already" if exists else "unknown"
