"""The console's routing changes, application side (console.routing_desk.RoutingDesk): a
proposed routing.yaml is checked by the function ``gateway routes check`` and the hot reload
both use (config.load.parse_routing, against agencies.yaml as it is now and the configured
partners), replayed over stored traffic as ``gateway routes diff`` does
(pipeline.routing_diff), and, once approved, written atomically over routing.yaml and put in
force by the validated hot-reload path (routing_reload.LiveRouting), woken at once as SIGHUP
wakes it; the version it records names the proposal."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
from typing import Any

from gateway.app.routing_lead import RoutingLead
from gateway.app.routing_reload import agency_codes
from gateway.config.files import read_snapshot
from gateway.config.load import GatewayConfig, parse_routing
from gateway.config.routing import RoutingTable
from gateway.console.routing_desk import Applied, Checked, RoutingFile
from gateway.errors import ConfigError
from gateway.pipeline.routing_diff import RoutingDiff, replay
from gateway.store.interchanges import recent_canonical
from gateway.transports.durable import write_file

#: The most days a proposal is replayed over, and the most messages (newest first).
MAX_DAYS = 31
MAX_MESSAGES = 20_000
#: How long an approval waits for the reload beyond its two looks.
APPLY_MARGIN_SECONDS = 30.0


class RoutingChanges:
    def __init__(self, config: GatewayConfig, routing: RoutingLead, pool: Any,
                 hangup: asyncio.Event) -> None:
        self._path = config.routing_path
        self._agencies_path = config.agencies_path
        self._partners = tuple(p.id for p in config.partners)
        self._routing = routing
        self._pool = pool
        self._hangup = hangup
        settings = config.settings
        # Two agreeing looks one recheck apart after the wake-up (routing_reload), with room
        # for a busy machine; past it the page says the table is not judged yet (202).
        self._wait = 2 * min(settings.routing_settle_seconds,
                             settings.routing_reload_seconds) + APPLY_MARGIN_SECONDS
        self._expected: dict[int, asyncio.Future[int | None]] = {}

    def in_force(self) -> tuple[int, RoutingTable] | None:
        current = self._routing.current
        return None if current is None else (current.version, current.table)

    async def read(self) -> RoutingFile:
        snapshot = await asyncio.to_thread(read_snapshot, self._path)
        if snapshot is None:
            raise ConfigError(f"{self._path}: changed while it was read; try again")
        return RoutingFile(snapshot.text, hashlib.sha256(snapshot.data).hexdigest())

    async def check(self, text: str) -> Checked:
        try:
            return Checked(await asyncio.to_thread(self._parse, text))
        except ConfigError as exc:
            return Checked(None, tuple(line for line in str(exc).splitlines() if line))

    def _parse(self, text: str) -> RoutingTable:
        snapshot = read_snapshot(self._agencies_path)
        if snapshot is None:
            raise ConfigError(f"{self._agencies_path}: changed while it was read; try again")
        # Named as the file it would become, so errors read routing.yaml:LINE:COLUMN.
        return parse_routing(text, self._path.name, agency_codes(snapshot), self._partners)

    async def replay(self, base: str, text: str, days: int) -> RoutingDiff:
        new = (await self.check(text)).table
        if new is None:
            raise ConfigError(f"{self._path.name}: the proposed table is not valid")
        old = (await self.check(base)).table
        if old is None:  # the file on disk is refused: what routes now is the table in force
            in_force = self.in_force()
            old = new if in_force is None else in_force[1]
        async with self._pool.acquire() as connection:
            stored = await recent_canonical(connection, float(max(1, min(days, MAX_DAYS))),
                                            MAX_MESSAGES)
        return await asyncio.to_thread(replay, old, new, stored)

    async def write(self, proposal: int, text: str) -> None:
        data = text.encode("utf-8")
        # Expected before it is on disk: the watcher may look at any moment.
        future = self._routing.expect(hashlib.sha256(data).hexdigest(), proposal)
        self._expected[proposal] = future
        try:
            await asyncio.to_thread(self._write, data)
        except BaseException:
            self._expected.pop(proposal, None)
            future.cancel()  # not written: nothing for the reload to attribute
            raise

    async def restore(self, proposal: int, text: str) -> None:
        future = self._expected.pop(proposal, None)
        if future is not None:
            future.cancel()  # the reload no longer takes that text for the proposal's
        await asyncio.to_thread(self._write, text.encode("utf-8"))

    def _write(self, data: bytes) -> None:
        """A hidden file in routing.yaml's folder, fsynced, renamed over it, the folder
        fsynced (transports.durable): never seen half written, by the watcher or anyone."""
        try:
            mode = stat.S_IMODE(os.stat(self._path).st_mode)
        except OSError:
            mode = 0o644
        try:
            write_file(self._path, data, mode=mode)
        except OSError as exc:
            raise ConfigError(f"{self._path}: cannot write: {exc.strerror}") from exc

    async def apply(self, proposal: int) -> Applied:
        future = self._expected.pop(proposal, None)
        if future is None:
            return Applied(None)
        self._hangup.set()  # "apply now", as SIGHUP says it: the same validated path
        with contextlib.suppress(TimeoutError):
            version = await asyncio.wait_for(asyncio.shield(future), self._wait)
            return Applied(version, refused=version is None)
        return Applied(None)
