"""The console's queries at a million stored declarations (issue 14, "Speed").

    .venv/bin/python bench/console.py [--declarations 1000000] [--runs 30]

Fills a scratch database of its own (bench/console_fill.py: about 23 rows per declaration,
written by PostgreSQL from generate_series), then runs each console query with varied
parameters (random references, partners, days, declarations) through gateway.store (its
read-only transaction, statement timeout and typed rows included) and, beside it, the same
SQL statements run bare on the connection, and prints median and p95 of each with the ratio,
and the server's CPU time for ours (the backend's /proc schedstat: what the query costs an
idle core on a machine other work shares; --serial keeps parallel workers out of it).
Targets from the issue: a search by reference under 50 ms, a timeline under 100 ms, the
clearance report over a day's traffic under 1 s.  Then EXPLAIN says which index each query
walks.  The database is dropped at the end (Ctrl-C too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and bench/xml.py would shadow
# the standard library's xml (bench/e2e.py does the same).
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench.console_fill import SPACING_SECONDS, fill
from bench.rig import percentile
from gateway.errors import QueryRefused
from gateway.store import reports, timeline, traffic
from gateway.store.database import upgrade
from gateway.store.traffic import TrafficQuery

POSTGRES = "postgresql://postgres@127.0.0.1:5432/"

Query = Callable[[Any, random.Random], Awaitable[object]]


@dataclass
class Recorder:
    """A connection that notes each SELECT it runs, so that the same statements can be run
    again bare (no transaction, no SET, no rows made into dataclasses)."""

    connection: Any
    statements: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)

    def transaction(self, **options: Any) -> Any:
        return self.connection.transaction(**options)

    #: The SET LOCAL statements the store ran (its planner settings and timeout).
    settings: list[str] = field(default_factory=list)

    async def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("SET LOCAL"):
            self.settings.append(sql)
        return await self.connection.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any, **options: Any) -> Any:
        self.statements.append(("fetch", sql, args))
        return await self.connection.fetch(sql, *args, **options)

    async def fetchrow(self, sql: str, *args: Any, **options: Any) -> Any:
        self.statements.append(("fetchrow", sql, args))
        return await self.connection.fetchrow(sql, *args, **options)


@dataclass(frozen=True)
class Scenario:
    name: str
    target_ms: float | None
    run: Query


def _ref(g: int) -> str:
    return "CR" + str(g).rjust(10, "0")


def scenarios(count: int) -> list[Scenario]:
    now = dt.datetime.now(dt.UTC)

    def g(rng: random.Random) -> int:
        return rng.randint(1, count)

    def day(rng: random.Random) -> tuple[dt.datetime, dt.datetime]:
        days = max(1, int(count * SPACING_SECONDS / 86400))
        start = now - dt.timedelta(days=rng.randint(1, days))
        return start, start + dt.timedelta(days=1)

    def hours(rng: random.Random, count: int) -> tuple[dt.datetime, dt.datetime]:
        since, _ = day(rng)
        return since, since + dt.timedelta(hours=count)

    def in_day(rng: random.Random, query: TrafficQuery) -> TrafficQuery:
        since, until = day(rng)
        return replace(query, since=since, until=until)

    def partner(rng: random.Random) -> str:
        return f"van-{rng.choice([0, 1, 5, 20, 60, 120, 199]):03d}"

    async def cursor_page(c: Any, rng: random.Random) -> object:
        first = await traffic.search_declarations(c, TrafficQuery(partner=partner(rng)))
        return await traffic.search_declarations(c, TrafficQuery(partner=partner(rng)),
                                                 first.next)

    def search(query: Callable[[random.Random], TrafficQuery], declarations: bool) -> Query:
        find = traffic.search_declarations if declarations else traffic.search_interchanges
        return lambda c, rng: find(c, query(rng))

    return [
        Scenario("search interchanges by control ref", 50, search(
            lambda r: TrafficQuery(reference=_ref(g(r))), False)),
        Scenario("search declarations by document no.", 50, search(
            lambda r: TrafficQuery(reference=f"DEC-{g(r):09d}"), True)),
        Scenario("search declarations by submission id", 50, search(
            lambda r: TrafficQuery(reference=str(g(r))), True)),
        Scenario("search by message ref (rare)", 50, search(
            lambda r: TrafficQuery(message_ref=f"M{g(r) // 10 * 10 or 10}"), True)),
        Scenario("newest interchanges, no filter", 50, search(
            lambda r: TrafficQuery(), False)),
        Scenario("declarations of a partner", 50, search(
            lambda r: TrafficQuery(partner=partner(r)), True)),
        Scenario("  same, its second page", 50, cursor_page),
        Scenario("partner + type + a day", 50, search(
            lambda r: in_day(r, TrafficQuery(partner=partner(r), message_type="CUSDEC")),
            True)),
        Scenario("rejected interchanges in a day", 50, search(
            lambda r: in_day(r, TrafficQuery(status="rejected")), False)),
        Scenario("unroutable declarations (1 %)", 50, search(
            lambda r: TrafficQuery(status="unroutable"), True)),
        Scenario("PAXLST declarations (2 %)", 50, search(
            lambda r: TrafficQuery(message_type="PAXLST"), True)),
        Scenario("a message type nobody sends", 50, search(
            lambda r: TrafficQuery(message_type=f"X{r.randint(0, 999)}"), True)),
        Scenario("held PAXLST declarations", 50, search(
            lambda r: TrafficQuery(message_type="PAXLST", status="held"), True)),
        Scenario("timeline of a declaration", 100,
                 lambda c, r: timeline.declaration_timeline(c, g(r))),
        Scenario("timeline of an interchange", 100,
                 lambda c, r: timeline.interchange_timeline(c, g(r))),
        Scenario("raw bytes of a submission", 100,
                 lambda c, r: timeline.body(c, timeline.BodyRef("raw", g(r)))),
        Scenario("clearance report, one day", 1000,
                 lambda c, r: reports.clearance_times(c, *day(r))),
        Scenario("clearance report, one day, by agency", 1000,
                 lambda c, r: reports.clearance_times(c, *day(r), dimensions=("agency",))),
        Scenario("clearance report, 8 hours (1M a month)", 1000,
                 lambda c, r: reports.clearance_times(c, *hours(r, 8))),
        Scenario("rule hits, one day", 1000, lambda c, r: reports.rule_hits(c, *day(r))),
    ]


@dataclass
class Figures:
    ours: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    #: CPU time the server process spent on each of ``ours`` (None: not readable here).
    cpu: list[float] = field(default_factory=list)
    #: Runs the server stopped at the query's statement timeout (QueryRefused).
    stopped: int = 0


def server_cpu(pid: int) -> float | None:
    """Seconds of CPU a local PostgreSQL backend has used (/proc/PID/schedstat, ns): on a
    machine whose cores other work shares, what a query costs an idle core, not how long it
    waited for one.  Parallel workers are other processes: --serial keeps them out."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


