"""The routing table in force, reloaded without a restart.

On SIGHUP, or when ``routing.yaml`` changes on disk, the new table is read and validated whole.
A valid one is swapped in between two decisions (the processor takes the table in force once
per submission); an invalid one is refused, the old one keeps routing, and the refusal is logged
with its reason.  Every table applied or refused is stored (routing_versions), and every routed
message records the version that routed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.load import GatewayConfig, parse_routing
from gateway.config.partners import AgenciesFile
from gateway.config.routing import RoutingTable
from gateway.config.yamlfile import load_model
from gateway.errors import ConfigError
from gateway.logs import event
from gateway.store import routing_versions

log = logging.getLogger("gateway.routing")


@dataclass(frozen=True, slots=True)
class TableInForce:
    table: RoutingTable
    version: int


NewAgencies = Callable[[tuple[str, ...]], Awaitable[None]]


class LiveRouting:
    """Also follows ``agencies.yaml``: a new agency gets its queues before the first table
    that names it is in force; a removed agency's queue is left as it is, with a warning."""

    def __init__(self, config: GatewayConfig, pool: Any,
                 on_new_agencies: NewAgencies | None = None) -> None:
        self._path: Path = config.routing_path
        self._agencies_path = (config.source.parent / config.settings.agencies).resolve()
        self._agencies = config.agency_codes
        self._on_new_agencies = on_new_agencies
        self._pool = pool
        self._sha = ""
        self._refused_sha = ""
        self._mtime = (0.0, 0.0)
        self.current: TableInForce | None = None

    async def start(self) -> TableInForce:
        """Take the table on disk (it must be valid: the gateway does not start otherwise)."""
        text, mtime = await asyncio.to_thread(self._read)
        table = parse_routing(text, str(self._path), self._agencies)
        sha = _digest(text)
        latest = await routing_versions.latest_applied(self._pool)
        version = latest[0] if latest and latest[1] == sha else await routing_versions.record(
            self._pool, sha256=sha, body=text, source=f"{self._path} (start)", status="applied")
        self._sha, self._mtime = _digest(f"{sha}|{','.join(self._agencies)}"), mtime
        self.current = TableInForce(table, version)
        event(log, "routing_applied", version=version, rules=len(table.rules), reason="start")
        return self.current

    async def reload(self, reason: str) -> bool:
        """Read both files again; True when a new table is now in force."""
        text, mtime = await asyncio.to_thread(self._read)
        try:
            agencies = await asyncio.to_thread(self._read_agencies)
        except ConfigError as exc:
            event(log, "agencies_refused", level=logging.ERROR, reason=reason, error=str(exc),
                  note="the previous agencies and table stay in force")
            return False
        self._mtime = mtime
        sha = _digest(text)
        key = _digest(f"{sha}|{','.join(agencies)}")  # a table is judged with its agencies
        if key in (self._sha, self._refused_sha):
            return False
        try:
            table = parse_routing(text, str(self._path), agencies)
        except ConfigError as exc:
            self._refused_sha = key
            await routing_versions.record(self._pool, sha256=sha, body=text,
                                          source=f"{self._path} ({reason})", status="refused",
                                          error=str(exc))
            event(log, "routing_refused", level=logging.ERROR, reason=reason, error=str(exc),
                  note="the previous table keeps routing")
            return False
        await self._follow_agencies(agencies)
        version = await routing_versions.record(self._pool, sha256=sha, body=text,
                                                source=f"{self._path} ({reason})",
                                                status="applied")
        self._sha, self._refused_sha = key, ""
        self.current = TableInForce(table, version)  # one assignment: atomic for readers
        event(log, "routing_applied", version=version, rules=len(table.rules), reason=reason)
        return True

    async def watch(self, hangup: asyncio.Event, interval: float) -> None:
        """Reload on SIGHUP at once, and when the file's modification time changes."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await hangup.wait()
            signalled = hangup.is_set()
            hangup.clear()
            try:
                changed = await asyncio.to_thread(self._modified)
                if changed or signalled:
                    await self.reload("SIGHUP" if signalled else "file changed")
            except (OSError, ConfigError) as exc:
                event(log, "routing_unreadable", level=logging.ERROR, error=str(exc),
                      note="the previous table keeps routing")

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

    def _read(self) -> tuple[str, tuple[float, float]]:
        try:
            return self._path.read_text(encoding="utf-8"), self._mtimes()
        except OSError as exc:
            raise ConfigError(f"{self._path}: cannot read: {exc.strerror}") from exc

    def _read_agencies(self) -> tuple[str, ...]:
        return tuple(a.code for a in load_model(self._agencies_path, AgenciesFile).agencies)

    def _mtimes(self) -> tuple[float, float]:
        return self._path.stat().st_mtime, self._agencies_path.stat().st_mtime

    def _modified(self) -> bool:
        return self._mtimes() != self._mtime


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
