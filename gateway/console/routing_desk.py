"""What the console's Routing pages need from the application layer (which the console may
not import: gateway.app.routing_change implements it, gateway serve passes it in the Console):
routing.yaml as it is on disk, the table in force, ``gateway routes check``'s validation, the
``gateway routes diff`` replay, and an atomic write applied through the validated hot-reload
path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.config.routing import RoutingTable
from gateway.pipeline.routing_diff import RoutingDiff


@dataclass(frozen=True, slots=True)
class RoutingFile:
    """routing.yaml as read whole."""

    text: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Checked:
    """A proposed text as ``gateway routes check`` judges it: the table, or the errors (each
    one naming routing.yaml:line:column)."""

    table: RoutingTable | None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Applied:
    """What became of an approved text once written: the version applied, refused (with the
    version recording why), or not judged yet (the watcher takes it at its next look)."""

    version: int | None
    refused: bool = False

    @property
    def pending(self) -> bool:
        return self.version is None and not self.refused


class RoutingDesk(Protocol):
    def in_force(self) -> tuple[int, RoutingTable] | None:
        """The version and table the gateway routes with now."""

    async def read(self) -> RoutingFile:
        """routing.yaml now (StoreError-free: a ConfigError when unreadable)."""

    async def check(self, text: str) -> Checked: ...

    async def replay(self, base: str, text: str, days: int) -> RoutingDiff:
        """Both texts valid (checked): the messages of the last ``days`` days routed by
        each, at most a bounded number of them."""

    async def write(self, proposal: int, text: str) -> None:
        """Put ``text`` in place of routing.yaml atomically, expecting the reload to record
        it as ``proposal``'s version."""

    async def restore(self, proposal: int, text: str) -> None:
        """Undo ``write`` (the approval's transaction failed after it)."""

    async def apply(self, proposal: int) -> Applied:
        """Reload at once (as SIGHUP does) and wait, bounded, for the written text's fate."""
