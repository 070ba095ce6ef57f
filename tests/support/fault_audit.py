"""The fault audit at load (issue 13, deliverable 3): a steady SFTP load on a real ``gateway
serve`` process, one fault in the middle, then a reconciliation from outside.

The gateway runs as a subprocess, so SIGKILL is the real thing.  It reaches PostgreSQL and
RabbitMQ through loopback proxies (tests/support/proxy.py) that a fault cuts and restores.  The
load is open-loop: upload ``i`` is due at ``i / rate`` seconds whatever happened before it, so a
stall shows as a backlog, not as a slower offer.  Each agency queue is read by a consumer of
ours that records every delivery and acks it; the customs one reaches the broker through a
proxy of its own, so it can be killed abruptly while holding unacknowledged deliveries.

Afterwards only what a partner and an agency can see is counted (DESIGN rules 1-3): the
deliveries our consumers took and the answers in each partner's outbox folder.  The routes are
read from the routing.yaml the gateway runs with.  An upload whose close returned must reach
each agency its route names under exactly one message_id, no other agency, and have exactly
one answer; an upload may fail at the client only while a fault lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aio_pika
import asyncpg
import asyncssh
import yaml

from tests.support.edifact import cusdec
from tests.support.fault_reconcile import (
    AuditRow,
    Delivery,
    Upload,
    Window,
    format_table,
    reconcile,
)
from tests.support.harness import (
    AMQP_URL,
    DEMO_AGENCIES,
    Files,
    create_database,
    database_url,
    delete_topology,
    drop_database,
    write_files,
)
from tests.support.proxy import TcpProxy

#: The API (bench/faults.py, bench/e2e.py --faults): ``audit`` runs one, ``format_table``
#: prints rows; the row and the observations come from the pure tests.support.fault_reconcile.
#: bench/soak.py runs its load on ``started_rig`` and waits with ``quiesce``.
__all__ = ["FAULTS", "AgencyConsumer", "AuditRow", "Delivery", "GatewayProcess", "Load",
           "Observed", "Rig", "Upload", "Window", "audit", "expected_routes", "format_table",
           "free_port", "outbox_answers", "quiesce", "reconcile", "started_rig"]

FAULTS = ("amqp_cut", "sigkill", "db_cut", "consumer_killed")
GATEWAY_BIN = Path(sys.executable).with_name("gateway")
#: Two commodity codes and so two routes: chapter 03 (fish) goes to quarantine as well.
COMMODITIES = ("0303.55", "8471.30")
#: The consumer that ``consumer_killed`` kills; every declaration reaches it.
KILLED_AGENCY = "customs"
PREFETCH = 100
UPLOAD_TIMEOUT = 30.0
START_TIMEOUT = 60.0
_ANSWER = re.compile(r"(?P<upload>.+)\.(?P<submission>[0-9]+)\.contrl\.edi")



# --- Routes, from routing.yaml -----------------------------------------------------------


def expected_routes(routing: Path, commodities: tuple[str, ...] = COMMODITIES
                    ) -> dict[str, frozenset[str]]:
    """The agencies (deliver and copy_to) a one-item CUSDEC with each commodity code reaches,
    from the rules naming ``kind: CustomsDeclaration``.  Only ``kind`` and ``hs_chapters`` are
    understood: a rule for declarations with any other condition stops the audit rather than
    letting it guess."""
    table = yaml.safe_load(routing.read_text())
    lists: dict[str, list[str]] = table.get("lists") or {}
    routes: dict[str, set[str]] = {code: set() for code in commodities}
    for rule in table["rules"]:
        match = rule.get("match") or {}
        if match.get("kind") != "CustomsDeclaration" or "state" in match:
            continue  # a rule on a declaration's state is judged when an agency decides it;
            # the audit's agencies acknowledge deliveries and never decide
        unknown = set(match) - {"kind", "hs_chapters"}
        if unknown:
            raise ValueError(f"{routing}: rule {rule.get('name')}: the audit cannot evaluate "
                             f"{sorted(unknown)}")
        chapters = match.get("hs_chapters")
        for code in commodities:
            if chapters is None or _in_chapters(code[:2], chapters, lists):
                routes[code] |= set(rule.get("deliver") or ()) | set(rule.get("copy_to") or ())
    return {code: frozenset(agencies) for code, agencies in routes.items()}


def _in_chapters(chapter: str, condition: Any, lists: dict[str, list[str]]) -> bool:
    if isinstance(condition, str) and condition.startswith("@"):
        condition = lists[condition[1:]]
    for item in [condition] if isinstance(condition, str) else condition:
        low, _, high = str(item).partition("-")
        if low <= chapter <= (high or low):
            return True
    return False


# --- The gateway process -----------------------------------------------------------------


class GatewayProcess:
    """``gateway --config FILE serve --workers N`` as a child process (with its N - 1 worker
    processes), its output appended to a log."""

    def __init__(self, config: Path, log: Path, port: int, workers: int = 1) -> None:
        self.config, self.log, self.port, self.workers = config, log, port, workers
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                str(GATEWAY_BIN), "--config", str(self.config), "serve",
                "--workers", str(self.workers), stdout=out, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, env=env)
        await self._listening()

    async def _listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"the gateway exited ({self.process.returncode}); "
                                     f"see {self.log}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the gateway did not listen within {START_TIMEOUT} s; "
                             f"see {self.log}")

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM (a graceful drain), SIGKILL when it takes too long."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            await self.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- Agency consumers --------------------------------------------------------------------


class AgencyConsumer:
    """One agency's queue, consumed with manual acks: each delivery is recorded, then acked.
    ``hold`` stops acking (the deliveries stay unacknowledged in our hands)."""

    def __init__(self, agency: str, queue: str, url: str, record: Callable[[Delivery], None],
                 clock: Callable[[], float]) -> None:
        self.agency, self.queue, self.url = agency, queue, url
        self._record, self._clock = record, clock
        self.connection: Any = None
        self.holding = False
        self.held = 0

    async def start(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.connection = await aio_pika.connect(self.url)
                channel = await self.connection.channel()
                await channel.set_qos(prefetch_count=PREFETCH)
                queue = await channel.get_queue(self.queue, ensure=True)
                await queue.consume(self._take, no_ack=False)
                return
            except Exception:  # the gateway declares the queue: not yet, or a flaky link
                if self.connection is not None:
                    with contextlib.suppress(Exception):
                        await self.connection.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _take(self, message: Any) -> None:
        headers = message.headers or {}
        try:
            body_reference = json.loads(message.body)["source"]["interchange_reference"]
        except (ValueError, KeyError, TypeError):
            body_reference = "?"
        self._record(Delivery(
            self.agency, str(message.message_id), str(headers.get("interchange_ref")),
            str(body_reference), bool(message.redelivered), self._clock(),
            acked=not self.holding))
        if self.holding:
            self.held += 1
            return
        await message.ack()

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()


# --- The load ----------------------------------------------------------------------------


class Session:
    """One SSH connection with one SFTP session, shared by a few uploaders; the first of them
    to see it broken reconnects it (the others wait on the lock).  With several gateway nodes
    (``ports``), a connection that fails goes to the next, as a TCP load balancer would send
    it to a live node."""

    def __init__(self, ports: tuple[int, ...], partner: str, key: Path) -> None:
        self.ports, self.partner, self.key = ports, partner, key
        self._attempts = 0
        self.connection: asyncssh.SSHClientConnection | None = None
        self.sftp: asyncssh.SFTPClient | None = None
        self.generation = 0
        self._lock = asyncio.Lock()

    async def client(self, until: float) -> tuple[int, asyncssh.SFTPClient]:
        async with self._lock:
            while self.sftp is None:
                try:
                    port = self.ports[self._attempts % len(self.ports)]
                    self._attempts += 1
                    self.connection = await asyncssh.connect(
                        "127.0.0.1", port, username=self.partner,
                        client_keys=[str(self.key)], known_hosts=None, agent_path=None,
                        preferred_auth="publickey")
                    self.sftp = await self.connection.start_sftp_client()
                    self.generation += 1
                except (OSError, asyncssh.Error):
                    self.close()
                    if time.monotonic() > until:
                        raise
                    await asyncio.sleep(0.1)
            return self.generation, self.sftp

    def broken(self, generation: int) -> None:
        if generation == self.generation:
            self.close()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.abort()
        self.connection = self.sftp = None


class Load:
    """``rate`` uploads a second for ``seconds``, due on a fixed schedule, spread over both
    partners' sessions."""

    def __init__(self, files: Files, port: int | tuple[int, ...],
                 routes: dict[str, frozenset[str]], rate: float, seconds: float,
                 connections: int, per_connection: int) -> None:
        """``port``: the gateway's SFTP port, or each node's (the sessions spread over them)."""
        ports = (port,) if isinstance(port, int) else port
        tag = uuid.uuid4().hex[:5].upper()
        partners = sorted(files.partners.values(), key=lambda p: p.partner_id)
        codes = sorted(routes)
        self.uploads = [
            Upload(f"fa-{tag}-{i:06d}.edi", partners[i % len(partners)].partner_id,
                   f"{tag}{i:07d}", routes[codes[(i // 2) % len(codes)]], i / rate)
            for i in range(round(rate * seconds))]
        self._codes = {u.name: codes[(i // 2) % len(codes)] for i, u in enumerate(self.uploads)}
        self._senders = {p.partner_id: p.sender_id for p in partners}
        self._queues: dict[str, asyncio.Queue[Upload | None]] = {
            p.partner_id: asyncio.Queue() for p in partners}
        self._sessions = [Session((*ports[k % len(ports):], *ports[:k % len(ports)]),
                                  p.partner_id, p.key_path)
                          for p in partners for k in range(connections)]
        self._per_connection = per_connection
        self.t0 = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def run(self) -> None:
        self.t0 = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for session in self._sessions:
                for _ in range(self._per_connection):
                    group.create_task(self._uploader(session))
            await self._schedule()
        for session in self._sessions:
            session.close()

    async def _schedule(self) -> None:
        for upload in self.uploads:
            delay = upload.due - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            self._queues[upload.partner].put_nowait(upload)
        for session in self._sessions:
            for _ in range(self._per_connection):
                self._queues[session.partner].put_nowait(None)

    async def _uploader(self, session: Session) -> None:
        queue = self._queues[session.partner]
        while (upload := await queue.get()) is not None:
            await self._upload(session, upload)

    async def _upload(self, session: Session, upload: Upload) -> None:
        data = cusdec((self._codes[upload.name],), sender=self._senders[upload.partner],
                      control_reference=upload.reference)
        generation, closing = -1, False
        try:
            # No ``async with`` on the file: after a timeout its exit would wait for a close
            # reply that may never come.  A broken session is aborted instead, which fails
            # whatever is still waiting on it.
            async with asyncio.timeout(UPLOAD_TIMEOUT):
                generation, sftp = await session.client(time.monotonic() + UPLOAD_TIMEOUT)
                upload.started = self.now()
                handle = await sftp.open(f"inbox/{upload.name}", "wb")
                await handle.write(data)
                closing = True
                await handle.close()
        except asyncssh.SFTPFailure as exc:
            upload.error = f"refused: {exc.reason}"
            if not closing:  # the file may still be open on the server
                session.broken(generation)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            upload.error = f"{type(exc).__name__}: {exc}"
            session.broken(generation)
        finally:
            upload.started = upload.started if upload.started is not None else self.now()
            upload.ended = self.now()


# --- One audit run -----------------------------------------------------------------------


class Observed(Protocol):
    """What the audit reads of a run: the partners' outboxes and the agencies' deliveries
    (a Rig's, or tests/cluster's)."""

    files: Files
    deliveries: list[Delivery]


@dataclass
class Rig:
    """What one run holds: config, proxies, the gateway process, the consumers."""

    files: Files
    gateway: GatewayProcess
    database_proxy: TcpProxy
    broker_proxy: TcpProxy
    consumer_proxy: TcpProxy
    consumers: dict[str, AgencyConsumer] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    def consumer(self, agency: str, url: str) -> AgencyConsumer:
        return AgencyConsumer(agency, self.files.queue_prefix + agency, url,
                              self.deliveries.append, lambda: self.clock())


async def _rig(root: Path, workers: int, mailbox_store: str) -> Rig:
    database = await create_database()
    database_proxy = await TcpProxy("127.0.0.1", 5432).start()
    broker_proxy = await TcpProxy("127.0.0.1", 5672).start()
    consumer_proxy = await TcpProxy("127.0.0.1", 5672).start()
    port = free_port()
    files = write_files(
        root, database, port=port,
        database_url_override=database_url(database).replace(
            ":5432/", f":{database_proxy.port}/"),
        amqp_url=AMQP_URL.replace(":5672/", f":{broker_proxy.port}/"),
        mailbox_store=mailbox_store)
    gateway = GatewayProcess(files.config_path, root / "gateway.log", port, workers)
    return Rig(files, gateway, database_proxy, broker_proxy, consumer_proxy)


async def _start_consumers(rig: Rig) -> None:
    for agency in DEMO_AGENCIES:
        url = AMQP_URL
        if agency == KILLED_AGENCY:
            url = AMQP_URL.replace(":5672/", f":{rig.consumer_proxy.port}/")
        rig.consumers[agency] = rig.consumer(agency, url)
        await rig.consumers[agency].start()


async def _inject(fault: str, rig: Rig, load: Load, hold: float) -> tuple[Window, int]:
    """The fault, from its start to the link, process or consumer being back; and for
    ``consumer_killed`` how many deliveries the killed consumer held."""
    start = load.now()
    held = 0
    if fault in ("amqp_cut", "db_cut"):
        proxy = rig.broker_proxy if fault == "amqp_cut" else rig.database_proxy
        await proxy.cut()
        await asyncio.sleep(hold)
        await proxy.restore()
    elif fault == "sigkill":
        await rig.gateway.kill()
        await rig.gateway.start()
    elif fault == "consumer_killed":
        victim = rig.consumers[KILLED_AGENCY]
        victim.holding = True  # it stops acking: deliveries pile up unacked, up to PREFETCH
        await asyncio.sleep(hold)
        held = victim.held
        await rig.consumer_proxy.cut()  # its TCP link broken, as a crashed process leaves it
        successor = rig.consumer(KILLED_AGENCY, AMQP_URL)
        await successor.start()
        rig.consumers[KILLED_AGENCY] = successor
        await victim.close()
    else:
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
    return Window(start, load.now()), held


async def _run_load(fault: str, rig: Rig, load: Load, fault_at: float,
                    hold: float) -> tuple[Window, int, int]:
    """The load with the fault at ``fault_at``: the window, uploads in flight at its start and
    deliveries held by a killed consumer."""
    running = asyncio.create_task(load.run())
    await asyncio.sleep(0)  # load.t0 is set
    await asyncio.sleep(max(0.0, fault_at - load.now()))
    in_flight = sum(1 for u in load.uploads if u.started is not None and u.ended is None)
    window, held = await _inject(fault, rig, load, hold)
    await running
    return window, in_flight, held


async def outbox_answers(files: Files) -> dict[str, list[bytes]]:
    """Every CONTRL in the partners' outboxes, by the upload it answers: in their folders, or
    in mailbox_files with ``sftp.mailbox_store: database`` (what every node serves)."""
    found: dict[str, list[bytes]] = defaultdict(list)
    for name, body in await _outbox_files(files):
        if match := _ANSWER.fullmatch(name):
            found[match["upload"]].append(body)
    return found


async def _outbox_files(files: Files) -> list[tuple[str, bytes]]:
    """(name, content) of every file in the partners' outboxes."""
    if files.mailbox_store == "database":
        # the URL the gateway runs with (the cluster rig's is not the shared server's)
        url = yaml.safe_load(files.config_path.read_text())["database_url"]
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT name, body FROM mailbox_files WHERE removed_at IS NULL")
        finally:
            await connection.close()
        return [(row["name"], bytes(row["body"])) for row in rows]
    found = []
    for partner in files.partners:
        outbox = files.mailbox(partner) / "outbox"
        for path in outbox.iterdir() if outbox.is_dir() else ():
            if path.name.startswith("."):
                continue  # the relay's file being written, renamed away at any moment
            found.append((path.name, path.read_bytes()))
    return found


async def _complete(rig: Observed, load: Load) -> bool:
    seen = {(d.agency, d.reference) for d in rig.deliveries if d.acked}
    answers = await outbox_answers(rig.files)
    return all(u.name in answers and all((a, u.reference) in seen for a in u.agencies)
               for u in load.uploads if u.accepted)


async def quiesce(rig: Observed, load: Load, stall: float, settle: float) -> None:
    """Until every accepted upload is answered and delivered, then ``settle`` more seconds to
    catch extras; or until nothing new came for ``stall`` seconds (something is missing)."""
    last, last_change = (-1, -1), time.monotonic()
    while time.monotonic() - last_change < stall:
        answered = sum(len(a) for a in (await outbox_answers(rig.files)).values())
        progress = (len(rig.deliveries), answered)
        if progress != last:
            last, last_change = progress, time.monotonic()
        if await _complete(rig, load):
            await asyncio.sleep(settle)
            return
        await asyncio.sleep(0.25)


async def audit(fault: str, rate: float = 40.0, seconds: float = 8.0, *,
                fault_at: float | None = None, hold: float = 3.0, grace: float = 2.0,
                connections: int = 4, per_connection: int = 4, stall: float = 20.0,
                settle: float = 1.0, root: Path | None = None, workers: int = 1,
                mailbox_store: str = "disk") -> AuditRow:
    """One run: ``rate`` uploads a second for ``seconds``, ``fault`` at ``fault_at`` (by
    default 40% into the load) lasting ``hold`` seconds (a SIGKILL lasts until the restarted
    gateway listens), then the reconciliation.  ``grace``: after the fault, how long uploads
    may still fail (connections being remade).  ``connections`` per partner (two partners),
    each with ``per_connection`` uploads at once.  ``root``: a folder for the config and the
    gateway's log (``gateway.log``), kept; by default a temporary one, removed.  ``workers``:
    ``gateway serve --workers`` (SIGKILL kills the main process; its workers then leave).
    ``mailbox_store``: sftp.mailbox_store (the answers are then read from mailbox_files)."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
    scratch = root or Path(tempfile.mkdtemp(prefix="fault-audit-"))
    try:
        async with started_rig(scratch, workers, mailbox_store) as rig:
            routes = expected_routes(rig.files.root / "routing.yaml")
            load = Load(rig.files, rig.gateway.port, routes, rate, seconds, connections,
                        per_connection)
            rig.clock = load.now
            window, in_flight, held = await _run_load(
                fault, rig, load, seconds * 0.4 if fault_at is None else fault_at, hold)
            await quiesce(rig, load, stall, settle)
            return reconcile(fault, rate, seconds, load.uploads, rig.deliveries,
                             await outbox_answers(rig.files), window, grace, in_flight, held)
    finally:
        if root is None:
            shutil.rmtree(scratch, ignore_errors=True)


@contextlib.asynccontextmanager
async def started_rig(root: Path, workers: int = 1, mailbox_store: str = "disk"
                      ) -> AsyncIterator[Rig]:
    """A fresh database and topology, ``gateway serve`` listening and every agency consumed;
    torn down on the way out, by an error or a cancellation too (the gateway stopped, the
    consumers and proxies closed, the queues and the database dropped).  Deliveries before
    ``rig.clock`` is set to the load's clock carry the monotonic clock's time."""
    rig = await _rig(root, workers, mailbox_store)
    try:
        await rig.gateway.start()
        await _start_consumers(rig)
        yield rig
    finally:
        await _teardown(rig)


async def _teardown(rig: Rig) -> None:
    await rig.gateway.stop()
    for consumer in rig.consumers.values():
        await consumer.close()
    for proxy in (rig.database_proxy, rig.broker_proxy, rig.consumer_proxy):
        await proxy.close()
    await delete_topology(rig.files, DEMO_AGENCIES)
    await drop_database(rig.files.database)
