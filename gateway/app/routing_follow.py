"""The routing table in force in a worker process of ``gateway serve --workers N``.

Only the main process watches ``routing.yaml`` and ``agencies.yaml``, judges a change and
records each table it applies or refuses (routing_reload, routing_versions).  A worker takes
the table the main process last applied, from the database: at start, and again every
``routing_reload_seconds``.  So every process routes with one table, give or take one look,
each routed message records the version that routed it wherever it was decided, and a table
the main process refused is in force nowhere.

The stored body is parsed again here against ``agencies.yaml`` as it is now (the version
record keeps the table, not the agencies it was judged with).  Should that fail (the agencies
file changed again between the main process's judgement and this look), the previous table
stays in force with an alarm and the next look tries again.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from gateway import alarms
from gateway.app.routing_reload import NewAgencies, TableInForce, agency_codes
from gateway.config.files import read_snapshot
from gateway.config.load import GatewayConfig, parse_routing
from gateway.config.routing import RoutingTable
from gateway.errors import ConfigError
from gateway.logs import event
from gateway.store import routing_versions
from gateway.store.database import translated_errors

log = logging.getLogger("gateway.routing")


class FollowedRouting:
    def __init__(self, config: GatewayConfig, pool: Any,
                 on_new_agencies: NewAgencies | None = None) -> None:
        self._pool = pool
        self._path: Path = config.routing_path
        self._agencies_path = (config.source.parent / config.settings.agencies).resolve()
        self._agencies = config.agency_codes
        self._partners = tuple(p.id for p in config.partners)
        self._on_new_agencies = on_new_agencies
        self._interval = config.settings.routing_reload_seconds
        self._last_alarm = ""
        self.current: TableInForce | None = None

    async def start(self) -> TableInForce:
        """The table the main process applied (it records one before it starts workers)."""
        await self.step()
        if self.current is None:
            raise ConfigError("no routing table has been applied yet: a worker process is "
                              "started by gateway serve --workers, after its own table")
        return self.current

    async def watch(self) -> None:
        """Follow the main process's versions for ever; any failure is an alarm (once per
        kind of failure) and the previous table keeps routing."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.step()
            except Exception as exc:  # noqa: BLE001 - keep following (module doc)
                self.alarm(exc)

    async def step(self) -> bool:
        """One look; True when another table is now in force here."""
        async with translated_errors("reading the routing table in force"), \
                self._pool.acquire() as connection:
            applied = await routing_versions.applied_table(connection)
        if applied is None or (self.current is not None
                               and applied[0] == self.current.version):
            return False
        version, body, _source = applied
        agencies, table = await asyncio.to_thread(self._parse, body)
        added = [a for a in agencies if a not in self._agencies]
        if added and self._on_new_agencies is not None:
            await self._on_new_agencies(agencies)  # queues first, as the main process does
        self._agencies, self._last_alarm = agencies, ""
        self.current = TableInForce(table, version)  # one assignment: atomic for readers
        event(log, "routing_followed", version=version, rules=len(table.rules),
              note="the table the main process applied")
        return True

    def _parse(self, body: str) -> tuple[tuple[str, ...], RoutingTable]:
        snapshot = read_snapshot(self._agencies_path)
        if snapshot is None:
            raise ConfigError(f"{self._agencies_path}: changed while it was read")
        agencies = agency_codes(snapshot)
        return agencies, parse_routing(body, str(self._path), agencies, self._partners)

    def alarm(self, exc: Exception) -> None:
        error = str(exc) if isinstance(exc, ConfigError) else repr(exc)
        if error == self._last_alarm:
            return  # said once; said again only when it changes
        self._last_alarm = error
        event(log, "routing_follow_failed", level=logging.ERROR,
              code=alarms.ROUTING_FOLLOW_FAILED, error=error,
              exc_info=not isinstance(exc, ConfigError),
              note="this worker keeps the previous table and looks again")
