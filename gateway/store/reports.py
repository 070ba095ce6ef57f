"""Figures over a time range for the console: clearance times (issue 14 part 4, after the WCO
Time Release Study) and how often each routing rule routed.

Milestones of a declaration, per agency it went to, from the rows its events were written
with (same transactions, same times, read by key instead of by parsing event documents):

- lodged: interchanges.received_at (the raw bytes committed);
- syntax-accepted: interchanges.processed_at (the decision and its CONTRL);
- delivered: outbox.dispatched_at of the agency's delivery (publisher-confirmed);
- the agency's decision: agency_states.decided_at once it has nothing more to say (final);
- released: the last agency's release (the declaration's clearance is 'released').

Durations are in seconds; p50 and p90 are PostgreSQL's percentile_cont, by agency, message
type, partner and trusted-trader (AEO) status in one pass (GROUPING SETS).  The range is of
lodging times and must be given.  It is read in two steps: the first and last submission ids
lodged in it (an index-only scan of interchanges_received), then every table by that id range
(interchanges_pkey, messages (interchange_id, position), outbox_interchange), so a day costs a
day's rows however long the history.
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

#: (name, whether the stage is the declaration's rather than each agency's).
STAGES: tuple[tuple[str, bool], ...] = (
    ("lodged_to_accepted", True),
    ("accepted_to_delivered", False),
    ("delivered_to_decision", False),
    ("lodged_to_decision", False),
    ("lodged_to_released", True),
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


#: One row per (routed declaration, agency it was delivered to) lodged in [$1, $2), whose
#: submission ids are in [$3, $4); each stage's duration in seconds (date_part: a float8,
#: which sorts several times faster than extract's numeric).  ``first`` marks one row per
#: declaration (its first agency).
_PER_AGENCY = (
    "SELECT st.agency, m.message_type, i.partner_id AS partner,"
    " coalesce(o.properties->'headers'->>'aeo', 'unknown') AS aeo,"
    " st.agency = m.agencies[1] AS first,"
    " date_part('epoch', i.processed_at - i.received_at) AS lodged_to_accepted,"
    " date_part('epoch', o.dispatched_at - i.processed_at) AS accepted_to_delivered,"
    " CASE WHEN st.final THEN date_part('epoch', st.decided_at - o.dispatched_at) END"
    "   AS delivered_to_decision,"
    " CASE WHEN st.final THEN date_part('epoch', st.decided_at - i.received_at) END"
    "   AS lodged_to_decision,"
    " CASE WHEN m.clearance = 'released' THEN date_part('epoch',"
    "   max(st.decided_at) OVER (PARTITION BY m.id) - i.received_at) END AS lodged_to_released"
    " FROM interchanges i JOIN messages m ON m.interchange_id = i.id"
    " JOIN agency_states st ON st.message_id = m.id"
    " LEFT JOIN outbox o ON o.interchange_id = m.interchange_id AND o.message_id = m.id"
    "   AND o.channel = 'amqp' AND o.destination = st.agency"
    "   AND o.interchange_id BETWEEN $3 AND $4"
    " WHERE i.received_at >= $1 AND i.received_at < $2 AND i.id BETWEEN $3 AND $4"
    " AND m.interchange_id BETWEEN $3 AND $4")

#: The first and last submission lodged in [$1, $2).
_SPAN = ("SELECT min(id) AS first, max(id) AS last FROM interchanges"
         " WHERE received_at >= $1 AND received_at < $2")


def _figures(name: str, sql: str) -> str:
    return (f"count({sql}) AS {name}_n,"
            f" percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {sql}) AS {name}")


def _stage_sql(name: str, per_declaration: bool) -> str:
    """A declaration's own stage is on each of its agencies' rows: counted on each by agency,
    and once (on its first agency's row) by every other dimension."""
    if not per_declaration:
        return _figures(name, f"s.{name}")
    once = _figures(name + "_once", f"CASE WHEN s.first THEN s.{name} END")
    return f"{_figures(name, f's.{name}')}, {once}"


def _report_sql() -> str:
    figures = ", ".join(_stage_sql(*stage) for stage in STAGES)
    keys = ", ".join(f"GROUPING(s.{d}) AS g_{d}" for d in DIMENSIONS)
    return (f"SELECT s.agency, s.message_type, s.partner, s.aeo, {keys}, count(*) AS rows,"
            f" count(*) FILTER (WHERE s.first) AS declarations, {figures}"
            f" FROM ({_PER_AGENCY}) s"
            f" GROUP BY GROUPING SETS ({', '.join(f'(s.{d})' for d in DIMENSIONS)})"
            " ORDER BY 5, 6, 7, 8, 1, 2, 3, 4")


async def clearance_times(connection: Connection, since: dt.datetime, until: dt.datetime
                          ) -> list[ClearanceRow]:
    """p50/p90 of each stage for the declarations lodged in [since, until), by agency, message
    type, partner and AEO status."""
    checked_range(since, until)
    async with bounded(connection, "reading clearance times", seconds=REPORT_SECONDS,
                       work_mem_mb=REPORT_WORK_MEM_MB):
        span = await connection.fetchrow(_SPAN, since, until)
        if span["first"] is None:
            return []
        rows = await connection.fetch(_report_sql(), since, until, span["first"],
                                      span["last"])
    return [_clearance_row(r) for r in rows]


def _clearance_row(row: Any) -> ClearanceRow:
    dimension = next(d for d in DIMENSIONS if row[f"g_{d}"] == 0)
    by_agency = dimension == "agency"
    stages = []
    for name, per_declaration in STAGES:
        column = name + "_once" if per_declaration and not by_agency else name
        figures = row[column] or [None, None]
        stages.append(Stage(name, int(row[f"{column}_n"]), figures[0], figures[1]))
    return ClearanceRow(dimension, str(row[dimension]),
                        int(row["rows" if by_agency else "declarations"]), tuple(stages))


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
        span = await connection.fetchrow(_SPAN, since, until)
        if span["first"] is None:
            return []
        rows = await connection.fetch(
            "SELECT m.routing_version, r.rule, count(*) AS messages"
            " FROM interchanges i JOIN messages m ON m.interchange_id = i.id"
            " CROSS JOIN LATERAL unnest(m.rules) AS r(rule)"
            " WHERE i.received_at >= $1 AND i.received_at < $2 AND i.id BETWEEN $3 AND $4"
            " AND m.interchange_id BETWEEN $3 AND $4"
            " GROUP BY m.routing_version, r.rule"
            " ORDER BY m.routing_version DESC NULLS LAST, messages DESC, r.rule",
            since, until, span["first"], span["last"])
    return [RuleHits(r["routing_version"], r["rule"], int(r["messages"])) for r in rows]
