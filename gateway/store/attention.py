"""What waits for ops (the console's Attention page, issue 14): parked submissions, parked
outbox rows, held and unroutable messages, each newest first and keyset-paged by id, with its
reason and age.  Read-only and bounded in time (store.traffic.bounded); each list reads a
partial index of its own (0005, 0006, 0013), so a page costs its rows however much is stored.
The actions on them are the CLI's (gateway.app.release, gateway.app.replay)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway.store.traffic import bounded

Connection = Any
#: The lists, as the page and its query string name them.
LISTS = ("submissions", "dispatches", "held", "unroutable")


@dataclass(frozen=True, slots=True)
class Waiting:
    """One thing waiting: ``id`` is the submission's (submissions), the outbox row's
    (dispatches) or the message's (held, unroutable).  A held message's reason names the
    rules that held it (its ``message_held`` event), else every rule it matched."""

    id: int
    submission: int
    message: int | None
    partner: str
    what: str
    reason: str
    since: dt.datetime
    age_seconds: float


_SQL = {
    "submissions": (
        "SELECT i.id, i.id AS submission, NULL::bigint AS message, i.partner_id AS partner,"
        " i.file_name AS what, coalesce(i.last_error, '') AS reason,"
        " i.received_at AS since FROM interchanges i"
        " WHERE i.status = 'parked' AND ($1::bigint IS NULL OR i.id < $1)"
        " ORDER BY i.id DESC LIMIT $2"),
    "dispatches": (
        "SELECT o.id, o.interchange_id AS submission, o.message_id AS message,"
        " i.partner_id AS partner, o.channel || ' to ' || o.destination AS what,"
        " coalesce(o.last_error, '') AS reason, o.parked_at AS since"
        " FROM outbox o JOIN interchanges i ON i.id = o.interchange_id"
        " WHERE o.parked_at IS NOT NULL AND ($1::bigint IS NULL OR o.id < $1)"
        " ORDER BY o.id DESC LIMIT $2"),
    "held": (
        "SELECT m.id, m.interchange_id AS submission, m.id AS message,"
        " i.partner_id AS partner,"
        " m.message_type || ' ' || coalesce(m.document_ref, m.message_ref) AS what,"
        " 'held by ' || coalesce((SELECT string_agg(h.rule, ', ') FROM"
        "   (SELECT e.detail->'held_by' AS held FROM events e"
        "    WHERE e.interchange_id = m.interchange_id AND e.message_id = m.id"
        "    AND e.detail ? 'held_by' ORDER BY e.id DESC LIMIT 1) last"
        "   CROSS JOIN LATERAL jsonb_array_elements_text(last.held) AS h(rule)),"
        "   nullif(array_to_string(m.rules, ', '), ''), 'a rule') AS reason,"
        " i.received_at AS since"
        " FROM messages m JOIN interchanges i ON i.id = m.interchange_id"
        " WHERE m.status = 'held' AND ($1::bigint IS NULL OR m.id < $1)"
        " ORDER BY m.id DESC LIMIT $2"),
    "unroutable": (
        "SELECT m.id, m.interchange_id AS submission, m.id AS message,"
        " i.partner_id AS partner,"
        " m.message_type || ' ' || coalesce(m.document_ref, m.message_ref) AS what,"
        " 'no routing rule matched' AS reason, i.received_at AS since"
        " FROM messages m JOIN interchanges i ON i.id = m.interchange_id"
        " WHERE m.status = 'unroutable' AND ($1::bigint IS NULL OR m.id < $1)"
        " ORDER BY m.id DESC LIMIT $2"),
}


async def waiting(connection: Connection, which: str, before: int | None, limit: int
                  ) -> list[Waiting]:
    """The newest ``limit`` of list ``which`` (LISTS) older than id ``before``."""
    async with bounded(connection, f"listing {which}"):
        now = await connection.fetchval("SELECT now()")
        rows = await connection.fetch(_SQL[which], before, limit)
    return [Waiting(r["id"], r["submission"], r["message"], r["partner"], r["what"],
                    r["reason"], r["since"], (now - r["since"]).total_seconds())
            for r in rows]


async def submission_of(connection: Connection, message_id: int) -> int | None:
    """The submission a message belongs to (an action names the message)."""
    found: int | None = await connection.fetchval(
        "SELECT interchange_id FROM messages WHERE id = $1", message_id)
    return found


@dataclass(frozen=True, slots=True)
class Overdue:
    """An agency still awaited on a message past its deadline (app/overdue.py marked it)."""

    message: int
    submission: int
    agency: str
    partner: str
    document: str
    overdue_at: dt.datetime
    waiting_seconds: float


async def overdue(connection: Connection, limit: int) -> list[Overdue]:
    """The ``limit`` most recently overdue answers still awaited, newest first."""
    async with bounded(connection, "listing overdue answers"):
        rows = await connection.fetch(
            "SELECT s.message_id, m.interchange_id, s.agency, i.partner_id,"
            " coalesce(m.document_ref, m.message_ref) AS document, s.overdue_at,"
            " date_part('epoch', now() - i.received_at) AS waiting"
            " FROM agency_states s JOIN messages m ON m.id = s.message_id"
            " JOIN interchanges i ON i.id = m.interchange_id"
            " WHERE s.state = 'awaiting' AND s.overdue_at IS NOT NULL"
            " ORDER BY s.overdue_at DESC LIMIT $1", limit)
    return [Overdue(r["message_id"], r["interchange_id"], r["agency"], r["partner_id"],
                    r["document"], r["overdue_at"], float(r["waiting"])) for r in rows]
