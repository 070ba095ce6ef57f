"""``gateway agency run CODE``: an example agency system on the agency's own queue, with the
agency's own broker user (its password from its ``password_file``).

``customs``, ``quarantine`` and ``bank`` decide by themselves, by rules a person edits
(``<folder of agencies.yaml>/<code>-rules.yaml`` unless ``--rules`` names another file, taken
up again when it changes) and print one JSON line per decision; any other agency gets the
printing adapter, which prints each delivery and answers nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.agency import bank, customs, quarantine
from gateway.agency.answers import Answer
from gateway.agency.consumer import Handler, consume
from gateway.agency.credentials import endpoint_of
from gateway.agency.delivery import Delivery
from gateway.agency.journal import default_journal_path
from gateway.agency.printing import decisions, print_copy, print_delivery, print_line, summary
from gateway.agency.rules import LiveRules
from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Adapter:
    rules: type[BaseModel]
    decide: Callable[[Any, Delivery], Sequence[Answer]]


#: The example adapters that decide, by name.
ADAPTERS: dict[str, Adapter] = {
    "customs": Adapter(customs.CustomsRules, customs.decide),
    "quarantine": Adapter(quarantine.QuarantineRules, quarantine.decide),
    "bank": Adapter(bank.BankRules, bank.decide),
}
PRINTING = "print"


def rules_path_of(config: GatewayConfig, code: str) -> Path:
    """Where agency ``code``'s rules are by default: beside agencies.yaml."""
    return config.agencies_path.parent / f"{code}-rules.yaml"


async def run_agency(config: GatewayConfig, code: str, *, adapter: str | None = None,
                     rules: Path | None = None, journal: Path | None = None,
                     stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM or SIGINT (or ``stop``).  ``adapter``: customs, quarantine or print
    (default: the one named like the agency, else print)."""
    endpoint = endpoint_of(config, code)
    kind = adapter or (code if code in ADAPTERS else PRINTING)
    if kind != PRINTING and kind not in ADAPTERS:
        raise ConfigError(f"unknown adapter {kind!r} (known: {', '.join(ADAPTERS)}, print)")
    stop = stop or _stopped_by_signals()
    journal = journal or default_journal_path(code)
    if kind == PRINTING:
        await consume(endpoint, print_delivery, stop, journal=journal, on_copy=print_copy)
        return 0
    chosen = ADAPTERS[kind]
    live: LiveRules[Any] = LiveRules(rules or rules_path_of(config, code), chosen.rules)
    watcher = asyncio.create_task(live.watch(stop))
    try:
        await consume(endpoint, _deciding(chosen, live), stop, journal=journal,
                      on_copy=print_copy)
    finally:
        stop.set()
        await watcher
    return 0


def _deciding(adapter: Adapter, live: LiveRules[Any]) -> Handler:
    async def handler(delivery: Delivery) -> Sequence[Answer]:
        answers = adapter.decide(live.current, delivery)
        print_line({**summary(delivery), "decisions": decisions(answers)})
        return answers
    return handler


def _stopped_by_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