async def measure(connection: Any, scenario: Scenario, runs: int, seed: int,
                  serial: bool) -> Figures:
    rng, figures = random.Random(seed), Figures()
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    with contextlib.suppress(QueryRefused):  # warm the plan and the pages
        await scenario.run(connection, random.Random(seed + 1))
    for _ in range(runs):
        recorder = Recorder(connection)
        started, cpu = time.perf_counter(), server_cpu(pid)
        try:
            await scenario.run(recorder, rng)
        except QueryRefused:
            figures.stopped += 1
            continue
        figures.ours.append(time.perf_counter() - started)
        after = server_cpu(pid)
        if cpu is not None and after is not None:
            figures.cpu.append(after - cpu)
        # Bare: the same statements under the same settings, made for the session before
        # the clock starts (no transaction, no typed rows).
        for settings in recorder.settings:
            await connection.execute(settings.replace("SET LOCAL", "SET"))
        started = time.perf_counter()
        for method, sql, args in recorder.statements:
            await getattr(connection, method)(sql, *args)
        figures.bare.append(time.perf_counter() - started)
        await connection.execute("RESET ALL" if not serial else
                                 "RESET ALL; SET max_parallel_workers_per_gather = 0")
    return figures


async def explain(connection: Any, scenario: Scenario, seed: int) -> str:
    """The indexes the scenario's statements walk (EXPLAIN of each)."""
    recorder = Recorder(connection)
    with contextlib.suppress(QueryRefused):
        await scenario.run(recorder, random.Random(seed))
    plans = []
    # Under the settings the store runs them with (a report joins by hashing).
    async with traffic.bounded(connection, "explaining", seconds=60,
                               hash_joins=(scenario.target_ms or 0) >= 1000):
        for _, sql, args in recorder.statements:
            plans.append(await connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
    used: list[str] = []
    for plan in plans:
        used.extend(name for name in _index_names(plan) if name not in used)
    seq = sorted({name for plan in plans for name in _seq_scans(plan)})
    text = ", ".join(used) or "no index"
    return text + (f"; SEQ SCAN of {', '.join(seq)}" if seq else "")


def _nodes(plan: str) -> list[dict[str, Any]]:
    stack: list[dict[str, Any]] = [json.loads(plan)[0]["Plan"]]
    found = []
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.get("Plans", []))
    return found


