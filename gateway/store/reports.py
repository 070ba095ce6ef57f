"""Figures over a time range for the console: clearance times (issue 14 part 4, after the WCO
Time Release Study) and how often each routing rule routed.

Milestones of a declaration, per agency it went to, from the rows its events were written
with (same transactions, same times, read by key instead of by parsing event documents):

- lodged: interchanges.received_at (the raw bytes committed);
- syntax-accepted: interchanges.processed_at (the decision and its CONTRL);
- delivered: outbox.dispatched_at of the agency's delivery (publisher-confirmed);
- first decision: the agency's first answer (agency_answers.received_at);
- final: agency_states.decided_at once the agency has nothing more to say;
- released: the last agency's release (the declaration's clearance is 'released').

Durations are in seconds; p50 and p90 are PostgreSQL's percentile_cont, by agency, message
type, partner and trusted-trader (AEO) status in one pass (GROUPING SETS).  The range is of
lodging times and must be given: the walk starts from interchanges_received (0011).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway.errors import QueryRefused
from gateway.store.traffic import bounded

Connection = Any

#: The widest range one report covers.
MAX_RANGE = dt.timedelta(days=31)
#: A report reads one row per (declaration, agency) in its range: more time, more memory to
#: sort the durations in (each percentile sorts its group).
REPORT_SECONDS = 10.0
REPORT_WORK_MEM_MB = 64

#: (name, SQL of the duration in seconds over the per-agency rows ``s``, whether the stage is
#: the declaration's rather than each agency's).
STAGES: tuple[tuple[str, str, bool], ...] = (
    ("lodged_to_accepted", "extract(epoch FROM s.accepted_at - s.lodged_at)", True),
    ("accepted_to_delivered", "extract(epoch FROM s.delivered_at - s.accepted_at)", False),
    ("delivered_to_first_decision",
     "extract(epoch FROM s.first_decision_at - s.delivered_at)", False),
    ("lodged_to_final_decision", "extract(epoch FROM s.final_at - s.lodged_at)", False),
    ("lodged_to_released", "extract(epoch FROM s.released_at - s.lodged_at)", True),
)
DIMENSIONS = ("agency", "message_type", "partner", "aeo")


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    count: int
    p50: float | None
    p90: float | None


@dataclass(frozen=True, slots=True)
class ClearanceRow:
    """One group: ``dimension`` is agency, message_type, partner or aeo ('true', 'false' or
    'unknown'), ``value`` its value."""

    dimension: str
    value: str
    declarations: int
    stages: tuple[Stage, ...]


def checked_range(since: dt.datetime, until: dt.datetime, widest: dt.timedelta = MAX_RANGE
                  ) -> None:
    for name, value in (("since", since), ("until", until)):
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise QueryRefused(f"{name} must be a date and time with its time zone")
    if until <= since:
        raise QueryRefused("the time range ends before it begins")
    if until - since > widest:
        raise QueryRefused(f"a report covers at most {widest.days} days")


#: One row per (routed declaration, agency it was delivered to) lodged in [$1, $2).
_PER_AGENCY = (
    "SELECT m.id, s.agency, m.message_type, i.partner_id AS partner,"
    " coalesce(o.properties->'headers'->>'aeo', 'unknown') AS aeo,"
    " i.received_at AS lodged_at, i.processed_at AS accepted_at,"
    " o.dispatched_at AS delivered_at,"
    " (SELECT min(a.received_at) FROM agency_answers a WHERE a.message_id = m.id"
    "   AND a.agency = s.agency) AS first_decision_at,"
    " CASE WHEN s.final THEN s.decided_at END AS final_at,"
    " CASE WHEN m.clearance = 'released' THEN max(s.decided_at) OVER (PARTITION BY m.id)"
    " END AS released_at, row_number() OVER (PARTITION BY m.id ORDER BY s.agency) = 1 AS first"
    " FROM interchanges i JOIN messages m ON m.interchange_id = i.id"
    " JOIN agency_states s ON s.message_id = m.id"
    " LEFT JOIN outbox o ON o.interchange_id = i.id AND o.message_id = m.id"
    "   AND o.channel = 'amqp' AND o.destination = s.agency"
    " WHERE i.received_at >= $1 AND i.received_at < $2")


def _figures(name: str, sql: str) -> str:
    return (f"count({sql}) AS {name}_n,"
            f" percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {sql}) AS {name}")


def _stage_sql(name: str, sql: str, per_declaration: bool) -> str:
    """A declaration's own stage is on each of its agencies' rows: counted on each by agency,
    and once (on its first agency's row) by every other dimension."""
    if not per_declaration:
        return _figures(name, sql)
    once = _figures(name + "_once", f"CASE WHEN s.first THEN {sql} END")
    return f"{_figures(name, sql)}, {once}"


def _report_sql() -> str:
    figures = ", ".join(_stage_sql(*stage) for stage in STAGES)
    keys = ", ".join(f"GROUPING(s.{d}) AS g_{d}" for d in DIMENSIONS)
    return (f"SELECT s.agency, s.message_type, s.partner, s.aeo, {keys},"
            f" count(DISTINCT s.id) AS declarations, {figures} FROM ({_PER_AGENCY}) s"
            f" GROUP BY GROUPING SETS ({', '.join(f'(s.{d})' for d in DIMENSIONS)})"
            " ORDER BY 5, 6, 7, 8, 1, 2, 3, 4")


async def clearance_times(connection: Connection, since: dt.datetime, until: dt.datetime
                          ) -> list[ClearanceRow]:
    """p50/p90 of each stage for the declarations lodged in [since, until), by agency, message
    type, partner and AEO status."""
    checked_range(since, until)
    async with bounded(connection, "reading clearance times", seconds=REPORT_SECONDS,
                       work_mem_mb=REPORT_WORK_MEM_MB):
        rows = await connection.fetch(_report_sql(), since, until)
    return [_clearance_row(r) for r in rows]


def _clearance_row(row: Any) -> ClearanceRow:
    dimension = next(d for d in DIMENSIONS if row[f"g_{d}"] == 0)
    stages = []
    for name, _, per_declaration in STAGES:
        column = name + "_once" if per_declaration and dimension != "agency" else name
        figures = row[column] or [None, None]
        stages.append(Stage(name, int(row[f"{column}_n"]), figures[0], figures[1]))
    return ClearanceRow(dimension, str(row[dimension]), int(row["declarations"]),
                        tuple(stages))


# --- routing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleHits:
    """How many messages a rule routed (to its agencies or as copies) under one table."""

    routing_version: int | None
    rule: str
    messages: int


async def rule_hits(connection: Connection, since: dt.datetime, until: dt.datetime
                    ) -> list[RuleHits]:
    """Each rule's count over the messages of the interchanges received in [since, until),
    per routing table version (messages.rules, messages.routing_version)."""
    checked_range(since, until)
    async with bounded(connection, "counting routing rule hits", seconds=REPORT_SECONDS):
        rows = await connection.fetch(
            "SELECT m.routing_version, r.rule, count(*) AS messages"
            " FROM interchanges i JOIN messages m ON m.interchange_id = i.id"
            " CROSS JOIN LATERAL unnest(m.rules) AS r(rule)"
            " WHERE i.received_at >= $1 AND i.received_at < $2"
            " GROUP BY m.routing_version, r.rule"
            " ORDER BY m.routing_version DESC NULLS LAST, messages DESC, r.rule",
            since, until)
    return [RuleHits(r["routing_version"], r["rule"], int(r["messages"])) for r in rows]
