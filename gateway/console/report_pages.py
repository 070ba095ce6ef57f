"""The Charts and Clearance pages (issue 14): traffic and rejections by reason over time
(store.ops_charts), and the clearance times between milestones - lodged, syntax-accepted,
delivered, each agency's decision, released - as p50 and p90 by agency, message type, partner
and trusted-trader status (store.reports), with CSV and JSON export and the overdue answers as
an alarm list.  Charts are server-drawn SVG (console.charts) beside tables of the same
numbers.  Read-only (viewer)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from gateway import alarms
from gateway.console.charts import Bar, column_chart, range_chart
from gateway.console.exports import csv_download, json_download
from gateway.console.traffic_pages import _time
from gateway.errors import QueryRefused
from gateway.store.attention import overdue
from gateway.store.ops_charts import BUCKETS, INTERCHANGE_LEVEL, Bucket, Series, series
from gateway.store.reports import DIMENSIONS, STAGES, ClearanceRow, clearance_times

Render = Callable[..., web.Response]
#: The Charts page's ranges: (bucket, length).
RANGES = {"24h": ("hour", dt.timedelta(hours=24)), "30d": ("day", dt.timedelta(days=30))}
#: Reasons drawn as charts of their own (the rest are in the table).
CHARTED_REASONS = 5
OVERDUE_SHOWN = 100
DIMENSION_TITLES = {"agency": "Agency", "message_type": "Message type",
                    "partner": "Partner", "aeo": "Trusted trader (AEO)"}
CSV_HEADER = ("dimension", "value", "declarations", "stage", "count", "p50_seconds",
              "p90_seconds")


def stage_title(name: str) -> str:
    """lodged_to_accepted -> lodged → accepted."""
    return name.replace("_to_", " → ").replace("_", " ")


def buckets(since: dt.datetime, until: dt.datetime, bucket: str) -> list[dt.datetime]:
    """Every bucket start in [since, until), so an empty hour shows as 0, not as a gap."""
    step = BUCKETS[bucket]
    start = since.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        start = start.replace(hour=0)
    found = []
    while start < until:
        found.append(start)
        start += step
    return found


class ReportPages:
    def __init__(self, pool: Any, render: Render,
                 deadlines: Callable[[], dict[str, float]]) -> None:
        self._pool = pool
        self._render = render
        self._deadlines = deadlines

    async def charts(self, request: web.Request) -> web.Response:
        chosen = request.query.get("range", "24h")
        chosen = chosen if chosen in RANGES else "24h"
        bucket, length = RANGES[chosen]
        until = dt.datetime.now(dt.UTC)
        since = until - length
        problem = ""
        try:
            async with self._pool.acquire() as connection:
                found = await series(connection, since, until, bucket)
        except QueryRefused as exc:  # too slow to answer: said, with nothing drawn
            found, problem = Series((), ()), str(exc)
        starts = buckets(since, until, bucket)
        by_start = {b.start: b for b in found.buckets}
        label = "%H:00" if bucket == "hour" else "%m-%d"
        table = [by_start.get(s) or Bucket(s, 0, 0, 0) for s in starts]
        every = 3 if bucket == "hour" else 5

        def chart(title: str, key: str, css: str) -> tuple[str, Any]:
            values = [Bar(b.start.strftime(label), getattr(b, key)) for b in table]
            top = max((v.value for v in values), default=0)
            return f"{title} (highest {top:.0f})", column_chart(title, values, css, every)

        totals: dict[str, int] = {}
        per_reason: dict[tuple[str, dt.datetime], int] = {}
        for r in found.rejections:
            totals[r.reason] = totals.get(r.reason, 0) + r.count
            per_reason[r.reason, r.start] = r.count
        reasons = sorted(totals, key=lambda k: (-totals[k], k))
        reason_charts = [(reason, column_chart(
            f"Rejections under {reason}", [Bar(s.strftime(label), per_reason.get((reason, s), 0))
                                           for s in starts], "series-c", every))
            for reason in reasons[:CHARTED_REASONS]]
        return self._render(
            request, "charts.html", status=400 if problem else 200, problem=problem,
            chosen=chosen, ranges=list(RANGES), table=table,
            bucket=bucket, since=since, until=until, reasons=reasons, totals=totals,
            reason_charts=reason_charts, interchange_level=INTERCHANGE_LEVEL,
            charts=[chart("Submissions lodged", "submissions", "series-a"),
                    chart("Messages routed", "routed", "series-b"),
                    chart("Submissions rejected", "rejected", "series-c")])

    def _range(self, request: web.Request) -> tuple[dt.datetime, dt.datetime]:
        until = _time("until", request.query.get("until", "").strip()) or \
            dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        since = _time("since", request.query.get("since", "").strip()) or \
            until - dt.timedelta(hours=24)
        return since, until

    async def _report(self, request: web.Request
                      ) -> tuple[dt.datetime, dt.datetime, list[ClearanceRow]]:
        since, until = self._range(request)
        async with self._pool.acquire() as connection:
            rows = await clearance_times(connection, since, until)
        return since, until, rows

    async def clearance(self, request: web.Request) -> web.Response:
        names = [name for name, _ in STAGES]
        stage = request.query.get("stage", "")
        stage = stage if stage in names else names[-1]
        values: dict[str, Any] = {
            "stages": names, "stage": stage, "stage_title": stage_title, "groups": {},
            "charts": {}, "problem": "", "dimension_titles": DIMENSION_TITLES,
            "since": "", "until": "", "query": ""}
        try:
            since, until, rows = await self._report(request)
        except QueryRefused as exc:
            values["problem"] = str(exc)
            rows, since, until = [], None, None
        groups: dict[str, list[ClearanceRow]] = {d: [] for d in DIMENSIONS}
        for row in rows:
            groups[row.dimension].append(row)
        charts = {}
        for dimension, found in groups.items():
            figures = [(r.value, s.p50, s.p90) for r in found for s in r.stages
                       if s.name == stage]
            charts[dimension] = range_chart(
                f"{stage_title(stage)} by {DIMENSION_TITLES[dimension].lower()}: p50 inside "
                "p90, seconds", figures)
        try:
            async with self._pool.acquire() as connection:
                late = await overdue(connection, OVERDUE_SHOWN)
        except QueryRefused as exc:
            late, values["problem"] = [], values["problem"] or str(exc)
        if since is not None and until is not None:
            values |= {"since": _form_time(since), "until": _form_time(until),
                       "query": f"since={_form_time(since)}&until={_form_time(until)}"}
        return self._render(request, "clearance.html",
                            status=400 if values["problem"] else 200,
                            **{**values, "groups": groups, "charts": charts},
                            overdue=late, deadlines=self._deadlines(),
                            overdue_code=alarms.ANSWER_OVERDUE)

    async def clearance_csv(self, request: web.Request) -> web.Response:
        since, until, rows = await self._report_or_refuse(request)
        return csv_download(CSV_HEADER, _flat(rows), _filename(since, until, "csv"))

    async def clearance_json(self, request: web.Request) -> web.Response:
        since, until, rows = await self._report_or_refuse(request)
        return json_download({
            "since": since.isoformat(), "until": until.isoformat(),
            "groups": [{"dimension": r.dimension, "value": r.value,
                        "declarations": r.declarations,
                        "stages": {s.name: {"count": s.count, "p50_seconds": s.p50,
                                            "p90_seconds": s.p90} for s in r.stages}}
                       for r in rows]}, _filename(since, until, "json"))

    async def _report_or_refuse(self, request: web.Request
                                ) -> tuple[dt.datetime, dt.datetime, list[ClearanceRow]]:
        try:
            return await self._report(request)
        except QueryRefused as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from exc


def _flat(rows: list[ClearanceRow]) -> Iterator[tuple[object, ...]]:
    for row in rows:
        for s in row.stages:
            yield (row.dimension, row.value, row.declarations, s.name, s.count, s.p50, s.p90)


def _form_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")


def _filename(since: dt.datetime, until: dt.datetime, extension: str) -> str:
    return (f"clearance-times-{since.astimezone(dt.UTC):%Y%m%dT%H%M}-"
            f"{until.astimezone(dt.UTC):%Y%m%dT%H%M}.{extension}")
