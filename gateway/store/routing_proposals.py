"""Routing changes proposed in the console (migration 0012): one admin proposes a whole
routing.yaml, another approves or rejects it (maker-checker), and the approved text is written
to routing.yaml and applied through the validated hot-reload path, which records the version
with the proposal's id (routing_versions.record).

Every decision locks its proposal (SELECT ... FOR UPDATE) and checks its state in the same
transaction as the change and its audit row, so a double click or a replayed POST decides
nothing twice.  Writers of routing.yaml through the console also take one transaction-level
advisory lock, so two approvals never both find the file as their proposals left it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from gateway.store.database import translated_errors
from gateway.store.reports import rule_hits
from gateway.store.storable import storable_text
from gateway.store.traffic import bounded

Connection = Any
STATES = ("proposed", "approved", "rejected", "applied", "superseded")
#: pg_advisory_xact_lock's key for "writing routing.yaml from the console" (any constant
#: no other lock of the gateway uses: the ASCII of "ROUTING" folded into a bigint).
WRITE_LOCK = 0x524F5554494E47
#: The longest a rule-hit count may take before the page shows it as unavailable.
HITS_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Proposal:
    id: int
    body: str
    base_sha256: str
    base_body: str
    proposer: str
    created_at: dt.datetime
    state: str
    decider: str | None
    decided_at: dt.datetime | None
    note: str | None
    days: int
    #: The replay shown when it was proposed (console.routing_pages writes and reads it).
    replay: dict[str, Any]
    routing_version: int | None


_COLUMNS = ("id, body, base_sha256, base_body, proposer, created_at, state, decider,"
            " decided_at, note, days, replay::text AS replay, routing_version")


def _proposal(row: Any) -> Proposal:
    return Proposal(**{**dict(row), "replay": json.loads(row["replay"])})


async def propose(connection: Connection, *, body: str, base_sha256: str, base_body: str,
                  proposer: str, days: int, replay: dict[str, Any]) -> int:
    """Inside the caller's transaction (with its audit row)."""
    async with translated_errors("storing a routing proposal"):
        proposal: int = await connection.fetchval(
            "INSERT INTO routing_proposals (body, base_sha256, base_body, proposer, days,"
            " replay) VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id",
            storable_text(body), base_sha256, storable_text(base_body), proposer, days,
            json.dumps(replay, ensure_ascii=False))
    return proposal


async def get(connection: Connection, proposal: int, *, for_update: bool = False
              ) -> Proposal | None:
    """``for_update``: the row stays locked until the caller's transaction ends, so the state
    read is the state changed (no second decision slips in between)."""
    async with translated_errors("reading a routing proposal"):
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS} FROM routing_proposals WHERE id = $1"
            + (" FOR UPDATE" if for_update else ""), proposal)
    return None if row is None else _proposal(row)


async def recent(connection: Connection, limit: int = 20) -> list[Proposal]:
    """The open proposals first, then the newest decided ones."""
    async with translated_errors("reading routing proposals"):
        rows = await connection.fetch(
            f"SELECT {_COLUMNS} FROM routing_proposals"
            " ORDER BY state = 'proposed' DESC, id DESC LIMIT $1", limit)
    return [_proposal(r) for r in rows]


async def lock_writes(connection: Connection) -> None:
    """Held until the transaction ends: one console writer of routing.yaml at a time, on
    every console node sharing the database."""
    async with translated_errors("locking routing.yaml's writers"):
        await connection.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)


async def decide(connection: Connection, proposal: int, state: str, decider: str | None,
                 note: str | None = None) -> None:
    """Inside the caller's transaction, after ``get(..., for_update=True)`` found it open."""
    async with translated_errors("deciding a routing proposal"):
        await connection.execute(
            "UPDATE routing_proposals SET state = $2, decider = $3, decided_at = now(),"
            " note = $4 WHERE id = $1 AND state = 'proposed'",
            proposal, state, decider, note)


async def supersede_based_on(connection: Connection, base_sha256: str, but: int,
                             note: str) -> list[int]:
    """Open proposals made against a file that is about to change: superseded now, so
    nobody approves a proposal that could only fail."""
    async with translated_errors("superseding routing proposals"):
        rows = await connection.fetch(
            "UPDATE routing_proposals SET state = 'superseded', decided_at = now(), note = $3"
            " WHERE state = 'proposed' AND base_sha256 = $1 AND id <> $2 RETURNING id",
            base_sha256, but, note)
    return [int(r["id"]) for r in rows]


# --- the routing page ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One table given to the gateway, with the proposal it came from (None: the file was
    edited directly)."""

    id: int
    sha256: str
    source: str
    status: str
    error: str | None
    at: dt.datetime
    body: str
    proposal: int | None
    proposer: str | None
    decider: str | None


async def versions(connection: Connection, limit: int = 20) -> list[VersionEntry]:
    """The newest ``limit`` versions (bodies included: the page shows each one's diff)."""
    async with translated_errors("reading routing versions"):
        rows = await connection.fetch(
            "SELECT v.id, v.sha256, v.source, v.status, v.error, v.at, v.body,"
            " v.proposal_id AS proposal, p.proposer, p.decider FROM routing_versions v"
            " LEFT JOIN routing_proposals p ON p.id = v.proposal_id"
            " ORDER BY v.id DESC LIMIT $1", limit)
    return [VersionEntry(**dict(r)) for r in rows]


async def applied_before(connection: Connection, version: int) -> tuple[int, str] | None:
    """(id, body) of the applied version before ``version``: what its diff is against."""
    async with translated_errors("reading routing versions"):
        row = await connection.fetchrow(
            "SELECT id, body FROM routing_versions WHERE status = 'applied' AND id < $1"
            " ORDER BY id DESC LIMIT 1", version)
    return None if row is None else (int(row["id"]), str(row["body"]))


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule: str
    total: int
    last_day: int


async def rule_counts(connection: Connection) -> dict[str, RuleCount]:
    """How many messages each rule routed (messages.rules), over all time and the last 24
    hours, by rule name: a rule renamed counts afresh.  Bounded in time (QueryRefused)."""
    now = dt.datetime.now(dt.UTC)
    day: dict[str, int] = {}
    for hits in await rule_hits(connection, now - dt.timedelta(hours=24), now):
        day[hits.rule] = day.get(hits.rule, 0) + hits.messages  # summed over versions
    async with bounded(connection, "counting routing rule hits", seconds=HITS_SECONDS):
        rows = await connection.fetch(
            "SELECT r.rule, count(*) AS total FROM messages m"
            " CROSS JOIN LATERAL unnest(m.rules) AS r(rule) GROUP BY r.rule")
    return {r["rule"]: RuleCount(r["rule"], int(r["total"]), day.get(r["rule"], 0))
            for r in rows}
