"""What the example adapters' rules files share: conditions on goods items, reasons the
trader's answer can hold, sample rates; and the file in force, reloaded while the adapter runs.

A rules file is taken only when it was read whole (config/files.py: the same file before and
after the read) and has not changed for ``settle_seconds`` (an editor or ``cat >`` writing it
in several steps leaves a prefix that may well be valid).  A valid file replaces the rules in
force; one that is not is refused with file:line and the reason (logged once per content), and
the rules in force stay."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from pathlib import Path
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.agency.answers import MAX_REASON_CHARS
from gateway.config.files import read_snapshot, read_text
from gateway.config.routing import ChapterRange, CodeRange
from gateway.config.yamlfile import load_model_text
from gateway.errors import ConfigError
from gateway.logs import event
from gateway.model.canonical import GoodsItem
from gateway.model.canonical.common import CountryCode

log = logging.getLogger("gateway.agency.rules")

#: A reason as the trader reads it in the CUSRES (FTX 4440, an..70).
ReasonText = Annotated[str, Field(min_length=1, max_length=MAX_REASON_CHARS)]
#: The share of deliveries a random sample picks: 0 never, 1 always.
SampleRate = Annotated[float, Field(ge=0.0, le=1.0)]
#: The start of the agency's own references (CUS-20261122-3F9A0C1B).
ReferencePrefix = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{0,9}$")]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GoodsConditions(Strict):
    """Conditions on one goods item, all of which must hold for the same item; an absent
    condition holds for every item."""

    hs_chapters: tuple[ChapterRange, ...] | None = Field(
        default=None, description='HS chapters, "03" or "01-24"')
    commodity_codes: tuple[CodeRange, ...] | None = Field(
        default=None, description='commodity code prefixes, "0303" or "9301-9306"')
    origin_countries: tuple[CountryCode, ...] | None = Field(
        default=None, description="ISO 3166-1 alpha-2 countries of origin")

    @property
    def on_goods(self) -> bool:
        return any(c is not None for c in (self.hs_chapters, self.commodity_codes,
                                           self.origin_countries))

    def holds_for(self, item: GoodsItem) -> bool:
        code = item.commodity_code
        if self.hs_chapters is not None and not (
                code and any(r.contains(code[:2]) for r in self.hs_chapters)):
            return False
        if self.commodity_codes is not None and not (
                code and any(r.contains(code) for r in self.commodity_codes)):
            return False
        return self.origin_countries is None or item.country_of_origin in self.origin_countries


class NamedRules(Strict):
    """A rules file's ``rules``: each with a name of its own (the log and ``explain`` name
    it)."""

    @model_validator(mode="after")
    def _unique_names(self) -> NamedRules:
        names = [rule.name for rule in getattr(self, "rules", ())]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule name used twice: {', '.join(twice)}")
        return self


Rules = TypeVar("Rules", bound=BaseModel)


class LiveRules(Generic[Rules]):
    """The rules in force from ``path``, taken up again when the file changes."""

    def __init__(self, path: Path, model: type[Rules], *, settle_seconds: float = 1.0,
                 check_seconds: float = 1.0) -> None:
        self.path = path
        self._model = model
        self._settle = settle_seconds
        self._interval = check_seconds
        text = read_text(path)  # the first read must be good: the adapter does not start
        self.current: Rules = load_model_text(text, str(path), model)
        self._in_force = _digest(text.encode("utf-8"))
        self._refused = ""
        #: Why the last refused content was refused (None: the file in force is on disk).
        self.refusal: str | None = None
        #: Set whenever other rules are put in force (cleared by whoever waits for it).
        self.applied = asyncio.Event()

    async def watch(self, stop: asyncio.Event) -> None:
        """Look at the file every ``check_seconds`` until ``stop``; never stops on an error."""
        while not stop.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def check(self) -> None:
        """One look: apply a whole, quiet, valid change; refuse an invalid one."""
        try:
            snapshot = await asyncio.to_thread(read_snapshot, self.path)
        except ConfigError as exc:  # gone, unreadable, a directory: keep the rules in force
            self._refuse(str(exc), str(exc))
            return
        if snapshot is None or time.time() - snapshot.modified < self._settle:
            return  # being written: judged once it is quiet
        digest = _digest(snapshot.data)
        if digest == self._in_force:
            self._refused, self.refusal = "", None  # back as it was
            return
        if digest == self._refused:
            return
        try:
            rules = await asyncio.to_thread(
                lambda: load_model_text(snapshot.text, str(self.path), self._model))
        except ConfigError as exc:
            self._refuse(digest, str(exc))
            return
        self.current, self._in_force, self._refused, self.refusal = rules, digest, "", None
        self.applied.set()
        event(log, "rules_applied", path=str(self.path), sha256=digest)

    def _refuse(self, key: str, reason: str) -> None:
        if key != self._refused:
            event(log, "rules_refused", level=logging.ERROR, path=str(self.path),
                  reason=reason, note="the rules in force stay until the file is fixed")
        self._refused, self.refusal = key, reason


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
