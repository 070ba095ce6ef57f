"""Relays drain the outbox: each pending row is handed to its channel's dispatcher (AMQP
publisher, mailbox writer) and marked dispatched in the same transaction that locked it.
A failure is ours (rule 4): the row is kept, retried with backoff, and an alarm is logged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from gateway.app.workers import poll_forever
from gateway.errors import DeliveryError
from gateway.logs import event
from gateway.store import interchanges as store
from gateway.store import outbox
from gateway.store.database import translated_errors
from gateway.store.outbox import OutboxRow

log = logging.getLogger("gateway.relay")
BATCH = 50
IDLE_POLL_SECONDS = 1.0
MAX_RETRY_DELAY_SECONDS = 60.0


class Dispatcher(Protocol):
    #: The event recorded once a row is dispatched ("delivered", "acknowledged").
    done_event: str

    async def dispatch(self, row: OutboxRow) -> None: ...


class Relay:
    def __init__(self, pool: Any, channel: str, dispatcher: Dispatcher,
                 wake: asyncio.Event) -> None:
        self._pool = pool
        self._channel = channel
        self._dispatcher = dispatcher
        self._wake = wake

    async def run(self) -> None:
        async def step() -> bool:
            return await self.dispatch_batch() > 0

        await poll_forever(f"{self._channel}-relay", step, self._wake, IDLE_POLL_SECONDS)

    async def dispatch_batch(self) -> int:
        """Dispatch what is due; returns how many rows went out."""
        sent = 0
        async with translated_errors(f"{self._channel} relay"), \
                self._pool.acquire() as connection, connection.transaction():
            for row in await outbox.claim_pending(connection, self._channel, BATCH):
                if await self._one(connection, row):
                    sent += 1
                else:
                    break  # the channel is failing: leave the rest for the retry
        return sent

    async def _one(self, connection: Any, row: OutboxRow) -> bool:
        try:
            await self._dispatcher.dispatch(row)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the row stays and is retried
            delay = min(MAX_RETRY_DELAY_SECONDS, 2.0 ** min(row.attempts + 1, 6))
            await outbox.mark_failed(connection, row.id, str(exc), delay)
            event(log, "dispatch_failed", level=logging.ERROR, channel=self._channel,
                  destination=row.destination, submission=row.interchange_id,
                  key=row.dispatch_key, attempts=row.attempts + 1, retry_in=delay,
                  error=str(exc), exc_info=not isinstance(exc, DeliveryError))
            return False
        await outbox.mark_dispatched(connection, row.id)
        await store.add_event(connection, row.interchange_id, self._dispatcher.done_event,
                              {"channel": self._channel, "destination": row.destination,
                               "key": row.dispatch_key}, row.message_id)
        headers = row.properties.get("headers", row.properties)
        event(log, self._dispatcher.done_event, channel=self._channel,
              destination=row.destination, partner=headers.get("partner"),
              interchange=headers.get("interchange_ref"), submission=row.interchange_id,
              key=row.dispatch_key)
        return True


class MailboxDispatcher:
    """Writes acknowledgements into partners' outbox folders."""

    done_event = "acknowledged"

    def __init__(self, deliver: Any) -> None:
        self._deliver = deliver

    async def dispatch(self, row: OutboxRow) -> None:
        await asyncio.to_thread(self._deliver, row.destination, row.properties["file_name"],
                                row.body)
