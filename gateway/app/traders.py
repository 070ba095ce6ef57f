"""The trader registry: ``gateway traders import FILE.csv`` (columns id, name, aeo, partners),
and the snapshot the processor routes with, refreshed every few seconds.

An identification written in a message is only a claim.  The AEO lane (``trusted_trader``
rules) applies only when the trader is registered to the partner that sent the message
(DESIGN rule 5: a partner only acts as itself); otherwise the rule does not match and the
submission's history says why."""

from __future__ import annotations

import csv
import io
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import TypeAdapter, ValidationError

from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError
from gateway.model.canonical.common import TraderId
from gateway.store import traders as store
from gateway.store.database import create_pool

REFRESH_SECONDS = 10.0
#: The largest registry file read (a national registry of a million traders is ~100 MB).
MAX_REGISTRY_BYTES = 512 * 1024 * 1024
TRUE = frozenset({"true", "yes", "1", "y", "x"})
FALSE = frozenset({"false", "no", "0", "n", ""})
#: Partner ids in the ``partners`` column: separated by spaces, commas or semicolons.
_PARTNER_SEPARATORS = re.compile(r"[\s,;]+")

TraderRow = tuple[str, str, bool, tuple[str, ...]]
_TRADER_ID: TypeAdapter[str] = TypeAdapter(TraderId)


@dataclass(frozen=True)
class AeoRegistry:
    """Authorised economic operators and the partners each is registered to."""

    partners_of: dict[str, frozenset[str]] = field(default_factory=dict)

    def trusted_for(self, partner_id: str) -> frozenset[str]:
        """The AEO identifications ``partner_id`` may declare for."""
        return frozenset(t for t, partners in self.partners_of.items() if partner_id in partners)

    def claimed_elsewhere(self, partner_id: str,
                          trader_ids: frozenset[str]) -> dict[str, list[str]]:
        """AEO identifications a message of ``partner_id`` names that are not registered to it
        (trader id -> the partners it is registered to)."""
        return {t: sorted(self.partners_of[t]) for t in sorted(trader_ids)
                if t in self.partners_of and partner_id not in self.partners_of[t]}


class TraderRegistry:
    """The registry in force, read again at most every ``REFRESH_SECONDS``."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._registry = AeoRegistry()
        self._read_at = float("-inf")

    async def current(self) -> AeoRegistry:
        if time.monotonic() - self._read_at >= REFRESH_SECONDS:
            self._registry = AeoRegistry(await store.aeo_partners(self._pool))
            self._read_at = time.monotonic()
        return self._registry


def read_csv(path: Path) -> list[TraderRow]:
    """Rows of id, name, aeo, partners; every error names the file and line."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block the read for ever
            raise ConfigError(f"{path}: not a regular file")
        if status.st_size > MAX_REGISTRY_BYTES:
            raise ConfigError(f"{path}: {status.st_size} bytes; a registry file holds at most "
                              f"{MAX_REGISTRY_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the "
                          "file as UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = {"id", "aeo", "partners"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
        return [_row(path, reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise ConfigError(f"{path}:{reader.line_num}: {exc}") from exc


def _row(path: Path, line: int, row: dict[str, str | None]) -> TraderRow:
    trader_id, flag = (row.get("id") or "").strip(), (row.get("aeo") or "").strip()
    partners = tuple(p for p in _PARTNER_SEPARATORS.split(row.get("partners") or "") if p)
    name = (row.get("name") or "").strip()
    if not trader_id:
        raise ConfigError(f"{path}:{line}: id is empty")
    try:  # the normal form messages carry: an id written otherwise would never match
        trader_id = _TRADER_ID.validate_python(trader_id)
    except ValidationError as exc:
        raise ConfigError(f"{path}:{line}: id: {exc.errors()[0]['msg']}") from exc
    if not name.isprintable():
        raise ConfigError(f"{path}:{line}: name {name[:40]!r} holds control characters")
    if flag.lower() not in TRUE | FALSE:
        raise ConfigError(f"{path}:{line}: aeo {flag!r} is not true or false")
    aeo = flag.lower() in TRUE
    if aeo and not partners:
        raise ConfigError(f"{path}:{line}: partners is empty: an AEO trader counts only in the "
                          "messages of the partners it is registered to")
    return trader_id, name, aeo, partners


async def import_traders(config: GatewayConfig, path: Path, out: TextIO) -> int:
    rows = read_csv(path)
    known = {p.id for p in config.partners}
    for trader_id, _name, _aeo, partners in rows:
        unknown = sorted(set(partners) - known)
        if unknown:
            raise ConfigError(f"{path}: trader {trader_id!r}: partner(s) "
                              f"{', '.join(unknown)} not in {config.settings.partners}")
    pool = await create_pool(config.database_url, size=1)
    try:
        await store.replace_all(pool, rows)
    finally:
        await pool.close()
    out.write(f"{len(rows)} traders, {sum(1 for r in rows if r[2])} AEO: the registry now "
              f"holds {path}\n")
    return 0
