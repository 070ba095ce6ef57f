"""The trader registry: ``gateway traders import FILE.csv`` (columns id, name, aeo), and the
snapshot the processor routes with, refreshed every few seconds."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, TextIO

from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError
from gateway.store import traders as store
from gateway.store.database import create_pool

REFRESH_SECONDS = 10.0
TRUE = frozenset({"true", "yes", "1", "y", "x"})
FALSE = frozenset({"false", "no", "0", "n", ""})


class TraderRegistry:
    """The AEO identifications in force, read again at most every ``REFRESH_SECONDS``."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._ids: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    async def trusted(self) -> frozenset[str]:
        if time.monotonic() - self._read_at >= REFRESH_SECONDS:
            self._ids = await store.aeo_ids(self._pool)
            self._read_at = time.monotonic()
        return self._ids


def read_csv(path: Path) -> list[tuple[str, str, bool]]:
    """Rows of id, name, aeo; every error names the file and line."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = {"id", "aeo"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
        rows = []
        for line, row in enumerate(reader, start=2):
            trader_id, flag = (row.get("id") or "").strip(), (row.get("aeo") or "").strip()
            if not trader_id:
                raise ConfigError(f"{path}:{line}: id is empty")
            if flag.lower() not in TRUE | FALSE:
                raise ConfigError(f"{path}:{line}: aeo {flag!r} is not true or false")
            rows.append((trader_id, (row.get("name") or "").strip(), flag.lower() in TRUE))
    return rows


async def import_traders(config: GatewayConfig, path: Path, out: TextIO) -> int:
    rows = read_csv(path)
    pool = await create_pool(config.database_url, size=1)
    try:
        await store.replace_all(pool, rows)
    finally:
        await pool.close()
    out.write(f"{len(rows)} traders, {sum(1 for r in rows if r[2])} AEO: the registry now "
              f"holds {path}\n")
    return 0
