"""Figures over a time range for the console: clearance times (issue 14 part 4, after the WCO
Time Release Study) and how often each routing rule routed.

Milestones of a declaration, per agency it went to, from the rows its events were written
with (same transactions, same times, read by key instead of by parsing event documents):

- lodged: interchanges.received_at (the raw bytes committed);
- syntax-accepted: interchanges.processed_at (the decision and its CONTRL);
- delivered: agency_states.delivered_at, the first publisher-confirmed delivery to the agency
  (its outbox row's dispatched_at, written with it: outbox.mark_dispatched);
- the agency's decision: agency_states.decided_at once it has nothing more to say (final);
- released: the last agency's release (the declaration's clearance is 'released').

Durations are in seconds; p50 and p90 are PostgreSQL's percentile_cont, by agency, message
type, partner and trusted-trader (AEO) status (messages.aeo, the header its deliveries
carried; 'unknown' when none said) in one pass (GROUPING SETS).  The range is of
lodging times and must be given.  It is read in two steps: the first and last submission ids
lodged in it (an index-only scan of interchanges_received), then every table by that id range
(interchanges_pkey, messages (interchange_id, position), agency_states_pkey), so a day costs
a day's rows however long the history.  The outbox is not read: its rows carry the bodies, and
gathering a day of them was half the report (migration 0016).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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


#: The first and last submission lodged in [$1, $2) (an index-only scan of
#: interchanges_received), and the first and last message of those submissions.
_SPAN = (
    # OFFSET 0 keeps PostgreSQL from turning min/max into a walk of the primary key from
    # either end, filtering on the time (700,000 rows read for a day a week back: 1.4 s).
    "WITH s AS (SELECT min(id) AS first, max(id) AS last FROM (SELECT id FROM interchanges"
    "   WHERE received_at >= $1 AND received_at < $2 OFFSET 0) lodged)"
    " SELECT s.first, s.last, m.first AS first_message, m.last AS last_message FROM s,"
    " LATERAL (SELECT min(id) AS first, max(id) AS last FROM (SELECT id FROM messages"
    "   WHERE interchange_id BETWEEN s.first AND s.last OFFSET 0) decided) m")

#: One row per (routed declaration, agency awaited on it) lodged in [$1, $2): each
#: table read by the id range of the submissions ($3, $4) or of their messages ($5, $6), so
#: that PostgreSQL, knowing how many rows each range holds, joins them by hashing (one probe
#: per row into a million-row index costs more than the whole day's rows).  Each stage's
#: duration is in seconds (date_part: a float8, which sorts several times faster than
#: extract's numeric).  ``first`` marks one row per declaration (its first agency).
_PER_AGENCY = (
    "WITH m AS (SELECT id, interchange_id, message_type, agencies[1] AS first_agency, clearance,"
    "   aeo FROM messages WHERE interchange_id BETWEEN $3 AND $4 AND status = 'routed'),"
    # The last decision on each message, from the primary key's order (no sort).
    " st AS (SELECT message_id, agency, final, decided_at, delivered_at,"
    "   max(decided_at) OVER (PARTITION BY message_id) AS last_decided_at FROM agency_states"
    "   WHERE message_id BETWEEN $5 AND $6)"
    " SELECT st.agency, m.message_type, i.partner_id AS partner,"
    " coalesce(m.aeo::text, 'unknown') AS aeo, st.agency = m.first_agency AS first,"
    " date_part('epoch', i.processed_at - i.received_at) AS lodged_to_accepted,"
    " date_part('epoch', st.delivered_at - i.processed_at) AS accepted_to_delivered,"
    " CASE WHEN st.final THEN date_part('epoch', st.decided_at - st.delivered_at) END"
    "   AS delivered_to_decision,"
    " CASE WHEN st.final THEN date_part('epoch', st.decided_at - i.received_at) END"
    "   AS lodged_to_decision,"
    " CASE WHEN m.clearance = 'released' THEN date_part('epoch',"
    "   st.last_decided_at - i.received_at) END AS lodged_to_released"
    " FROM interchanges i JOIN m ON m.interchange_id = i.id JOIN st ON st.message_id = m.id"
    " WHERE i.received_at >= $1 AND i.received_at < $2 AND i.id BETWEEN $3 AND $4")


def _figures(name: str, sql: str) -> str:
    return (f"count({sql}) AS {name}_n,"
            f" percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {sql}) AS {name}")


def _grouped(dimensions: tuple[str, ...], once: bool) -> str:
    """The figures of ``dimensions`` over the rows ``r``: a declaration's own stages once per
    declaration (on its first agency's row) when ``once``, else on every agency's row."""
    figures = ", ".join(
        _figures(name, f"CASE WHEN r.first THEN r.{name} END" if once and per_declaration
                 else f"r.{name}") for name, per_declaration in STAGES)
    columns = ", ".join(f"r.{d}" if d in dimensions else f"NULL::text AS {d}"
                        for d in DIMENSIONS)
    sets = ", ".join(f"(r.{d})" for d in dimensions)
    counted = "count(*) FILTER (WHERE r.first)" if once else "count(*)"
    keys = ", ".join(f"GROUPING(r.{d})" if d in dimensions else "1" for d in DIMENSIONS)
    return (f"SELECT {columns}, ARRAY[{keys}] AS grouped, {counted} AS declarations,"
            f" {figures} FROM r GROUP BY GROUPING SETS ({sets})")


def _report_sql(dimensions: tuple[str, ...]) -> str:
    """By agency over every (declaration, agency) row; by the other dimensions with the
    declaration's own stages counted once: two aggregations of one materialised row set
    (each percentile sorts its group: half the sorting of one pass computing both ways)."""
    others = tuple(d for d in DIMENSIONS[1:] if d in dimensions)
    parts = ([_grouped(("agency",), once=False)] if "agency" in dimensions else []) + (
        [_grouped(others, once=True)] if others else [])
    return f"WITH r AS MATERIALIZED ({_PER_AGENCY}) {' UNION ALL '.join(parts)}"


async def clearance_times(connection: Connection, since: dt.datetime, until: dt.datetime,
                          dimensions: Sequence[str] = DIMENSIONS) -> list[ClearanceRow]:
    """p50/p90 of each stage for the declarations lodged in [since, until), by each of
    ``dimensions`` (agency, message_type, partner, aeo).  Most of the cost is sorting each
    group's durations: a page showing one dimension at a time asks for that one (a day of
    100,000 declarations by agency alone sorts a fifth of what all four do)."""
    checked_range(since, until)
    wanted = tuple(d for d in DIMENSIONS if d in dimensions)
    if not wanted or any(d not in DIMENSIONS for d in dimensions):
        raise QueryRefused(f"the dimensions are some of {', '.join(DIMENSIONS)}")
    async with bounded(connection, "reading clearance times", seconds=REPORT_SECONDS,
                       work_mem_mb=REPORT_WORK_MEM_MB, hash_joins=True):
        span = await connection.fetchrow(_SPAN, since, until)
        if span["first"] is None or span["first_message"] is None:
            return []
        rows = await connection.fetch(_report_sql(wanted), since, until, span["first"],
                                      span["last"], span["first_message"],
                                      span["last_message"])
    found = [_clearance_row(r) for r in rows]
    return sorted(found, key=lambda r: (DIMENSIONS.index(r.dimension), r.value))


def _clearance_row(row: Any) -> ClearanceRow:
    dimension = DIMENSIONS[list(row["grouped"]).index(0)]
    stages = []
    for name, _ in STAGES:
        figures = row[name] or [None, None]
        stages.append(Stage(name, int(row[f"{name}_n"]), figures[0], figures[1]))
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
    async with bounded(connection, "counting routing rule hits", seconds=REPORT_SECONDS,
                       hash_joins=True):
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
