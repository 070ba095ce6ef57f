"""Traffic and rejections over time for the console's Charts page (issue 14): per hour over a
day or per day over a month, submissions lodged, messages routed, and rejections by reason
(the ISO 9735 0085 code of the first finding: the code the CONTRL reports).  Read-only and
bounded (store.traffic.bounded); the range is walked by submission id like store.reports, so
a month costs a month's rows however long the history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway.errors import QueryRefused
from gateway.store.reports import REPORT_SECONDS, checked_range
from gateway.store.traffic import bounded

Connection = Any
#: date_trunc's unit for each bucket size the page offers.
BUCKETS = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
#: The reason given to a rejected submission none of whose messages carries a finding (its
#: UNB/UNZ or envelope was wrong: the CONTRL's interchange-level code is not stored apart).
INTERCHANGE_LEVEL = "interchange"


@dataclass(frozen=True, slots=True)
class Bucket:
    start: dt.datetime
    submissions: int
    routed: int
    rejected: int


@dataclass(frozen=True, slots=True)
class Rejections:
    start: dt.datetime
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class Series:
    buckets: tuple[Bucket, ...]
    rejections: tuple[Rejections, ...]


_SPAN = ("SELECT min(id) AS first, max(id) AS last FROM interchanges"
         " WHERE received_at >= $1 AND received_at < $2")
#: Submissions and their routed messages, each table read once over the id range and joined
#: by hash (not a lookup per submission: a month may hold a million).
_TRAFFIC = (
    "WITH i AS (SELECT id, status, date_trunc($5, received_at, 'UTC') AS start"
    "   FROM interchanges WHERE received_at >= $1 AND received_at < $2"
    "   AND id BETWEEN $3 AND $4),"
    " r AS (SELECT interchange_id, count(*) AS routed FROM messages"
    "   WHERE interchange_id BETWEEN $3 AND $4 AND status = 'routed' GROUP BY 1)"
    " SELECT i.start, count(*) AS submissions,"
    " count(*) FILTER (WHERE i.status = 'rejected') AS rejected,"
    " coalesce(sum(r.routed), 0) AS routed"
    " FROM i LEFT JOIN r ON r.interchange_id = i.id GROUP BY 1 ORDER BY 1")
#: A rejected message counts under its first finding's code; a rejected submission with no
#: rejected message counts once under INTERCHANGE_LEVEL.
_REASONS = (
    "SELECT date_trunc($5, i.received_at, 'UTC') AS start,"
    " coalesce(m.findings->0->>'code', $6) AS reason, count(*) AS count"
    " FROM interchanges i LEFT JOIN messages m ON m.interchange_id = i.id"
    "   AND m.status = 'rejected' AND m.interchange_id BETWEEN $3 AND $4"
    " WHERE i.received_at >= $1 AND i.received_at < $2 AND i.id BETWEEN $3 AND $4"
    " AND (m.id IS NOT NULL OR i.status = 'rejected')"
    " GROUP BY 1, 2 ORDER BY 1, 2")


async def series(connection: Connection, since: dt.datetime, until: dt.datetime,
                 bucket: str) -> Series:
    if bucket not in BUCKETS:
        raise QueryRefused(f"bucket: one of {', '.join(BUCKETS)}")
    checked_range(since, until)
    async with bounded(connection, "counting traffic over time", seconds=REPORT_SECONDS):
        span = await connection.fetchrow(_SPAN, since, until)
        if span["first"] is None:
            return Series((), ())
        args = (since, until, span["first"], span["last"], bucket)
        traffic = await connection.fetch(_TRAFFIC, *args)
        reasons = await connection.fetch(_REASONS, *args, INTERCHANGE_LEVEL)
    return Series(
        tuple(Bucket(r["start"], int(r["submissions"]), int(r["routed"]), int(r["rejected"]))
              for r in traffic),
        tuple(Rejections(r["start"], str(r["reason"]), int(r["count"])) for r in reasons))
