"""The routing table in force, reloaded without a restart.

On SIGHUP, or when ``routing.yaml`` or ``agencies.yaml`` changes on disk, the new table is read
and validated whole.  A valid one is swapped in between two decisions (the processor takes the
table in force once per submission); an invalid one is refused, the old one keeps routing, and
the refusal is logged with its reason.  Every table applied or refused is stored
(routing_versions), and every routed message records the version that routed it.

A file is never taken half way.  Operators and tools write files in place with several writes
(``cat >``, ``cp``, an editor that keeps the inode) or into a temporary file renamed over the
old one (``mv``, rsync, most editors, configuration management), and a prefix of a table is
often a valid table (the first rule of the shipped routing.yaml is one), so validity says
nothing about completeness.  A change is judged only when

1. both files were read whole: each one's identity (device, inode, size, mtime and ctime) is
   the same before and after the read, and its path still names it (config/files.py);
2. and they are quiet: the same contents and identities were seen at looks at least
   ``routing_settle_seconds`` apart, or both files were last modified at least that long ago;
3. on SIGHUP (ops saying "apply now"), two agreeing looks one recheck apart are enough (the
   settle time or the poll interval, whichever is shorter; the files' own age still counts):
   the settle time is not waited for, but a file a tool is still writing waits for its writer.

A tool that pauses longer than the settle time between two writes of one file cannot be told
apart from two edits: write atomically (a temporary file renamed over the old one).  Starting
the gateway is taken like a SIGHUP: the table is taken once two looks one recheck apart agree.

The watcher never stops: any failure at all (a file unreadable or not UTF-8, YAML or pydantic
refusing it, a bug, the database or the broker failing) refuses that look with an alarm and
the next look comes.  A table that cannot be read is refused (and recorded) once per content;
one that is valid but could not be put in force (queues for a new agency, its version record)
is tried again at the next look.  Reading and validating run on a thread of their own, so a
large table never stalls the event loop, and a file system that hangs holds up only this
watcher (with an alarm), never the threads the rest of the gateway uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from gateway import alarms
from gateway.config.files import Identity, Snapshot, identity, read_snapshot
from gateway.config.load import GatewayConfig, parse_routing
from gateway.config.partners import AgenciesFile
from gateway.config.routing import RoutingTable
from gateway.config.yamlfile import load_model_text
from gateway.errors import ConfigError
from gateway.logs import event
from gateway.store import routing_versions

log = logging.getLogger("gateway.routing")
#: A look at the files (stat and read) that takes longer is reported and tried again later.
READ_TIMEOUT_SECONDS = 30.0
#: The shortest pause between two looks that must agree (SIGHUP, start): never a busy loop.
MIN_RECHECK_SECONDS = 0.1
Result = TypeVar("Result")


@dataclass(frozen=True, slots=True)
class TableInForce:
    table: RoutingTable
    version: int


NewAgencies = Callable[[tuple[str, ...]], Awaitable[None]]


class RoutingInForce(Protocol):
    """What the processor reads the table from: routing_lead.RoutingLead in the main process
    (LiveRouting or FollowedRouting, as it leads or not), FollowedRouting in a worker process."""

    @property
    def current(self) -> TableInForce | None: ...


@dataclass(frozen=True, slots=True)
class Look:
    """Both files, each read whole."""

    routing: Snapshot
    agencies: Snapshot

    @property
    def identities(self) -> tuple[Identity, Identity]:
        return self.routing.identity, self.agencies.identity

    @property
    def fingerprint(self) -> tuple[tuple[Identity, Identity], str]:
        return self.identities, _digest(self.routing.data + b"\0" + self.agencies.data)

    def age(self, now: float) -> float:
        """Seconds since either file was last modified (wall clock, as the file system saw
        it; negative when its clock is ahead)."""
        return now - max(self.routing.modified, self.agencies.modified)


@dataclass
class Settling:
    """Whether the files have been quiet long enough to be judged (rule 2 and 3 above)."""

    settle: float
    fingerprint: object = None
    since: float = 0.0
    looks: int = 0

    def quiet(self, look: Look, now: float, age: float, required: float) -> bool:
        """``now``: a monotonic clock; ``age``: the files' own; ``required``: the settle time,
        or less on SIGHUP."""
        fingerprint = look.fingerprint
        if fingerprint != self.fingerprint:
            self.fingerprint, self.since, self.looks = fingerprint, now, 0
        self.looks += 1
        return age >= self.settle or (self.looks >= 2 and now - self.since >= required)

    def restart(self) -> None:
        """The files changed while they were read: they are being written."""
        self.fingerprint, self.looks = None, 0


class LiveRouting:
    """Also follows ``agencies.yaml``: a new agency gets its queues before the first table
    that names it is in force; a removed agency's queue is left as it is, with a warning."""

    def __init__(self, config: GatewayConfig, pool: Any,
                 on_new_agencies: NewAgencies | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._path: Path = config.routing_path
        self._agencies_path = (config.source.parent / config.settings.agencies).resolve()
        self._agencies = config.agency_codes
        self._partners = tuple(p.id for p in config.partners)
        self._on_new_agencies = on_new_agencies
        self._pool = pool
        self._interval = config.settings.routing_reload_seconds
        self._settling = Settling(config.settings.routing_settle_seconds)
        self._clock, self._wall_clock = clock, wall_clock
        # One thread of its own: a hung file system or a slow table waits here, not in the
        # default executor the rest of the gateway shares.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="routing-reload")
        self._table_key = ""  # the table in force and the agencies it was judged with
        self._refused_key = ""
        self._judged: tuple[Identity, Identity] | None = None  # the files last judged
        self._signalled = False
        self._last_alarm = ""
        # Tables the console wrote on a proposal's approval, by SHA-256: recorded with the
        # proposal's id when judged, and the console told the outcome (expect).
        self._expected: dict[str, tuple[int, asyncio.Future[int | None]]] = {}
        self.current: TableInForce | None = None

    def expect(self, sha256: str, proposal: int) -> asyncio.Future[int | None]:
        """The console approved ``proposal`` and wrote its text (``sha256``) to routing.yaml:
        when a look judges that text, its version is recorded with the proposal's id and the
        future gets the version applied (None: refused).  Judged like any other change."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._expected[sha256] = (proposal, future)
        return future

    def _expectation(self, sha: str, version: int | None) -> None:
        proposal = self._expected.pop(sha, None)
        if proposal is not None and not proposal[1].done():
            proposal[1].set_result(version)

    def _proposal(self, sha: str) -> int | None:
        expected = self._expected.get(sha)
        return None if expected is None or expected[1].cancelled() else expected[0]

    async def start(self) -> TableInForce:
        """Take the table on disk once it is whole and quiet (it must be valid: the gateway
        does not start otherwise)."""
        look = await self._quiet_look()
        text = look.routing.text
        table = await self._run(parse_routing, text, str(self._path), self._agencies,
                                self._partners)
        sha = _digest(look.routing.data)
        latest = await routing_versions.latest_applied(self._pool)
        version = latest[0] if latest and latest[1] == sha else await routing_versions.record(
            self._pool, sha256=sha, body=text, source=f"{self._path} (start)", status="applied")
        self._table_key, self._judged = _key(sha, self._agencies), look.identities
        self.current = TableInForce(table, version)
        event(log, "routing_applied", version=version, rules=len(table.rules), reason="start")
        return self.current

    async def watch(self, hangup: asyncio.Event, interval: float) -> None:
        """Look at both files every ``interval`` seconds and at once on SIGHUP, for ever:
        a failure of any kind is an alarm, and the next look comes all the same."""
        while True:
            # A SIGHUP waiting for its second look gets it after the recheck, not a full poll.
            wait = self._recheck(interval) if self._signalled else interval
            signalled = await _woken(hangup, wait)
            try:
                await self.step(interval, signalled=signalled)
            except Exception as exc:  # noqa: BLE001 - whatever failed, keep watching (above)
                self.failed(exc)

    def failed(self, exc: Exception) -> None:
        """A look or a start that failed: an alarm (once per distinct failure)."""
        self._alarm("routing_reload_failed", exc, exc_info=not isinstance(exc, ConfigError))

    async def step(self, interval: float, *, signalled: bool = False) -> bool:
        """One look (``interval`` after the last one); True when a new table is now in force.
        A SIGHUP counts until the files it asked for are judged."""
        self._signalled |= signalled
        identities = await self._read(self._identities)
        if identities == self._judged:
            self._signalled, self._last_alarm = False, ""  # nothing new to apply
            return False
        look = await self._read(self._look)
        if look is None:
            self._settling.restart()
            return False
        required = self._required(interval) if self._signalled else self._settling.settle
        if not self._settling.quiet(look, self._clock(), look.age(self._wall_clock()),
                                    required):
            if self._settling.looks == 1:
                event(log, "routing_settling", settle_seconds=self._settling.settle,
                      note="routing.yaml or agencies.yaml changed: judged once it stays "
                      "unchanged (a file being written is never taken half way)")
            return False
        return await self._judge(look, "SIGHUP" if self._signalled else "file changed")

    async def _judge(self, look: Look, reason: str) -> bool:
        source = f"{self._path} ({reason})"
        try:
            agencies = await self._run(agency_codes, look.agencies)
        except Exception as exc:  # noqa: BLE001 - any failure refuses the file (module doc)
            self._judged_now(look)
            event(log, "agencies_refused", level=logging.ERROR, reason=reason, error=str(exc),
                  exc_info=not isinstance(exc, ConfigError),
                  note="the previous agencies and table stay in force")
            return False
        sha = _digest(look.routing.data)
        key = _key(sha, agencies)  # a table is judged with its agencies
        if key in (self._table_key, self._refused_key):
            self._judged_now(look)
            return False
        try:
            text = look.routing.text
            table = await self._run(parse_routing, text, str(self._path), agencies,
                                    self._partners)
        except Exception as exc:  # noqa: BLE001 - any failure refuses the file (module doc)
            self._judged_now(look)
            self._refused_key = key
            body = look.routing.data.decode("utf-8", errors="replace")
            await self._refuse(sha, body, source, reason, exc)
            self._expectation(sha, None)
            return False
        await self._follow_agencies(agencies)  # a failure here: tried again at the next look
        proposal = self._proposal(sha)
        if proposal is not None:
            source = f"{self._path} (console proposal {proposal})"  # woken as by SIGHUP
        version = await routing_versions.record(self._pool, sha256=sha, body=text,
                                                source=source, status="applied",
                                                proposal=proposal)
        self._expectation(sha, version)
        self._table_key, self._refused_key = key, ""
        self._judged_now(look)
        self.current = TableInForce(table, version)  # one assignment: atomic for readers
        event(log, "routing_applied", version=version, rules=len(table.rules), reason=reason)
        return True

    async def _refuse(self, sha: str, text: str, source: str, reason: str,
                      exc: Exception) -> None:
        error = str(exc) if isinstance(exc, ConfigError) else f"{exc!r} (a bug of ours)"
        event(log, "routing_refused", level=logging.ERROR, reason=reason, error=error,
              exc_info=not isinstance(exc, ConfigError), note="the previous table keeps routing")
        try:
            await routing_versions.record(self._pool, sha256=sha, body=text, source=source,
                                          status="refused", error=error,
                                          proposal=self._proposal(sha))
        except Exception as failure:  # noqa: BLE001 - the refusal stands; the log has it
            event(log, "routing_refusal_not_recorded", level=logging.ERROR,
                  error=repr(failure))

    async def _follow_agencies(self, agencies: tuple[str, ...]) -> None:
        added = [a for a in agencies if a not in self._agencies]
        for agency in self._agencies:
            if agency not in agencies:
                event(log, "agency_removed", level=logging.WARNING, agency=agency,
                      note="its queues are left as they are (never deleted with messages)")
        if added and self._on_new_agencies is not None:
            await self._on_new_agencies(agencies)  # queues first, then the table naming them
            event(log, "agencies_added", agencies=added)
        self._agencies = agencies

    async def _quiet_look(self) -> Look:
        """At start, as on SIGHUP: starting the gateway is ops asking for the files as they
        are, so two agreeing looks one poll apart suffice (or the files' own age)."""
        required = self._required(self._interval)
        while True:
            look = await self._read(self._look)
            if look is None:
                self._settling.restart()
            elif self._settling.quiet(look, self._clock(), look.age(self._wall_clock()),
                                      required):
                return look
            elif self._settling.looks == 1:
                event(log, "routing_settling", settle_seconds=self._settling.settle,
                      note="waiting until routing.yaml and agencies.yaml are quiet")
            await asyncio.sleep(self._recheck(self._interval))

    def _required(self, interval: float) -> float:
        """How long two looks must agree on SIGHUP and at start."""
        return min(self._settling.settle, interval)

    def _recheck(self, interval: float) -> float:
        return max(self._required(interval), MIN_RECHECK_SECONDS)

    def _judged_now(self, look: Look) -> None:
        self._judged, self._signalled, self._last_alarm = look.identities, False, ""

    def _identities(self) -> tuple[Identity, Identity]:
        try:
            return identity(os.stat(self._path)), identity(os.stat(self._agencies_path))
        except OSError as exc:
            raise ConfigError(f"{exc.filename}: cannot read: {exc.strerror}") from exc

    def _look(self) -> Look | None:
        routing = read_snapshot(self._path)
        agencies = read_snapshot(self._agencies_path)
        return None if routing is None or agencies is None else Look(routing, agencies)

    async def _read(self, work: Callable[[], Result]) -> Result:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                return await self._run(work)
        except TimeoutError as exc:
            raise ConfigError(f"{self._path}: reading the routing files took more than "
                              f"{READ_TIMEOUT_SECONDS:.0f} s (a file system that hangs?)"
                              ) from exc

    async def _run(self, work: Callable[..., Result], *args: Any) -> Result:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def _alarm(self, name: str, exc: Exception, *, exc_info: bool) -> None:
        """Once per distinct failure: a file left unreadable is not reported every poll."""
        text = f"{name}: {exc!r}"
        if text != self._last_alarm:
            self._last_alarm = text
            event(log, name, level=logging.ERROR, code=alarms.ROUTING_RELOAD_FAILED,
                  error=str(exc) or repr(exc),
                  exc_info=exc if exc_info else False, note="the previous table keeps routing")


async def _woken(hangup: asyncio.Event, interval: float) -> bool:
    """Wait ``interval`` seconds or for SIGHUP; True when SIGHUP came."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(interval):
            await hangup.wait()
    signalled = hangup.is_set()
    hangup.clear()
    return signalled


def agency_codes(snapshot: Snapshot) -> tuple[str, ...]:
    agencies = load_model_text(snapshot.text, str(snapshot.path), AgenciesFile).agencies
    return tuple(a.code for a in agencies)


def _key(sha: str, agencies: tuple[str, ...]) -> str:
    return _digest(f"{sha}|{','.join(agencies)}")


def _digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()
