"""What the benchmarks that run a whole gateway share (bench/as2.py, bench/e2e.py).

- ``scratch_gateway``: a real ``gateway serve`` in this process and event loop, on its own
  scratch PostgreSQL database, RabbitMQ exchanges and queues and files (the tests' harness,
  tests/support/harness.py), all removed after, on an error or Ctrl-C too.
- ``ChildProcess`` / ``child_main``: the load generator in a process of its own, so the
  gateway's process does only the gateway's work: the parent sends a plan down a pipe, the
  child answers with messages (say "measuring" when its warm-up is over, then its outcome).
- ``Window``: CPU, wall and whole-machine busy share over a measured window, with an optional
  cProfile of the event loop's thread.
- ``percentile``; the AS2 keys and messages of van-a (the demo CA's).

The scripts put the checkout first on sys.path before importing this (bench/xml.py would
shadow the standard library's xml package otherwise).
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import io
import json
import math
import multiprocessing
import os
import pstats
import shutil
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.security.as2_write import HttpMessage, build_message
from gateway.security.pki import Issued, issue_signing_certificate
from gateway.security.signing import SigningKey
from gateway.wire.as2.mic import Mic
from tests.support import harness

# --- the gateway ----------------------------------------------------------------------------


@asynccontextmanager
async def scratch_gateway(root: Path, sftp: dict[str, object] | None = None, *,
                          workers: int = 1, **options: Any) -> AsyncIterator[harness.Gateway]:
    """A started gateway whose files live in ``root`` (``sftp``: more keys for its ``sftp:``
    section; ``workers``: ``gateway serve --workers``; ``options``: harness.write_files'
    keyword arguments).  Leaving stops it and
    drops its database, exchanges and queues, also when the body raised or was cancelled
    (Ctrl-C cancels asyncio.run's main task) and when it failed to start.  (The harness's
    gateway_fixture, made for pytest, with those two additions.)"""
    database = await harness.create_database()
    files: harness.Files | None = None
    try:
        files = harness.write_files(root, database, **options)
        if sftp:
            text = files.config_path.read_text()
            extra = "".join(f"  {key}: {value}\n" for key, value in sftp.items())
            files.config_path.write_text(
                text.replace("  mailboxes: mailboxes\n", f"  mailboxes: mailboxes\n{extra}", 1))
        gateway = await harness.start_gateway(files, workers=workers)
        try:
            yield gateway
        finally:
            if gateway.task is not None and not gateway.task.done():
                await gateway.stop()
    finally:
        if files is not None:
            await harness.delete_topology(files, harness.DEMO_AGENCIES)
        await harness.drop_database(database)


def forget_pki() -> None:
    """The demo PKI the harness makes once per process (harness.demo_pki) lives in a temporary
    folder of its own: remove it."""
    if harness.demo_pki.cache_info().currsize:
        shutil.rmtree(harness.demo_pki().parent, ignore_errors=True)
        harness.demo_pki.cache_clear()


# --- the clients' process -------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """A child's last message: what its work returned, and its process's CPU seconds."""

    outcome: Any
    cpu: float


def child_main(pipe: Pipe, work: Callable[[Any, Pipe], Coroutine[Any, Any, Any]]) -> None:
    """The body of a child process: receive a plan, run ``work(plan, pipe)`` in an event loop
    of its own (it may send messages of its own on ``pipe`` meanwhile), send ``Finished``."""
    plan = pipe.recv()
    outcome: Any = asyncio.run(work(plan, pipe))
    pipe.send(Finished(outcome, time.process_time()))


class ChildProcess:
    """A spawned process running ``target(pipe)`` (a module-level function, so it can be
    found again in the child), talked to over a pipe without blocking the event loop.  Used
    as ``async with``: leaving waits for it a moment, then kills it (at once when leaving
    on an exception)."""

    def __init__(self, target: Callable[[Pipe], None]) -> None:
        context = multiprocessing.get_context("spawn")
        self._ours, theirs = context.Pipe()
        self._process = context.Process(target=target, args=(theirs,), daemon=True)

    async def __aenter__(self) -> ChildProcess:
        self._process.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:  # an error or Ctrl-C here: the child's answer is not awaited
            self._process.kill()
        await asyncio.get_running_loop().run_in_executor(None, self._process.join, 30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._ours.close()

    def send(self, message: object) -> None:
        self._ours.send(message)

    async def recv(self) -> Any:
        """The child's next message; an error if it died first."""
        loop = asyncio.get_running_loop()
        while not await loop.run_in_executor(None, self._ours.poll, 0.5):
            if not self._process.is_alive():
                raise RuntimeError(f"the clients' process ended (exit code "
                                   f"{self._process.exitcode}) without answering")
        return self._ours.recv()

    async def expect(self, message: str) -> None:
        got = await self.recv()
        if got != message:
            raise RuntimeError(f"the clients' process said {got!r}, not {message!r}")


# --- measuring ------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` of 1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(share * len(ordered)))]


