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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.load import GatewayConfig, parse_routing
from gateway.config.routing import RoutingTable
from gateway.errors import ConfigError
from gateway.logs import event
from gateway.store import routing_versions

log = logging.getLogger("gateway.routing")


@dataclass(frozen=True, slots=True)
class TableInForce:
    table: RoutingTable
    version: int


class LiveRouting:
    def __init__(self, config: GatewayConfig, pool: Any) -> None:
        self._path: Path = config.routing_path
        self._agencies = config.agency_codes
        self._pool = pool
        self._sha = ""
        self._refused_sha = ""
        self._mtime = 0.0
        self.current: TableInForce | None = None

    async def start(self) -> TableInForce:
        """Take the table on disk (it must be valid: the gateway does not start otherwise)."""
        text, mtime = await asyncio.to_thread(self._read)
        table = parse_routing(text, str(self._path), self._agencies)
        sha = _digest(text)
        latest = await routing_versions.latest_applied(self._pool)
        version = latest[0] if latest and latest[1] == sha else await routing_versions.record(
            self._pool, sha256=sha, body=text, source=f"{self._path} (start)", status="applied")
        self._sha, self._mtime = sha, mtime
        self.current = TableInForce(table, version)
        event(log, "routing_applied", version=version, rules=len(table.rules), reason="start")
        return self.current

    async def reload(self, reason: str) -> bool:
        """Read the file again; True when a new table is now in force."""
        text, mtime = await asyncio.to_thread(self._read)
        self._mtime = mtime
        sha = _digest(text)
        if sha in (self._sha, self._refused_sha):
            return False
        try:
            table = parse_routing(text, str(self._path), self._agencies)
        except ConfigError as exc:
            self._refused_sha = sha
            await routing_versions.record(self._pool, sha256=sha, body=text,
                                          source=f"{self._path} ({reason})", status="refused",
                                          error=str(exc))
            event(log, "routing_refused", level=logging.ERROR, reason=reason, error=str(exc),
                  note="the previous table keeps routing")
            return False
        version = await routing_versions.record(self._pool, sha256=sha, body=text,
                                                source=f"{self._path} ({reason})",
                                                status="applied")
        self._sha, self._refused_sha = sha, ""
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

    def _read(self) -> tuple[str, float]:
        try:
            return self._path.read_text(encoding="utf-8"), self._path.stat().st_mtime
        except OSError as exc:
            raise ConfigError(f"{self._path}: cannot read: {exc.strerror}") from exc

    def _modified(self) -> bool:
        return self._path.stat().st_mtime != self._mtime


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
