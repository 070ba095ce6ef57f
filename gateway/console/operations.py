"""What the console's Attention page asks of the app layer (console may not import
gateway.app: the layers).  gateway/app/serve.py passes an implementation in
(gateway/app/console_operations.py): release and replay through the same code as the CLI's
``gateway release`` and ``gateway replay``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

Connection = Any
#: Writes the audit row inside the action's own transaction (a dead letter's replay opens its
#: transaction itself); given the connection and what was done.
Recorded = Callable[[Connection, dict[str, Any]], Awaitable[None]]
#: Dead letters listed per agency (each is a round trip to the broker; the others wait their
#: turn, and ``gateway replay --dead AGENCY --all`` takes them all).
DEAD_LETTERS_LISTED = 100
#: What a replay may name (the page's form field ``what``).
REPLAYABLE = ("submission", "dispatches", "message")


@dataclass(frozen=True, slots=True)
class Done:
    """An action's outcome: ``changed`` False when there was nothing (left) to do, e.g. the
    second POST of a double click; ``text`` says what happened, as the CLI would."""

    changed: bool
    text: str


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    agency: str
    message_id: str
    correlation_id: str
    type: str
    reason: str
    replays: int
    submission: str


@dataclass(frozen=True, slots=True)
class DeadLetterList:
    letters: tuple[DeadLetterView, ...]
    #: Agencies whose queue could not be read, and why.
    problems: tuple[str, ...]


class Operations(Protocol):
    async def release(self, connection: Connection, message_id: int) -> Done:
        """Send on a held message, in the caller's transaction (row locked)."""

    async def replay(self, connection: Connection, what: str, ident: int) -> Done:
        """Replay a parked submission, a submission's parked dispatches, or an unroutable
        message (REPLAYABLE), in the caller's transaction."""

    async def dead_letters(self) -> DeadLetterList:
        """Every agency's dead-letter queue, read and put back untouched."""

    async def replay_dead(self, agency: str, letter: str, recorded: Recorded) -> Done:
        """Publish one dead letter again (each death once)."""