def machine_ticks() -> tuple[int, int]:
    """Busy and total CPU ticks of the whole machine, all cores (/proc/stat; zeros where
    there is none): PostgreSQL, RabbitMQ and the clients share the cores with the gateway."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def gateway_cpu() -> float:
    """CPU seconds of this process and of the processes it started for the gateway, all
    threads: the gateway's whole cost (a process started again after a crash loses what the
    earlier one used)."""
    return time.process_time() + sum(_cpu_seconds(pid) for pid in _gateway_processes())


def helper_cpu() -> float:
    """CPU seconds of the multiprocessing forkserver this process started and of the
    processes forked from it (the AS2 unwrapping processes, gateway.app.as2_unwrap)."""
    return sum(_cpu_seconds(pid) for pid in _forkserver_processes())


def _gateway_processes() -> list[int]:
    """``gateway serve --workers``'s worker processes (their command line says
    ``--worker``), and the forkserver with what it forked."""
    workers = [pid for pid, cmdline in _children(os.getpid()) if b"--worker" in cmdline]
    return workers + _forkserver_processes()


def _forkserver_processes() -> list[int]:
    servers = [pid for pid, cmdline in _children(os.getpid())
               if b"multiprocessing.forkserver" in b" ".join(cmdline)]
    return servers + [pid for server in servers for pid, _ in _children(server)]


def _children(parent: int) -> list[tuple[int, list[bytes]]]:
    """(pid, command line) of ``parent``'s children."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(stat[1]) == parent:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().split(b"\0")))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


#: The services beside the gateway, by the command name of their processes (/proc/PID/stat).
SERVICES = {"PostgreSQL": "postgres", "RabbitMQ": "beam.smp"}


def service_cpu() -> dict[str, float]:
    """CPU seconds so far of every process of each of SERVICES (all its users: on a shared
    machine, whatever else uses the same servers is counted too)."""
    names = {command: service for service, command in SERVICES.items()}
    totals = dict.fromkeys(SERVICES, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        command = text[text.find("(") + 1:text.rfind(")")]
        if command in names:
            stat = text.rpartition(")")[2].split()
            totals[names[command]] += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return totals


class Window:
    """The gateway's CPU (gateway_cpu) and wall seconds and the machine's busy share between
    ``start`` and ``stop``; with ``profile``, a cProfile of the thread that calls them (the
    event loop's: threads of pools and worker processes are not in it)."""

    def __init__(self, profile: cProfile.Profile | None = None) -> None:
        self.profile = profile
        self.cpu = self.wall = 0.0
        #: Of ``cpu``: the forkserver's processes' (helper_cpu).
        self.helpers = 0.0
        self.machine = math.nan
        self._ticks = (0, 0)

    def start(self) -> None:
        self.cpu, self.wall, self._ticks = gateway_cpu(), time.perf_counter(), \
            machine_ticks()
        self.helpers = helper_cpu()
        if self.profile is not None:
            self.profile.enable()

    def stop(self) -> None:
        if self.profile is not None:
            self.profile.disable()
        self.cpu, self.wall = gateway_cpu() - self.cpu, time.perf_counter() - self.wall
        self.helpers = helper_cpu() - self.helpers
        busy, total = (now - then for now, then in zip(machine_ticks(), self._ticks,
                                                       strict=True))
        self.machine = busy / total if total else math.nan


def profile_text(profile: cProfile.Profile, top: int) -> str:
    """The ``top`` functions by own time."""
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


# --- AS2: van-a's keys and messages ---------------------------------------------------------


@functools.cache
def peer() -> Issued:
    """van-a's AS2 key and certificate, issued by the tests' demo CA (as
    tests/support/as2_peer.py does; made on first use, in the process that builds the
    messages: a child's would be another key)."""
    folder = harness.demo_pki()
    ca = Issued(x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes()),
                serialization.load_pem_private_key(  # type: ignore[arg-type]
                    (folder / "ca.key").read_bytes(), None))
    return issue_signing_certificate(ca, "VANA", kind="rsa-2048")


@functools.cache
def gateway_key() -> SigningKey:
    folder = harness.demo_pki()
    private = serialization.load_pem_private_key((folder / "gateway.key").read_bytes(), None)
    certificate = x509.load_pem_x509_certificate((folder / "gateway.crt").read_bytes())
    return SigningKey(certificate, private)  # type: ignore[arg-type]


def as2_options(root: Path, unwrap_processes: int | None = None) -> dict[str, Any]:
    """harness.write_files' options for a gateway speaking AS2 (on a free port) with van-a as
    its AS2 partner (its certificate written into ``root``); ``unwrap_processes``: the
    setting's default when None."""
    (root / "vana-as2.crt").write_bytes(peer().certificate_pem)
    server: dict[str, object] = {"id": "SWGATEWAY", "port": 0}
    if unwrap_processes is not None:
        server["unwrap_processes"] = unwrap_processes
    return {"settings": {"as2": json.dumps(server)},
            "partner_as2": {"van-a": {"id": "VANA", "certificates": ["vana-as2.crt"]}}}


def as2_message(payload: bytes, name: str, message_id: str) -> tuple[HttpMessage, Mic]:
    """``payload`` as van-a sends it: signed SHA-256, encrypted AES-256-CBC to the gateway's
    certificate, asking for a synchronous signed MDN."""
    return build_message(
        payload, filename=name, content_type="application/EDIFACT", as2_from="VANA",
        as2_to="SWGATEWAY", message_id=message_id, subject="bench",
        signer=SigningKey(peer().certificate, peer().private_key), digest="sha256",
        recipients=(gateway_key().certificate,), encryption="aes256-cbc")
