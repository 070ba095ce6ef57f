"""Writes a decision makes that nothing later in its transaction reads back (its events, its
answer, its outbox rows, the agencies whose answers it awaits): collected while the decision
runs and written at its end, a few statements for a whole batch of decisions instead of a round trip
each.  The rows are written in the order they were collected, so outbox ids still ascend in
decision order (a destination's rows go out in that order, store.outbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.store import answers, outbox
from gateway.store.interchanges import (
    NewAcknowledgement,
    NewEvent,
    add_acknowledgements,
    add_events,
)

Connection = Any


@dataclass(slots=True)
class Deferred:
    events: list[NewEvent] = field(default_factory=list)
    rows: list[outbox.NewRow] = field(default_factory=list)
    #: (message id, agency): a delivery with role "deliver" was queued; its answer awaited.
    awaited: list[tuple[int, str]] = field(default_factory=list)
    acknowledgements: list[NewAcknowledgement] = field(default_factory=list)

    def event(self, interchange_id: int, kind: str, detail: dict[str, Any],
              message_id: int | None = None) -> None:
        self.events.append(NewEvent(interchange_id, kind, detail, message_id))

    async def flush(self, connection: Connection) -> None:
        """Write what was collected, and forget it."""
        await answers.await_answers(connection, self.awaited)
        await add_acknowledgements(connection, self.acknowledgements)
        await outbox.add_many(connection, self.rows)
        await add_events(connection, self.events)
        self.events, self.rows, self.awaited, self.acknowledgements = [], [], [], []