def _index_names(plan: str) -> list[str]:
    return [n["Index Name"] for n in _nodes(plan) if "Index Name" in n]


def _seq_scans(plan: str) -> list[str]:
    return [n["Relation Name"] for n in _nodes(plan) if n["Node Type"] == "Seq Scan"]


def _ms(values: list[float], share: float | None = None) -> float:
    return 1000 * (median(values) if share is None else percentile(values, share))


def report(name: str, target: float | None, figures: Figures) -> str:
    stopped = f" ({figures.stopped} stopped at the timeout)" if figures.stopped else ""
    if not figures.ours:
        return f"{name:<38} every run stopped at the timeout"
    ours, bare = _ms(figures.ours), _ms(figures.bare)
    slow = figures.stopped or _ms(figures.ours, 0.95) >= (target or math.inf)
    verdict = "" if target is None else ("SLOW" if slow else "ok")
    cpu = f"{_ms(figures.cpu):8.2f}" if figures.cpu else f"{'-':>8}"
    return (f"{name:<38} {ours:8.2f} {_ms(figures.ours, 0.95):8.2f} {bare:8.2f}"
            f" {_ms(figures.bare, 0.95):8.2f} {ours / bare if bare else 0:6.2f} {cpu}"
            f" {target or '':>7} {verdict}{stopped}")


async def run(args: argparse.Namespace) -> None:
    if args.database:  # filled by an earlier --keep run: measure only
        await _measure_all(POSTGRES + args.database, args)
        return
    name = f"gw_bench_console_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES + "postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = POSTGRES + name
        await upgrade(url)
        print(f"filling {name} with {args.declarations:,} declarations' worth of rows")
        started = time.perf_counter()
        await fill(url, args.declarations, print)
        print(f"  filled in {time.perf_counter() - started:.1f} s")
        await _measure_all(url, args)
    finally:
        if args.keep:
            print(f"kept {name}: measure it again with --database {name}, then DROP it")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _measure_all(url: str, args: argparse.Namespace) -> None:
    connection = await asyncpg.connect(url)
    if args.serial:
        await connection.execute("SET max_parallel_workers_per_gather = 0")
    try:
        sizes = await connection.fetch(
            "SELECT relname, reltuples::bigint AS n FROM pg_class WHERE relkind = 'r'"
            " AND relnamespace = 'public'::regnamespace AND reltuples > 0 ORDER BY 2 DESC")
        print("rows: " + ", ".join(f"{r['relname']} {r['n']:,}" for r in sizes))
        print(f"load average {os.getloadavg()[0]:.1f} (2 cores here: other work shares them)")
        print(f"\n{'query (ms)':<38} {'median':>8} {'p95':>8} {'bare':>8} {'bare p95':>8}"
              f" {'ratio':>6} {'cpu':>8} {'target':>7}")
        plans = []
        for seed, scenario in enumerate(scenarios(args.declarations)):
            if args.only and args.only not in scenario.name:
                continue
            runs = args.runs if (scenario.target_ms or 0) < 1000 else max(5, args.runs // 4)
            figures = await measure(connection, scenario, runs, seed, args.serial)
            print(report(scenario.name, scenario.target_ms, figures), flush=True)
            plans.append((scenario.name, await explain(connection, scenario, seed)))
        print(f"load average {os.getloadavg()[0]:.1f}")
        print("\nindexes walked (EXPLAIN):")
        for label, used in plans:
            print(f"  {label.strip():<38} {used}")
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--declarations", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--only", help="run the queries whose name holds this text")
    parser.add_argument("--database", help="measure a database kept by --keep (no fill)")
    parser.add_argument("--serial", action="store_true",
                        help="no parallel workers: the cpu column is then the whole query's")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
