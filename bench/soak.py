"""The soak run (issue 13, deliverable 4): a steady load for a long time, and whether the
gateway's resources stay flat.  Not part of ``make test``.

    .venv/bin/python bench/soak.py [--rate 100] [--minutes 30] [--every 30]
        [--connections 4] [--per-connection 4] [--keep DIR] [--workers 1]

What runs is the fault audit's rig (tests/support/fault_audit.py) without a fault: a real
``gateway serve`` process (a child of this one, so what is sampled is the gateway alone, not the
load generator) on a scratch database and topology, a consumer of ours on every agency queue,
and ``--rate`` CUSDEC uploads a second over SFTP on an open-loop schedule (upload ``i`` is due at
``i / rate`` s, so a gateway falling behind shows as a backlog, not as a slower offer) for
``--minutes``.

Every ``--every`` seconds one line: the gateway's process tree (the ``serve`` process and any
worker processes it spawned, summed, from /proc): resident memory, open file descriptors,
threads, CPU share over the interval; the scratch database's connections (pg_stat_activity,
ours left out); the backlog (submissions waiting for their decision, outbox rows waiting for
their dispatch); uploads accepted (their close returned) and routed (reached customs, where
every declaration goes), with their rates over the interval.

At the end: the table, and per measure a verdict, flat or growing, from the samples taken while
the load ran less the first ``WARMUP_SAMPLES``: the median of their first third against the
median of their last third, with the growth per hour; growing means more than the measure's
slack (or 5% of the first median, whichever is more).  Then, once every accepted upload is
delivered and answered (or nothing moved for a minute), the reconciliation of the fault audit:
each accepted upload at each agency its route names under one message_id, one answer; lost,
doubled and unanswered must be 0 and no upload may fail at the client (there is no fault).
Exits 1 otherwise.

Everything is removed at the end, on an error, Ctrl-C or SIGTERM too: the gateway process, the
consumers, the queues and exchanges, the database, the temporary folder (``--keep DIR`` keeps
the config and the gateway's log, ``gateway.log``, in DIR).  Answers stay in the partners'
outboxes until then (a real partner would fetch them; the gateway never reads them back).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and bench/xml.py would shadow
# the standard library's xml (which xmlschema imports): the checkout takes its place.
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from tests.support.fault_audit import (
    AuditRow,
    Load,
    Rig,
    Window,
    expected_routes,
    format_table,
    outbox_answers,
    quiesce,
    reconcile,
    started_rig,
)
from tests.support.harness import database_url

#: Samples left out of the verdicts: the first is taken before any upload, the second while
#: the gateway's caches, pools and buffers are still filling.
WARMUP_SAMPLES = 2
#: The agency every declaration reaches: a reference delivered there is routed.
ROUTED_AT = "customs"
#: After the load: the gateway may catch up on a backlog until nothing moved for this long.
STALL_SECONDS = 60.0
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20


# --- One sample ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load started
    processes: int
    rss_mib: float
    fds: int
    threads: int
    cpu_seconds: float  # user + system of the live processes of the tree, since each started
    cpu_share: float  # percent of one core over the interval since the previous sample
    db_connections: int
    waiting: int  # submissions not decided yet
    outbox: int  # outbox rows not dispatched yet (parked ones left out)
    accepted: int
    routed: int
    accepted_rate: float
    routed_rate: float
    failed: int

    @property
    def backlog(self) -> int:
        return self.waiting + self.outbox


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from the parent of every process in /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path("/proc", entry.name, "stat").read_text()
            except OSError:  # it ended meanwhile
                continue
            children[int(_stat_fields(stat)[1])].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children[pid]
    return found


def _stat_fields(stat: str) -> list[str]:
    """/proc/PID/stat from its third field (state) on: the second, the command, is in
    parentheses and may hold spaces.  Field n of proc(5) is at index n - 3."""
    return stat.rsplit(")", 1)[1].split()


@dataclass(frozen=True)
class TreeUse:
    processes: int
    rss_bytes: int
    fds: int
    threads: int
    cpu_seconds: float


def tree_use(root: int) -> TreeUse:
    """What the process tree of ``root`` holds now (a process gone meanwhile counts nothing)."""
    processes = rss = fds = threads = 0
    cpu = 0.0
    for pid in process_tree(root):
        try:
            fields = _stat_fields(Path("/proc", str(pid), "stat").read_text())
            descriptors = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
        processes += 1
        fds += descriptors
        threads += int(fields[20 - 3])
        rss += int(fields[24 - 3]) * PAGE_BYTES
        cpu += (int(fields[14 - 3]) + int(fields[15 - 3])) / CLOCK_TICKS
    return TreeUse(processes, rss, fds, threads, cpu)


class Sampler:
    """Takes samples of the gateway under ``load``; routed counts are kept incrementally
    (the deliveries list only grows)."""

    def __init__(self, rig: Rig, load: Load, database: asyncpg.Connection) -> None:
        self.rig, self.load, self.database = rig, load, database
        self.samples: list[Sample] = []
        self._routed: set[str] = set()
        self._seen = 0

    async def take(self) -> Sample:
        process = self.rig.gateway.process
        if process is None or process.returncode is not None:
            raise RuntimeError(f"the gateway is not running; see {self.rig.gateway.log}")
        at = self.load.now()
        use = tree_use(process.pid)
        row = await self.database.fetchrow(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            "        AND pid <> pg_backend_pid()) AS connections,"
            " (SELECT count(*) FROM interchanges WHERE status = 'received') AS waiting,"
            " (SELECT count(*) FROM outbox WHERE dispatched_at IS NULL AND parked_at IS NULL)"
            "  AS outbox")
        assert row is not None
        deliveries = self.rig.deliveries
        for delivery in deliveries[self._seen:]:
            if delivery.agency == ROUTED_AT and delivery.acked:
                self._routed.add(delivery.reference)
        self._seen = len(deliveries)
        uploads = self.load.uploads
        accepted = sum(u.accepted for u in uploads)
        previous = self.samples[-1] if self.samples else None
        span = at - previous.at if previous else 0.0

        def rate(now: float, before: float) -> float:
            return (now - before) / span if span > 0 else 0.0

        sample = Sample(
            at=at, processes=use.processes, rss_mib=use.rss_bytes / MIB, fds=use.fds,
            threads=use.threads, cpu_seconds=use.cpu_seconds,
            cpu_share=100 * rate(use.cpu_seconds, previous.cpu_seconds) if previous else 0.0,
            db_connections=row["connections"], waiting=row["waiting"], outbox=row["outbox"],
            accepted=accepted, routed=len(self._routed),
            accepted_rate=rate(accepted, previous.accepted) if previous else 0.0,
            routed_rate=rate(len(self._routed), previous.routed) if previous else 0.0,
            failed=sum(u.error is not None for u in uploads))
        self.samples.append(sample)
        return sample


# --- The verdicts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    name: str
    unit: str
    value: Callable[[Sample], float]
    #: A change up to this much (or 5% of the first median, whichever is more) is flat.
    slack: float


def measures(rate: float) -> tuple[Measure, ...]:
    return (
        Measure("RSS", "MiB", lambda s: s.rss_mib, 4.0),
        Measure("open fds", "", lambda s: s.fds, 3),
        Measure("threads", "", lambda s: s.threads, 2),
        Measure("db connections", "", lambda s: s.db_connections, 2),
        # A backlog within a second of the offer is noise: rows in flight, not a backlog.
        Measure("backlog (waiting + outbox)", "rows", lambda s: s.backlog, rate),
        Measure("CPU", "% of a core", lambda s: s.cpu_share, 5.0),
    )


def verdict(samples: list[Sample], measure: Measure) -> str:
    steady = samples[WARMUP_SAMPLES:]
    third = len(steady) // 3
    if third == 0:
        return f"{measure.name}: too few samples ({len(steady)} after the warm-up; 3 needed)"
    first, last = steady[:third], steady[-third:]
    before = statistics.median(measure.value(s) for s in first)
    after = statistics.median(measure.value(s) for s in last)
    hours = (statistics.median(s.at for s in last) - statistics.median(s.at for s in first)) / 3600
    change = after - before
    tolerance = max(measure.slack, 0.05 * abs(before))
    word = "GROWING" if change > tolerance else "falling" if -change > tolerance else "flat"
    unit = f" {measure.unit}" if measure.unit else ""
    per_hour = f", {change / hours:+.1f}{unit} an hour" if hours > 0 else ""
    return (f"{measure.name}: {word} (median {before:.1f} -> {after:.1f}{unit}{per_hour}; "
            f"slack {tolerance:.1f})")


# --- Output ----------------------------------------------------------------------------------


COLUMNS = ("t s", "procs", "RSS MiB", "fds", "threads", "CPU %", "db conns", "waiting",
           "outbox", "accepted", "acc/s", "routed", "routed/s", "failed")


def cells(sample: Sample) -> tuple[str, ...]:
    return (f"{sample.at:.0f}", str(sample.processes), f"{sample.rss_mib:.1f}", str(sample.fds),
            str(sample.threads), f"{sample.cpu_share:.0f}", str(sample.db_connections),
            str(sample.waiting), str(sample.outbox), str(sample.accepted),
            f"{sample.accepted_rate:.0f}", str(sample.routed), f"{sample.routed_rate:.0f}",
            str(sample.failed))


def line(sample: Sample) -> str:
    return "  ".join(f"{name} {value}" for name, value in zip(COLUMNS, cells(sample), strict=True))


def table(samples: list[Sample], during: int) -> str:
    """Markdown; the samples after the load (``during`` on) are marked."""
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
    for i, sample in enumerate(samples):
        row = list(cells(sample))
        if i >= during:
            row[0] += " (after)"
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


# --- The run ---------------------------------------------------------------------------------


async def sample_during(sampler: Sampler, every: float) -> None:
    """Runs the load, sampling at 0, ``every``, 2 ``every``... until it ends (its errors
    raised); the load is cancelled if this is."""
    load = sampler.load
    running = asyncio.create_task(load.run())
    await asyncio.sleep(0)  # load.t0 is set
    try:
        due = 0.0
        while not running.done():
            print(line(await sampler.take()), flush=True)
            due += every
            await asyncio.wait({running}, timeout=max(0.0, due - load.now()))
        await running
    finally:
        if not running.done():
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def soak(rate: float, seconds: float, every: float, connections: int,
               per_connection: int, root: Path, workers: int = 1
               ) -> tuple[list[Sample], int, AuditRow]:
    """The samples (those from the index returned on were taken after the load) and the
    reconciliation."""
    async with started_rig(root, workers) as rig:
        routes = expected_routes(rig.files.root / "routing.yaml")
        load = Load(rig.files, rig.gateway.port, routes, rate, seconds, connections,
                    per_connection)
        rig.clock = load.now
        database = await asyncpg.connect(database_url(rig.files.database))
        try:
            sampler = Sampler(rig, load, database)
            assert rig.gateway.process is not None
            print(f"soak: {rate:g} uploads/s for {seconds:g} s, a sample every {every:g} s; "
                  f"gateway pid {rig.gateway.process.pid}, database {rig.files.database}",
                  flush=True)
            await sample_during(sampler, every)
            during = len(sampler.samples)
            print(line(await sampler.take()), "(load over)", flush=True)
            await quiesce(rig, load, STALL_SECONDS, settle=2.0)
            print(line(await sampler.take()), "(delivered and answered)", flush=True)
        finally:
            await database.close()
        # No fault: the window is the load's end, with no grace, so any upload failed at the
        # client counts as failed outside it; the "recover" column says when the backlog due
        # by the load's end had reached customs.
        row = reconcile("none (soak)", rate, seconds, load.uploads, rig.deliveries,
                        await outbox_answers(rig.files), Window(seconds, seconds), 0.0, 0,
                        0)
        return sampler.samples, during, row


def report(samples: list[Sample], during: int, row: AuditRow, rate: float) -> bool:
    print(f"\n{table(samples, during)}\n")
    print(f"verdicts (samples during the load less the first {WARMUP_SAMPLES}: median of the "
          "first third against the last third):")
    for measure in measures(rate):
        print(f"  {verdict(samples[:during], measure)}")
    print(f"\nreconciliation (recover s: the backlog due at the load's end reached "
          f"{ROUTED_AT} that long after it):\n")
    print(format_table([row]))
    clean = row.clean and row.failed_in_fault == 0
    print(f"\n{'CLEAN' if clean else 'NOT CLEAN'}: lost {row.lost}, doubled {row.doubled}, "
          f"unanswered {row.unanswered}, failed at the client "
          f"{row.failed_in_fault + row.failed_outside_fault}, misrouted {row.misrouted}, "
          f"strange deliveries {row.strange}; accepted {row.accepted}/{row.offered}")
    return clean


async def main_async(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def terminate() -> None:
        # Cleaning up (stopping the gateway, dropping the database) must not be cut short by
        # a second SIGTERM: later ones are ignored.
        loop.add_signal_handler(signal.SIGTERM, lambda: None)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    root = args.keep or Path(tempfile.mkdtemp(prefix="soak-"))
    if args.keep is not None:
        root.mkdir(parents=True, exist_ok=False)
    try:
        samples, during, row = await soak(args.rate, args.minutes * 60, args.every,
                                          args.connections, args.per_connection, root,
                                          args.workers)
    except asyncio.CancelledError:
        print("soak: interrupted; the gateway, queues and database are removed",
              file=sys.stderr)
        return 130
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if report(samples, during, row, args.rate) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="uploads a second")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the load")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--connections", type=int, default=4,
                        help="SSH connections per partner (two partners)")
    parser.add_argument("--per-connection", type=int, default=4,
                        help="uploads at once on one connection")
    parser.add_argument("--keep", type=Path, help="keep the config and gateway log here")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway serve --workers: processes deciding and relaying")
    args = parser.parse_args()
    logging.getLogger("aiormq.connection").setLevel(logging.ERROR)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
