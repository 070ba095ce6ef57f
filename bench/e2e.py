"""End-to-end throughput: CUSDEC interchanges from VAN clients to the agency queue (issue 13).

    .venv/bin/python bench/e2e.py [--mode sftp|as2|intake] [--clients 16] [--seconds 20]
        [--warmup 3] [--rate R] [--workers 1] [--kb 1] [--messages 1] [--sweep] [--profile]
        [--drain 180] [--ceiling-seconds 3]
    .venv/bin/python bench/e2e.py --faults [amqp_cut,sigkill,db_cut,consumer_killed]
        [--rate 300] [--seconds 20]
    .venv/bin/python bench/e2e.py --cluster [--clients 16] [--seconds 20]   (as root; issue 16)

What runs: a real gateway (``gateway serve`` in this process, tests/support/harness.py via
bench/rig.py) on a scratch PostgreSQL database, its own RabbitMQ exchanges and queues and a
temporary folder, all removed afterwards (on Ctrl-C too).  The load comes from a process of its
own (one process, ``--clients`` asyncio sessions), except in ``intake`` mode:

- ``sftp``: ``--clients`` SFTP sessions (asyncssh) logged in as van-a, each uploading one
  interchange per file (open inbox/<name>, write, close) one after the other (the scratch
  gateway lets one partner have that many connections and sessions: by default it has 8);
- ``as2``: ``--clients`` aiohttp clients POSTing van-a's messages signed (SHA-256) and encrypted
  (AES-256-CBC), asking for a synchronous signed MDN (built before anything is timed);
- ``intake``: ``--clients`` tasks in the gateway's own event loop calling its
  ``Intake.submit`` directly (the instance serve() made): the gateway without a transport.

Every interchange is unique: control reference ``E<13 digits>`` and declaration numbers of its
own, so nothing is a duplicate.  ``--kb``: at least that many KB (goods items added to each
message); ``--messages``: CUSDEC messages per interchange.  Each goods item's first code is
0303.55 (fish, HS chapter 03), so each message goes to customs and to quarantine (routing.yaml).
``--sweep`` runs the 1/10/100 KB x 1/10/100 messages grid (5 s each unless --seconds) on one
gateway and prints how the cost grows per interchange and per KB.

With ``--rate R`` uploads start on an open-loop schedule (the k-th at k/R s) whatever the
answers; "behind schedule" is how late uploads started against it (a session still busy).
Without it every session uploads as fast as it can.

The figures (window = the ``--seconds`` after ``--warmup``; then the gateway is drained: the
bench waits up to ``--drain`` s until nothing is pending):

- accepted/s: uploads whose close (SFTP), 200 + processed MDN (AS2) or submit() returned OK
  within the window.
- routed/s: interchanges whose FIRST delivery reached, within the window, a queue of the
  bench's own (exclusive, bound to the gateway's exchange with the routing key ``customs``, so
  it sees what the customs agency gets; the agency queues are left alone), correlated by the
  ``interchange_ref`` header (the control reference).  The tap consumes in the clients'
  process, not the gateway's.
- latency, p50/p95/p99/max, for the uploads accepted in the window: from the close returning
  to (a) that first delivery on the tap queue, (b) the answer (CONTRL) in the partner's outbox
  (``outbox.dispatched_at`` of the answer's row, the mailbox relay's commit) and, for
  reference, its decision (``acknowledgements.created_at``: the deciding transaction's START,
  which can be before the close returned to the client).  The client's clock and PostgreSQL's
  are the same machine's wall clock.
- ceilings, same machine, same run, from the gateway's process, ``--ceiling-seconds`` each,
  before and after: persistent AMQP publishes with publisher confirms (256 in flight) to a
  durable quorum queue of the bench's own (deleted after), and durable PostgreSQL inserts of
  rows as large as an interchange into a scratch table (single-row transactions on 1 and on 8
  connections; 100 rows per transaction on 8).  Each rate is printed with its ratio to them.
  The ratios to the AMQP ceiling are per interchange: each routed interchange costs the broker
  2 x messages publishes here (customs and quarantine).
- ``--workers N``: the gateway runs ``gateway serve --workers N`` (N - 1 worker processes
  beside the one in this process).
- gateway CPU ms per interchange: this process's CPU and its worker processes' (all their
  threads; in intake mode the load generator too) over the window per routed interchange,
  and from the load's start until drained per accepted interchange (the sweep's cost:
  backlog included); machine share: all cores busy over the window.
- ``--profile``: cProfile of the gateway's event-loop thread over the window (in a sweep, all
  the windows summed), the top 30 functions by own time.

``--faults [LIST]`` (default: every fault) runs the fault audit at load instead, through
bench/faults.py (the same code path; see there and tests/support/fault_audit.py): per fault a
``gateway serve`` process of its own, ``--rate`` (default 300) SFTP uploads a second for
``--seconds``, the fault 40% into the load, then the reconciliation from outside; it prints the
table (lost, doubled and unanswered must be 0) and exits 1 when a run is not clean.  Only
``--rate`` and ``--seconds`` apply to it.

Targets (issue 13) are printed as reference lines, never asserted: 1,000 routed/s over SFTP,
2,000/s in intake mode, p99 close -> queue under 250 ms at a steady 300/s.  The machine is
shared: PostgreSQL, RabbitMQ, the clients and other people's work all use the same 2 cores, so
figures are noisy; give the exact command with any figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import itertools
import logging
import math
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and bench/xml.py would shadow
# the standard library's xml package: the checkout takes its place (as in bench/as2.py).
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aio_pika
import aiohttp
import asyncpg
import asyncssh

import gateway.app.serve as serve_module
from bench import rig
from bench.faults import _faults as fault_list
from bench.faults import run as run_faults
from bench.rig import percentile
from gateway.app.intake import Intake
from gateway.security.as2_write import HttpMessage
from tests.support import harness
from tests.support.edifact import cusdec_message, interchange
from tests.support.fault_audit import FAULTS, format_table

GOODS_CODES = ("0303.55", "8471.30", "6109.10", "0901.21")
#: The agency whose routing key the tap queue is bound with, and the agencies each message
#: of these interchanges goes to (the shipped routing.yaml: 0303.55 is HS chapter 03).
TAP_AGENCY = "customs"
FAN_OUT = 2
PROCESSED = re.compile(rb"Disposition: automatic-action/MDN-sent-automatically; processed\r\n")
CONTROL = "E"
AMQP_IN_FLIGHT = 256
AMQP_BODY_BYTES = 2048
PG_CONNECTIONS = 8
PG_BATCH = 100
SWEEP_KB = (1, 10, 100)
SWEEP_MESSAGES = (1, 10, 100)
#: A sweep point uploads at most this many messages and bytes (the gateway routes far slower
#: than it accepts: unbounded, 100-message interchanges left hours of backlog).
SWEEP_BUDGET_MESSAGES = 2_000
SWEEP_BUDGET_BYTES = 20_000_000
#: An AS2 message for this many per second of the run is built when no --rate is given.
AS2_GUESS_PER_SECOND = 250


# --- the interchanges -----------------------------------------------------------------------

CONTROL_MARK, DECLARATION_MARK = "\x02", "\x01"


@dataclass(frozen=True)
class Template:
    """An interchange with holes for its control reference (UNB and UNZ) and each message's
    declaration number: filled in per upload, so making one costs a join, not a build."""

    parts: tuple[bytes, ...]

    @classmethod
    def of(cls, kb: int, messages: int) -> Template:
        goods = goods_per_message(kb * 1024, messages)
        codes = [GOODS_CODES[i % len(GOODS_CODES)] for i in range(goods)]
        body = interchange([cusdec_message(str(i + 1), codes, declaration=DECLARATION_MARK)
                            for i in range(messages)],
                           control_reference=CONTROL_MARK, sender="VANA")
        return cls(tuple(re.split(rb"([\x01\x02])", body)))

    def fill(self, number: int) -> bytes:
        control = control_reference(number).encode()
        declarations = (f"{CONTROL}{number:013d}-{i}".encode() for i in itertools.count(1))
        return b"".join(control if part == b"\x02" else next(declarations) if part == b"\x01"
                        else part for part in self.parts)


def control_reference(number: int) -> str:
    return f"{CONTROL}{number:013d}"  # UNB 0020 is an..14


def goods_per_message(target: int, messages: int) -> int:
    """Goods items per message for an interchange of at least ``target`` bytes (at least
    one): the size grows by the same amount with each item."""
    def size(goods: int) -> int:
        return len(interchange([cusdec_message(str(i + 1), GOODS_CODES[:1] * goods)
                                for i in range(messages)], sender="VANA"))
    one, two = size(1), size(2)
    if one >= target:
        return 1
    return 1 + math.ceil((target - one) / (two - one))


# --- the clients' process: load and tap -----------------------------------------------------


@dataclass(frozen=True)
class Plan:
    mode: str
    clients: int
    warmup: float
    seconds: float
    rate: float | None
    template: Template
    first: int
    amqp_url: str
    exchange: str
    tap_queue: str
    port: int = 0
    key_path: str = ""
    url: str = ""
    as2: tuple[HttpMessage, ...] = ()
    #: At most this many uploads (--sweep: a budget per point, so that a point's backlog
    #: drains in bounded time and never spills into the next); None: no limit.
    limit: int | None = None


@dataclass
class Load:
    """What the clients did: per upload (number, started, close returned, ok), wall-clock
    seconds (time.time, comparable with PostgreSQL's now()); the window's bounds."""

    uploads: list[tuple[int, float, float, bool]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    #: Seconds each upload started after its scheduled time (with --rate), in the window.
    late: list[float] = field(default_factory=list)
    #: Uploads scheduled in the window that never started.
    unstarted: int = 0
    window: tuple[float, float] = (0.0, 0.0)
    #: When the first upload started (wall clock).
    began: float = 0.0


@dataclass
class Tapped:
    """What the tap queue saw: the first delivery's time per interchange number, and how many
    deliveries in all."""

    first: dict[int, float] = field(default_factory=dict)
    deliveries: int = 0


Send = Callable[[int], Awaitable[bool]]


async def drive(plan: Plan, sessions: list[Send], measuring: Callable[[], None]) -> Load:
    """The sessions upload numbers from ``plan.first`` on for warm-up + window: as fast as
    each can, or on the open-loop schedule of ``plan.rate``."""
    load = Load()
    numbers = itertools.count()
    start = time.perf_counter()
    window, end = start + plan.warmup, start + plan.warmup + plan.seconds
    offset = time.time() - start  # perf_counter -> wall clock
    load.began = start + offset
    told = False

    def tell() -> None:
        nonlocal told
        if not told:
            told = True
            load.window = (window + offset, end + offset)
            measuring()

    async def session(send: Send) -> None:
        for k in numbers:
            if plan.limit is not None and k >= plan.limit:
                return
            due = start + k / plan.rate if plan.rate else time.perf_counter()
            if due >= end:
                return
            if due > time.perf_counter():
                await asyncio.sleep(due - time.perf_counter())
            began = time.perf_counter()
            if began >= window:
                tell()
                if plan.rate:
                    load.late.append(began - due)
            number = plan.first + k
            try:
                ok = await send(number)
            except Exception as exc:  # noqa: BLE001 - counted and shown, never fatal
                ok = False
                load.errors[type(exc).__name__ + ": " + str(exc)[:80]] += 1
            load.uploads.append((number, began + offset, time.time(), ok))
            if not plan.rate and time.perf_counter() >= end:
                return

    async def timer() -> None:
        await asyncio.sleep(max(0.0, window - time.perf_counter()))
        tell()  # even when every session is stuck in an upload

    ticking = asyncio.create_task(timer())
    await asyncio.gather(*(session(s) for s in sessions))
    if not ticking.done():  # the budget ran out before the window began
        ticking.cancel()
        tell()
    if time.perf_counter() < end:  # ... or before it ended: the window ends here
        now = time.time()
        load.window = (min(load.window[0], now), now)  # empty (rates NaN) if none in it
    if plan.rate:
        scheduled = math.ceil(plan.seconds * plan.rate)
        started = sum(1 for _, began, _, _ in load.uploads if began >= load.window[0])
        load.unstarted = max(0, scheduled - started)
    return load


@asynccontextmanager
async def sftp_sessions(plan: Plan) -> AsyncIterator[list[Send]]:
    """``plan.clients`` SFTP sessions as van-a, each its own SSH connection."""
    async with contextlib.AsyncExitStack() as stack:
        sends: list[Send] = []
        for _ in range(plan.clients):
            connection = await stack.enter_async_context(asyncssh.connect(
                "127.0.0.1", plan.port, username="van-a", client_keys=[plan.key_path],
                known_hosts=None, agent_path=None, preferred_auth="publickey"))
            sftp = await stack.enter_async_context(connection.start_sftp_client())
            sends.append(sftp_send(sftp, plan.template))
        yield sends


def sftp_send(sftp: asyncssh.SFTPClient, template: Template) -> Send:
    async def send(number: int) -> bool:
        data = template.fill(number)
        async with sftp.open(f"inbox/e2e-{number}.edi", "wb") as handle:
            await handle.write(data)
        return True  # the close returned: the gateway committed it (or raised)
    return send


@asynccontextmanager
async def as2_sessions(plan: Plan) -> AsyncIterator[list[Send]]:
    connector = aiohttp.TCPConnector(limit=plan.clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(number: int) -> bool:
            index = number - plan.first
            if index >= len(plan.as2):
                raise LookupError("ran out of prebuilt AS2 messages")
            message = plan.as2[index]
            async with session.post(plan.url, data=message.body,
                                    headers=list(message.headers)) as response:
                body = await response.read()
                return response.status == 200 and PROCESSED.search(body) is not None

        yield [send] * plan.clients


class Tap:
    """A queue of the bench's own bound to the gateway's exchange like the customs agency's:
    exclusive, so the broker removes it when this connection goes, however it goes."""

    def __init__(self) -> None:
        self.tapped = Tapped()
        self.last = time.monotonic()
        self._connection: Any = None

    async def start(self, plan: Plan) -> None:
        self._connection = await aio_pika.connect(plan.amqp_url)
        channel = await self._connection.channel()
        queue = await channel.declare_queue(plan.tap_queue, exclusive=True, auto_delete=True)
        await queue.bind(plan.exchange, routing_key=TAP_AGENCY)
        await queue.consume(self._seen, no_ack=True)

    async def _seen(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        now = time.time()
        self.last = time.monotonic()
        self.tapped.deliveries += 1
        reference = str((message.headers or {}).get("interchange_ref") or "")
        if reference.startswith(CONTROL) and reference[1:].isdigit():
            self.tapped.first.setdefault(int(reference[1:]), now)

    async def quiet(self, seconds: float) -> None:
        # a quiet spell, not an event: "nothing more came" has no event to wait on
        while time.monotonic() - self.last < seconds:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


async def client_work(plan: Plan, pipe: Pipe) -> Tapped:
    """In the clients' process: tap, run the load (not in intake mode), and once the parent
    says "stop" (the gateway has nothing pending), what the tap saw."""
    tap = Tap()
    await tap.start(plan)
    try:
        pipe.send("tapping")
        if plan.mode != "intake":
            sessions = sftp_sessions(plan) if plan.mode == "sftp" else as2_sessions(plan)
            async with sessions as sends:
                load = await drive(plan, sends, lambda: pipe.send("measuring"))
            pipe.send(load)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
        await tap.quiet(0.5)
        return tap.tapped
    finally:
        await tap.close()


def clients(pipe: Pipe) -> None:
    # aio-pika logs closing the tap's channel with its consumer still on (harmless)
    logging.getLogger("aio_pika").setLevel(logging.ERROR)
    rig.child_main(pipe, client_work)


# --- the gateway's intake, in process ------------------------------------------------------


class CapturedIntake(Intake):
    """serve()'s Intake, kept where the bench finds it (intake mode submits through the very
    instance the transports use: its pool, and its wake-up of the processor)."""

    made: list[Intake] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        CapturedIntake.made.append(self)


def intake_sessions(intake: Intake, plan: Plan) -> list[Send]:
    async def send(number: int) -> bool:
        await intake.submit("van-a", "sftp", f"e2e-{number}.edi", plan.template.fill(number))
        return True
    return [send] * plan.clients


# --- ceilings -------------------------------------------------------------------------------


@dataclass
class Ceilings:
    amqp: list[float] = field(default_factory=list)
    pg_single: list[float] = field(default_factory=list)
    pg_single_many: list[float] = field(default_factory=list)
    pg_batched: list[float] = field(default_factory=list)

    def figures(self) -> list[tuple[str, str, list[float]]]:
        return [
            ("AMQP", f"confirmed persistent publishes, {AMQP_IN_FLIGHT} in flight, quorum queue,"
             f" {AMQP_BODY_BYTES} B", self.amqp),
            ("PG 1-row", "durable single-row INSERT transactions, 1 connection", self.pg_single),
            (f"PG 1-row x{PG_CONNECTIONS}", f"the same on {PG_CONNECTIONS} connections",
             self.pg_single_many),
            (f"PG batch{PG_BATCH}", f"rows/s, {PG_BATCH} rows per transaction, "
             f"{PG_CONNECTIONS} connections", self.pg_batched),
        ]


async def amqp_ceiling(queue_name: str, seconds: float) -> float:
    """Confirmed persistent publishes per second to a durable quorum queue of its own."""
    connection = await aio_pika.connect(harness.AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(queue_name, durable=True,
                                            arguments={"x-queue-type": "quorum"})
        try:
            body = b"x" * AMQP_BODY_BYTES
            deadline = time.perf_counter() + seconds
            count = 0

            async def publisher() -> None:
                nonlocal count
                while time.perf_counter() < deadline:
                    await channel.default_exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=queue_name)
                    count += 1

            began = time.perf_counter()
            await asyncio.gather(*(publisher() for _ in range(AMQP_IN_FLIGHT)))
            return count / (time.perf_counter() - began)
        finally:
            await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


async def pg_ceiling(url: str, seconds: float, connections: int, batch: int,
                     row_bytes: int) -> float:
    """Rows per second committed into the scratch table ``e2e_ceiling``."""
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    try:
        body = b"x" * row_bytes
        deadline = time.perf_counter() + seconds
        count = 0

        async def writer() -> None:
            nonlocal count
            async with pool.acquire() as connection:
                while time.perf_counter() < deadline:
                    if batch == 1:
                        await connection.execute("INSERT INTO e2e_ceiling (body) VALUES ($1)",
                                                 body)
                    else:
                        await connection.execute(
                            "INSERT INTO e2e_ceiling (body) SELECT $1 FROM"
                            " generate_series(1, $2)", body, batch)
                    count += batch

        began = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(connections)))
        return count / (time.perf_counter() - began)
    finally:
        await pool.close()


async def measure_ceilings(gateway: harness.Gateway, ceilings: Ceilings, seconds: float,
                           row_bytes: int) -> None:
    url = harness.database_url(gateway.files.database)
    await gateway.fetch("CREATE TABLE IF NOT EXISTS e2e_ceiling (id bigserial PRIMARY KEY,"
                        " body bytea NOT NULL, at timestamptz NOT NULL DEFAULT now())")
    print("measuring the ceilings ...", file=sys.stderr)
    ceilings.amqp.append(await amqp_ceiling(
        f"{gateway.files.queue_prefix}e2e-ceiling-{uuid.uuid4().hex[:6]}", seconds))
    ceilings.pg_single.append(await pg_ceiling(url, seconds, 1, 1, row_bytes))
    ceilings.pg_single_many.append(await pg_ceiling(url, seconds, PG_CONNECTIONS, 1, row_bytes))
    ceilings.pg_batched.append(await pg_ceiling(url, seconds, PG_CONNECTIONS, PG_BATCH,
                                                row_bytes))
    await gateway.fetch("TRUNCATE e2e_ceiling")


# --- one measured point ---------------------------------------------------------------------


@dataclass
class Point:
    kb: int
    messages: int
    size: int
    load: Load
    tapped: Tapped
    #: Per interchange number: (answer decided, answer in the outbox) wall-clock seconds.
    answers: dict[int, tuple[float, float | None]]
    statuses: dict[str, int]
    cpu: float
    wall: float
    machine: float
    drained: bool
    #: When the drain ended (wall clock).
    drained_at: float
    #: This process's CPU seconds from the load's start until drained: all the work on every
    #: interchange of the point, backlog included (the window's CPU per routed interchange
    #: says little when a backlog routes far fewer in the window than were accepted).
    total_cpu: float = 0.0
    #: The same span's CPU seconds of PostgreSQL's and RabbitMQ's processes (rig.SERVICES).
    services: dict[str, float] = dataclasses.field(default_factory=dict)
    #: The clients' process's CPU seconds (its whole life: the load and the tap queue).
    clients_cpu: float = 0.0

    @property
    def cost(self) -> float:
        """CPU seconds per accepted interchange, from the load's start until drained."""
        ok = sum(1 for *_, good in self.load.uploads if good)
        return self.total_cpu / ok if ok and self.drained else math.nan

    @property
    def sustained(self) -> float:
        """Accepted interchanges per second from the first upload until all were routed and
        answered (NaN: not drained)."""
        ok = sum(1 for *_, good in self.load.uploads if good)
        spent = self.drained_at - self.load.began
        return ok / spent if self.drained and spent > 0 else math.nan

    @property
    def seconds(self) -> float:
        return self.load.window[1] - self.load.window[0]

    def in_window(self, at: float) -> bool:
        return self.load.window[0] <= at <= self.load.window[1]

    @property
    def accepted(self) -> list[tuple[int, float]]:
        """(number, close returned) of the uploads accepted in the window."""
        return [(n, closed) for n, _, closed, ok in self.load.uploads
                if ok and self.in_window(closed)]

    @property
    def routed(self) -> int:
        return sum(1 for at in self.tapped.first.values() if self.in_window(at))

    def per_second(self, count: int) -> float:
        return count / self.seconds if self.seconds > 0 else math.nan


