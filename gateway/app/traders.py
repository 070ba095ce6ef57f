"""The trader registry: ``gateway traders import FILE.csv`` (config.traders_csv), ``gateway
traders suspend ID --reason TEXT`` and ``reinstate ID``, and the snapshot the processor
routes with.

An identification written in a message is only a claim.  The AEO lane (``trusted_trader``
rules) applies only when the trader's authorisation is active and valid on the day and the
trader is registered to the partner that sent the message (DESIGN rule 5: a partner only acts
as itself); otherwise the rule does not match and the submission's history says why.

A suspension applies at once: the processor's claim of a batch reads the registry's version
in the same statement (store.interchanges.claim_batch), a new version is read before
that batch is decided, and the decision's transaction holds the version FOR SHARE: a
suspension that committed meanwhile makes it decide again (app.processor._registry_moved).
Other readers (release, the console) read it again every ``REFRESH_SECONDS``, and at once
when handed a version."""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path
from typing import Any, TextIO

from gateway.config.load import GatewayConfig
from gateway.config.traders_csv import read_csv
from gateway.errors import ConfigError
from gateway.model.traders import AeoRegistry, TrustedTrader
from gateway.store import traders as store
from gateway.store.database import create_pool

__all__ = ["REFRESH_SECONDS", "AeoRegistry", "TraderRegistry", "TrustedTrader", "read_csv"]

REFRESH_SECONDS = 10.0


class TraderRegistry:
    """The registry in force: read again when a newer version is named, else at most every
    ``REFRESH_SECONDS``."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._registry = AeoRegistry()
        self._read_at = float("-inf")
        #: Reads of the registry from the store (the tests count them).
        self.reads = 0

    async def current(self, version: int | None = None) -> AeoRegistry:
        """``version``: the registry's version seen in the statement that claimed the work
        (None: the caller has none, and a snapshot up to ``REFRESH_SECONDS`` old will do)."""
        stale = (time.monotonic() - self._read_at >= REFRESH_SECONDS if version is None
                 else version != self._registry.version)
        if stale:
            self._registry = await store.registry(self._pool)
            self._read_at = time.monotonic()
            self.reads += 1
        return self._registry


async def import_traders(config: GatewayConfig, path: Path, out: TextIO) -> int:
    traders = read_csv(path)
    known = {p.id for p in config.partners}
    for trader in traders:
        unknown = sorted(trader.partners - known)
        if unknown:
            raise ConfigError(f"{path}: trader {trader.id!r}: partner(s) "
                              f"{', '.join(unknown)} not in {config.settings.partners}")
    pool = await create_pool(config.database_url, size=1)
    try:
        await store.replace_all(pool, traders)
    finally:
        await pool.close()
    out.write(f"{len(traders)} traders, {sum(1 for t in traders if t.aeo)} AEO: the registry "
              f"now holds {path}\n")
    return 0


def operator() -> str:
    """Who acts: the login of the person running the command (SUDO_USER when run by sudo)."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


async def suspend_trader(config: GatewayConfig, trader_id: str, reason: str,
                         out: TextIO) -> int:
    if not reason.strip() or not reason.isprintable():
        raise ConfigError("--reason: say why, in printable text (it is recorded)")
    pool = await create_pool(config.database_url, size=1)
    try:
        at = await store.suspend(pool, trader_id, operator(), reason.strip())
    finally:
        await pool.close()
    if at is None:
        out.write(f"trader {trader_id!r} is not in the registry\n")
        return 1
    # "At once" (docs/traders.md): a decision holds the registry's version FOR SHARE until it
    # commits, so it either waited for this suspension or is made again with it.
    out.write(f"trader {trader_id} suspended at {at.isoformat()}: no declaration is decided "
              "with the trusted-trader lane from now on\n")
    return 0


async def reinstate_trader(config: GatewayConfig, trader_id: str, out: TextIO) -> int:
    pool = await create_pool(config.database_url, size=1)
    try:
        at = await store.reinstate(pool, trader_id, operator())
        entry = await store.entry(pool, trader_id) if at is not None else None
    finally:
        await pool.close()
    if at is None or entry is None:
        out.write(f"trader {trader_id!r} is not in the registry\n")
        return 1
    still = entry.why_not_trusted(at.date())
    out.write(f"trader {trader_id} reinstated at {at.isoformat()}"
              + (f"; still not trusted: {still}\n" if still else "\n"))
    return 0