async def measure(gateway: harness.Gateway, args: argparse.Namespace, kb: int, messages: int,
                  first: int, window: rig.Window) -> Point:
    template = Template.of(kb, messages)
    size = len(template.fill(first))
    plan = Plan(args.mode, args.clients, args.warmup, args.seconds, args.rate, template, first,
                harness.AMQP_URL, gateway.files.exchange,
                f"{gateway.files.queue_prefix}e2e-tap-{uuid.uuid4().hex[:6]}",
                port=gateway.port, key_path=str(gateway.files.partners["van-a"].key_path),
                limit=max(1, min(SWEEP_BUDGET_MESSAGES // messages, SWEEP_BUDGET_BYTES // size))
                if args.sweep else None)
    if args.mode == "as2":
        plan = build_as2(plan, gateway)
    print(f"{args.mode}: {messages} message(s), {size:,} bytes per interchange, "
          f"{args.warmup:g} s + {args.seconds:g} s ...", file=sys.stderr)
    async with rig.ChildProcess(clients) as child:
        child.send(plan)
        await child.expect("tapping")
        began, services_began = rig.gateway_cpu(), rig.service_cpu()
        if args.mode == "intake":
            load = await drive(plan, intake_sessions(CapturedIntake.made[-1], plan),
                               window.start)
        else:
            await child.expect("measuring")
            window.start()
            load = await child.recv()
        window.stop()
        drained = await drain(gateway, args.drain)
        drained_at = time.time()
        total_cpu = rig.gateway_cpu() - began
        services = {name: cpu - services_began[name]
                    for name, cpu in rig.service_cpu().items()}
        child.send("stop")
        finished: rig.Finished = await child.recv()
    answers = await answer_times(gateway, first)
    statuses = {r["status"]: r["n"] for r in await gateway.fetch(
        "SELECT status, count(*) AS n FROM interchanges WHERE file_name LIKE 'e2e-%'"
        " AND control_ref >= $1 GROUP BY status", control_reference(first))}
    return Point(kb, messages, size, load, finished.outcome, answers, statuses, window.cpu,
                 window.wall, window.machine, drained, drained_at, total_cpu, services,
                 finished.cpu)


def build_as2(plan: Plan, gateway: harness.Gateway) -> Plan:
    assert gateway.running is not None and gateway.running.as2_port is not None
    count = math.ceil((plan.warmup + plan.seconds)
                      * (plan.rate or AS2_GUESS_PER_SECOND)) + plan.clients
    print(f"building {count} AS2 messages ...", file=sys.stderr)
    built = tuple(rig.as2_message(plan.template.fill(n), f"e2e-{n}.edi", f"<e2e-{n}@VANA>")[0]
                  for n in range(plan.first, plan.first + count))
    return dataclasses.replace(plan, as2=built,
                               url=f"http://127.0.0.1:{gateway.running.as2_port}/as2")


async def drain(gateway: harness.Gateway, seconds: float) -> bool:
    """Wait until no submission waits for its decision and no outbox row for its dispatch
    (or ``seconds`` passed): whether it got there."""
    deadline = time.monotonic() + seconds
    told = time.monotonic()
    while True:
        (row,) = await gateway.fetch(
            "SELECT (SELECT count(*) FROM interchanges WHERE status = 'received')"
            " + (SELECT count(*) FROM outbox WHERE dispatched_at IS NULL"
            "    AND parked_at IS NULL) AS pending")
        if row["pending"] == 0:
            return True
        if time.monotonic() > deadline:
            return False
        if time.monotonic() - told > 5:
            told = time.monotonic()
            print(f"  draining: {row['pending']} pending", file=sys.stderr)
        await asyncio.sleep(0.25)


async def answer_times(gateway: harness.Gateway, first: int
                       ) -> dict[int, tuple[float, float | None]]:
    rows = await gateway.fetch(
        "SELECT i.control_ref, extract(epoch FROM a.created_at)::float8 AS decided,"
        " extract(epoch FROM o.dispatched_at)::float8 AS written"
        " FROM interchanges i JOIN acknowledgements a ON a.interchange_id = i.id"
        " LEFT JOIN outbox o ON o.dispatch_key = 'ack-' || i.id"
        " WHERE i.control_ref LIKE $1", f"{CONTROL}%")
    return {int(r["control_ref"][1:]): (r["decided"], r["written"]) for r in rows
            if r["control_ref"][1:].isdigit() and int(r["control_ref"][1:]) >= first}


# --- the report -----------------------------------------------------------------------------


def latency_row(name: str, values: list[float], of: int) -> str:
    ms = [v * 1000 for v in values]
    figures = " ".join(f"{percentile(ms, q):9.1f}" for q in (0.5, 0.95, 0.99))
    return (f"  {name:44} {len(values):>7,}/{of:<7,} {figures} "
            f"{max(ms) if ms else math.nan:9.1f}")


def ceiling_ratios(rate: float, ceilings: Ceilings) -> str:
    cells = []
    for short, _, values in ceilings.figures():
        best = max(values) if values else math.nan
        cells.append(f"{short} {rate / best:.3f}" if best else f"{short} -")
    return "  ".join(cells)


def report(args: argparse.Namespace, point: Point, ceilings: Ceilings) -> None:
    accepted = point.accepted
    rate = f"offered {args.rate:g}/s (open loop)" if args.rate else "as fast as possible"
    print(f"\n== e2e {args.mode}: {args.clients} clients, {point.messages} message(s) per "
          f"interchange, {point.size:,} bytes, {rate}; window {point.seconds:.1f} s after "
          f"{args.warmup:g} s warm-up ==")
    print(f"  interchanges in the database: {point.statuses}; the tap saw "
          f"{point.tapped.deliveries:,} deliveries of {len(point.tapped.first):,} interchanges"
          + ("" if point.drained else f"  (NOT DRAINED after {args.drain:g} s)")
          + ("  (AS2: RAN OUT OF MESSAGES)" if any("ran out" in e for e in point.load.errors)
             else ""))
    if point.load.errors:
        print(f"  upload errors: {dict(point.load.errors.most_common(5))}")
    accepted_rate, routed_rate = point.per_second(len(accepted)), point.per_second(point.routed)
    print(f"  {'':30} {'per s':>9}   ratio to the best ceiling of the run")
    print(f"  {'accepted (close returned OK)':30} {accepted_rate:9.1f}   "
          f"{ceiling_ratios(accepted_rate, ceilings)}")
    print(f"  {'routed (first delivery, tap)':30} {routed_rate:9.1f}   "
          f"{ceiling_ratios(routed_rate, ceilings)}")
    publishes = routed_rate * FAN_OUT * point.messages
    amqp = max(ceilings.amqp) if ceilings.amqp else math.nan
    print(f"  {'  = agency publishes':30} {publishes:9.1f}   AMQP {publishes / amqp:.3f} "
          f"({FAN_OUT} agencies x {point.messages} message(s) per interchange)")
    target = {"sftp": "1,000 routed/s over SFTP", "intake": "2,000 routed/s in intake mode"}
    if args.mode in target:
        goal = 1000.0 if args.mode == "sftp" else 2000.0
        print(f"  target (issue 13): {target[args.mode]}: {routed_rate / goal:.0%} of it")
    print(f"  {'latency, ms':44} {'n/accepted':>15} {'p50':>9} {'p95':>9} {'p99':>9} "
          f"{'max':>9}")
    closed = dict(accepted)
    to_queue = [point.tapped.first[n] - c for n, c in closed.items() if n in point.tapped.first]
    written = [w - c for n, c in closed.items()
               if (w := point.answers.get(n, (0.0, None))[1]) is not None]
    decided = [point.answers[n][0] - c for n, c in closed.items() if n in point.answers]
    upload = [c - b for _, b, c, ok in point.load.uploads if ok and point.in_window(c)]
    print(latency_row("close -> first delivery on the tap queue", to_queue, len(closed)))
    print(latency_row("close -> answer in outbox (dispatched_at)", written, len(closed)))
    print(latency_row("close -> answer decided (its txn's start)", decided, len(closed)))
    print(latency_row("upload itself (start -> close returned)", upload, len(closed)))
    if args.rate:
        print(latency_row("behind schedule (upload start - due)", point.load.late,
                          len(point.load.late))
              + f"   never started: {point.load.unstarted}")
        if args.rate >= 300:
            p99 = percentile(to_queue, 0.99) * 1000
            print(f"  target (issue 13): p99 close -> queue < 250 ms at a steady 300/s: "
                  f"{p99:.0f} ms at {args.rate:g}/s")
    per = point.cpu / point.routed * 1000 if point.routed else math.nan
    print(f"  gateway CPU {point.cpu:.2f} s in {point.wall:.2f} s wall "
          f"({point.cpu / point.wall:.0%} of one core), {per:.2f} ms per routed interchange; "
          f"the machine's {os.cpu_count()} cores {point.machine:.0%} busy")
    print(f"  from the load's start until drained: {point.cost * 1000:.2f} ms gateway CPU per "
          f"accepted interchange; {point.sustained:.1f} interchanges/s routed and answered")
    print(cores_line(point))


def cores_line(point: Point) -> str:
    """CPU per accepted interchange of each part, from the load's start until drained, and the
    cores 1,000 interchanges a second would take at that cost (the figure that carries over to
    a larger machine; a saturated small one only shows its own ceiling)."""
    ok = sum(1 for *_, good in point.load.uploads if good)
    if not ok or not point.drained:
        return "  cost per part: not drained"
    parts = {"gateway": point.total_cpu, **point.services}
    if point.clients_cpu:
        parts["clients"] = point.clients_cpu
    costs = {name: seconds / ok * 1000 for name, seconds in parts.items()}
    server = sum(v for k, v in costs.items() if k != "clients")
    listed = ", ".join(f"{name} {ms:.2f}" for name, ms in costs.items())
    return (f"  CPU ms per accepted interchange: {listed}; without the clients "
            f"{server:.2f} ms = {server:.1f} cores for 1,000/s")


def report_ceilings(ceilings: Ceilings, settings: dict[str, str]) -> None:
    print(f"\n== ceilings, same machine, same run (before / after); PostgreSQL {settings} ==")
    for short, what, values in ceilings.figures():
        print(f"  {short:14} {' / '.join(f'{v:9,.0f}' for v in values)} per s   ({what})")


def report_sweep(args: argparse.Namespace, points: list[Point]) -> None:
    print(f"\n== sweep ({args.mode}, {args.clients} clients, at most {args.seconds:g} s and "
          f"{SWEEP_BUDGET_MESSAGES:,} messages or {SWEEP_BUDGET_BYTES // 10**6} MB per point): "
          "how the cost grows ==")
    print(f"  {'KB':>4} {'msgs':>5} {'bytes':>9} {'uploads':>8} {'accepted/s':>11} "
          f"{'routed/s':>9} {'KB/s':>9} {'CPU ms/ich':>11} {'CPU ms/KB':>10} {'x size':>7} "
          f"{'x cost':>7}")
    base = points[0]
    for p in points:
        routed = p.sustained
        print(f"  {p.kb:4} {p.messages:5} {p.size:9,} {len(p.load.uploads):8,} "
              f"{p.per_second(len(p.accepted)):11.1f} "
              f"{routed:9.1f} {routed * p.size / 1024:9.1f} {p.cost * 1000:11.2f} "
              f"{p.cost * 1000 / (p.size / 1024):10.3f} {p.size / base.size:7.1f} "
              f"{p.cost / base.cost:7.1f}")
    print("  (routed/s and CPU: from the load's start until drained, per accepted "
          "interchange (NaN: not drained); x size / x cost: against the first row; target: "
          "cost grows no faster than size)")


# --- the run --------------------------------------------------------------------------------


def sftp_limits(clients: int) -> dict[str, object]:
    """The scratch gateway's SFTP limits, raised so that one partner's ``clients`` sessions
    are all let in (the defaults: 8 connections and 8 sessions per partner)."""
    return {"max_connections_per_partner": max(8, clients),
            "max_sessions_per_partner": max(8, clients)}


def grid(args: argparse.Namespace) -> Iterator[tuple[int, int]]:
    if args.sweep:
        yield from itertools.product(SWEEP_KB, SWEEP_MESSAGES)
    else:
        yield args.kb, args.messages


async def run(args: argparse.Namespace) -> None:
    # SIGTERM (timeout, kill) ends the run like Ctrl-C: cancelled, so everything is removed
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    profile = cProfile.Profile() if args.profile else None
    ceilings = Ceilings()
    points: list[Point] = []
    settings: dict[str, str] = {}
    row_bytes = len(Template.of(args.kb, args.messages).fill(1))
    try:
        with tempfile.TemporaryDirectory(prefix="gw-bench-e2e-") as folder:
            root = Path(folder)
            options = rig.as2_options(root) if args.mode == "as2" else {}
            async with contextlib.AsyncExitStack() as stack:
                vars(serve_module)["Intake"] = CapturedIntake
                try:
                    gateway = await stack.enter_async_context(
                        rig.scratch_gateway(root, sftp=sftp_limits(args.clients),
                                            workers=args.workers, **options))
                finally:
                    vars(serve_module)["Intake"] = Intake
                print(f"scratch gateway: database {gateway.files.database}, exchange "
                      f"{gateway.files.exchange}, files {root}", file=sys.stderr)
                settings = {name: (await gateway.fetch(f"SHOW {name}"))[0][0]
                            for name in ("synchronous_commit", "fsync")}
                await measure_ceilings(gateway, ceilings, args.ceiling_seconds, row_bytes)
                first = 1
                for kb, messages in grid(args):
                    window = rig.Window(profile)
                    point = await measure(gateway, args, kb, messages, first, window)
                    points.append(point)
                    first = max((n for n, *_ in point.load.uploads), default=first) + 1
                await measure_ceilings(gateway, ceilings, args.ceiling_seconds, row_bytes)
    finally:
        rig.forget_pki()
    report_ceilings(ceilings, settings)
    for point in points:
        report(args, point, ceilings)
    if args.sweep:
        report_sweep(args, points)
    if profile is not None:
        print("\ncProfile of the gateway's event-loop thread over the measured window(s), top 30"
              " by own time:")
        print(rig.profile_text(profile, 30))


async def fault_audit(args: argparse.Namespace) -> bool:
    """``--faults``: bench/faults.py's audits at ``--rate`` for ``--seconds``; whether every
    run was clean.  Each audit removes its gateway, queues and database, cancelled too."""
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    rows = await run_faults(args.faults, args.rate, args.seconds, workers=args.workers)
    print(f"\nfault audit: {args.rate:g} uploads/s for {args.seconds:g} s\n")
    print(format_table(rows))
    return all(r.clean for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("sftp", "as2", "intake"), default="sftp")
    parser.add_argument("--clients", type=int, default=16, help="concurrent sessions")
    parser.add_argument("--seconds", type=float, default=None,
                        help="the measured window (default 20; 5 per point with --sweep)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds of load before the window (default 3; 1 with --sweep)")
    parser.add_argument("--rate", type=float, default=None,
                        help="offered interchanges per second, open loop (default: as fast "
                             "as possible)")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway serve --workers: processes deciding and relaying")
    parser.add_argument("--kb", type=int, default=1, help="least KB per interchange")
    parser.add_argument("--messages", type=int, default=1, help="messages per interchange")
    parser.add_argument("--sweep", action="store_true",
                        help="the 1/10/100 KB x 1/10/100 messages grid")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the gateway's event-loop thread over the window")
    parser.add_argument("--drain", type=float, default=180.0,
                        help="longest wait after the window for the backlog to be routed")
    parser.add_argument("--ceiling-seconds", type=float, default=3.0,
                        help="seconds per ceiling figure, before and after")
    parser.add_argument("--cluster", action="store_true",
                        help="routed/s of two gateway nodes beside one node's on the cluster "
                             "rig (bench/cluster.py; as root)")
    parser.add_argument("--faults", type=fault_list, nargs="?", const=list(FAULTS),
                        help="the fault audit at load for these faults (comma-separated; "
                             "default all) instead of the throughput run")
    args = parser.parse_args()
    args.seconds = args.seconds or (5.0 if args.sweep else 20.0)
    if args.cluster:
        from bench import cluster  # imports this module: only once it is loaded
        cluster.run(args.clients, args.warmup if args.warmup is not None else 3.0,
                    args.seconds)
        return
    if args.faults is not None:
        if args.sweep or args.profile or args.mode != "sftp":
            parser.error("--faults runs the SFTP fault audit: no --sweep, --profile or --mode")
        args.rate = args.rate or 300.0
        # The consumer killed on purpose makes aiormq log its broken link with a traceback.
        logging.getLogger("aiormq.connection").setLevel(logging.ERROR)
        try:
            clean = asyncio.run(fault_audit(args))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted: each audit's database, queues and gateway are removed",
                  file=sys.stderr)
            raise SystemExit(130) from None
        raise SystemExit(0 if clean else 1)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.sweep else 3.0)
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: the scratch database, exchanges, queues and files are removed",
              file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
