"""Consume one agency's queue and answer each delivery, the way the gateway expects
(docs/agencies.md): each delivery is read (a malformed one is dead-lettered), decided once by
the handler, journaled, its answers published with publisher confirms, and only then
acknowledged.

- **Once**: a delivery already in the journal (a redelivery: the adapter died before its
  acknowledgement reached RabbitMQ) is answered again from the journal, the same answers under
  the same message ids, and the handler is not called.
- **Acknowledged last**: an answer counts as sent only on RabbitMQ's ``Basic.Ack``; a publish
  that comes back (``Basic.Return``: no queue bound, the gateway not yet started) or is
  refused (``Basic.Nack``) is tried again with a growing pause while the delivery stays
  unacknowledged.  aio-pika's channel is opened with ``on_return_raises``: without it a
  returned mandatory publish resolves as if it were confirmed.
- **Their fault vs ours**: a handler that raises gets its delivery back on the queue
  (``nack`` with requeue: the queue's ``x-delivery-limit`` dead-letters one that keeps
  failing); a body that is not a canonical message is rejected without requeue (to the dead
  letters) at once.  A broker that goes away is reconnected to; what was unacknowledged comes
  again and is answered from the journal.
- **Only itself**: the agency connects as its own broker user, which may only read its queue
  and publish to the responses exchange with its code as the routing key; every answer
  carries that user as ``user_id``, which RabbitMQ checks.  It declares nothing: the gateway
  does, and the agency opens its queue and the exchange passively.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aio_pika
import aiormq

from gateway.agency.answers import Answer, Outgoing, outgoing
from gateway.agency.credentials import Endpoint
from gateway.agency.delivery import Delivery, MalformedDelivery, read_delivery
from gateway.agency.journal import Journal, default_journal_path
from gateway.bus.topology import BROKER_ERRORS, connect, first_of, translated_errors
from gateway.errors import BusError, ConfigError
from gateway.logs import event, redact

log = logging.getLogger("gateway.agency")
#: What publishing or settling raises when the broker or the channel goes away (aiormq raises
#: a plain RuntimeError for a channel closed under it).
_GONE: tuple[type[BaseException], ...] = (*BROKER_ERRORS, RuntimeError)

#: Decides on a delivery: the answers, in order (none is an answer too: nothing to say).
Handler = Callable[[Delivery], Awaitable[Sequence[Answer]]]
#: Sees an observer's copy (role "copy"), which is never answered.
Observer = Callable[[Delivery], Awaitable[None]]

PUBLISH_TIMEOUT_SECONDS = 15.0
MAX_PAUSE_SECONDS = 30.0
#: How long a stop waits for the deliveries in hand to be answered and acknowledged.
DRAIN_SECONDS = 30.0


async def consume(endpoint: Endpoint, handler: Handler, stop: asyncio.Event, *,
                  journal: Journal | Path | None = None, on_copy: Observer | None = None,
                  prefetch: int = 10, handler_retry_pause: float = 1.0,
                  publish_retry_pause: float = 0.5) -> None:
    """Answer ``endpoint``'s deliveries with ``handler`` until ``stop`` is set.

    ``journal``: an open Journal, or the path of one to open here (default
    ``var/agency/<code>.journal.sqlite``).  ``on_copy`` sees observers' copies (without it
    they are acknowledged and logged).  ``handler_retry_pause``: how long a delivery whose
    handler failed waits before it goes back to the queue.  Raises ConfigError when the broker
    refuses the agency's password or its queue (provisioning is wrong); reconnects on
    everything else."""
    opened = journal if isinstance(journal, Journal) else await Journal.open(
        journal or default_journal_path(endpoint.code))
    try:
        answerer = _Answerer(endpoint, handler, opened, on_copy, stop,
                             handler_retry_pause, publish_retry_pause)
        await _keep_consuming(answerer, prefetch, stop)
    finally:
        if opened is not journal:
            await opened.close()


async def _keep_consuming(answerer: _Answerer, prefetch: int, stop: asyncio.Event) -> None:
    """Sessions one after the other, with a growing pause between two that failed or ended
    soon (a broker that keeps closing the channel must not be hammered)."""
    pause = 1.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            await answerer.session(prefetch)
        except BusError as exc:
            _fatal(answerer.endpoint, exc)
            event(log, "agency_unavailable", level=logging.ERROR, agency=answerer.endpoint.code,
                  error=str(exc), retry_in=pause)
        if time.monotonic() - started > MAX_PAUSE_SECONDS:
            pause = 1.0  # it ran a good while: start again at once
            continue
        if await _stopped(stop, pause):
            return
        pause = min(MAX_PAUSE_SECONDS, pause * 2)


def _fatal(endpoint: Endpoint, exc: BusError) -> None:
    """A password or permission the broker refuses will not mend by retrying."""
    cause = exc.__cause__
    if isinstance(cause, aiormq.exceptions.ProbableAuthenticationError):
        raise ConfigError(f"RabbitMQ refused user {endpoint.user!r} at {redact(endpoint.url)}: "
                          "run `gateway agencies provision` (it sets the password in the "
                          "agency's password_file)") from exc
    if isinstance(cause, aiormq.exceptions.ChannelAccessRefused):
        raise ConfigError(f"RabbitMQ refused user {endpoint.user!r} access ({cause}): run "
                          "`gateway agencies provision` (it sets the agency's permissions)"
                          ) from exc


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop``; whether it stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


class _Answerer:
    def __init__(self, endpoint: Endpoint, handler: Handler, journal: Journal,
                 on_copy: Observer | None, stop: asyncio.Event, handler_retry_pause: float,
                 publish_retry_pause: float) -> None:
        self.endpoint = endpoint
        self._handler = handler
        self._journal = journal
        self._on_copy = on_copy
        self._stop = stop
        self._handler_pause = handler_retry_pause
        self._publish_pause = publish_retry_pause
        self._exchange: Any = None
        self._publishing: Any = None
        self._in_hand: set[asyncio.Task[Any]] = set()

    async def session(self, prefetch: int) -> None:
        """One connection: consume until ``stop`` (then drain) or until the broker closes
        the connection or a channel (BusError when it could not start)."""
        connection = await connect(self.endpoint.url)
        try:
            consuming, queue, tag = await self._open(connection, prefetch)
            event(log, "agency_consuming", agency=self.endpoint.code, queue=self.endpoint.queue,
                  user=self.endpoint.user, answers_to=self.endpoint.responses_exchange)
            await first_of(self._stop.wait(), connection.closed(), consuming.closed(),
                         self._publishing.closed())
            if self._stop.is_set():
                await self._drain(queue, tag)
            else:
                event(log, "agency_disconnected", level=logging.WARNING,
                      agency=self.endpoint.code, note="reconnecting; what was not "
                      "acknowledged comes again and is answered from the journal")
        finally:
            await _close(connection)
            for task in list(self._in_hand):
                task.cancel()

    async def _open(self, connection: Any, prefetch: int) -> tuple[Any, Any, str]:
        what = f"opening queue {self.endpoint.queue!r} and exchange " \
               f"{self.endpoint.responses_exchange!r} as {self.endpoint.user!r}"
        try:
            async with translated_errors(what):
                consuming = await connection.channel()
                await consuming.set_qos(prefetch_count=prefetch)
                queue = await consuming.get_queue(self.endpoint.queue, ensure=True)
                self._publishing = await connection.channel(publisher_confirms=True,
                                                            on_return_raises=True)
                self._exchange = await self._publishing.get_exchange(
                    self.endpoint.responses_exchange, ensure=True)
                tag = await queue.consume(self._on_message)
        except BusError as exc:
            if isinstance(exc.__cause__, aiormq.exceptions.ChannelNotFoundEntity):
                raise BusError(f"{what}: not there yet; the gateway declares them when it "
                               f"starts (gateway serve): {exc.__cause__}") from exc.__cause__
            raise
        return consuming, queue, tag

    async def _drain(self, queue: Any, tag: str) -> None:
        """No new deliveries; let those in hand finish (a bounded time)."""
        with contextlib.suppress(*BROKER_ERRORS):
            await queue.cancel(tag)
        if self._in_hand:
            await asyncio.wait(set(self._in_hand), timeout=DRAIN_SECONDS)

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_hand.add(task)
        try:
            await self._answer(message)
        finally:
            self._in_hand.discard(task)

    async def _answer(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            delivery = read_delivery(
                self.endpoint.code, message_id=message.message_id,
                correlation_id=message.correlation_id, type_=message.type,
                headers=message.headers, body=message.body,
                redelivered=bool(message.redelivered))
        except MalformedDelivery as exc:
            event(log, "delivery_malformed", level=logging.ERROR, agency=self.endpoint.code,
                  delivery=message.message_id, reason=str(exc),
                  note="rejected to the queue's dead letters; never decided on")
            await _settle(message.reject(requeue=False))
            return
        if delivery.is_copy:
            await self._observe(delivery, message)
            return
        answers = await self._decided(delivery)
        if answers is None:
            await _stopped(self._stop, self._handler_pause)
            await _settle(message.nack(requeue=True))
        elif await self._publish(delivery, answers, message):
            await _settle(message.ack())

    async def _decided(self, delivery: Delivery) -> tuple[Outgoing, ...] | None:
        """The journaled answers (deciding first when the journal has none); None when the
        handler or the journal failed."""
        try:
            kept = await self._journal.recorded(delivery.message_id)
            if kept is not None:
                event(log, "delivery_repeated", agency=self.endpoint.code,
                      delivery=delivery.message_id, answers=len(kept),
                      note="decided before: its journaled answers are published again")
                return kept
            decided = outgoing(delivery, await self._handler(delivery))
            return await self._journal.record(delivery.message_id, decided)
        except Exception as exc:  # noqa: BLE001 - the handler's bug or the journal's disk
            event(log, "delivery_failed", level=logging.ERROR, exc_info=exc,
                  agency=self.endpoint.code, delivery=delivery.message_id,
                  note="back to the queue; dead-lettered after the queue's delivery limit")
            return None

    async def _observe(self, delivery: Delivery,
                       message: aio_pika.abc.AbstractIncomingMessage) -> None:
        """An observer's copy: shown to ``on_copy``, never answered."""
        try:
            if self._on_copy is not None:
                await self._on_copy(delivery)
            else:
                event(log, "copy_received", agency=self.endpoint.code,
                      delivery=delivery.message_id, note="an observer's copy: not answered")
        except Exception as exc:  # noqa: BLE001 - the observer's bug
            event(log, "copy_failed", level=logging.ERROR, exc_info=exc,
                  agency=self.endpoint.code, delivery=delivery.message_id)
            await _stopped(self._stop, self._handler_pause)
            await _settle(message.nack(requeue=True))
            return
        await _settle(message.ack())

    async def _publish(self, delivery: Delivery, answers: Sequence[Outgoing],
                       message: aio_pika.abc.AbstractIncomingMessage) -> bool:
        """Every answer confirmed (True), or the delivery given up for now: its channel is
        gone or the consumer stops (it comes again, and is answered from the journal)."""
        for answer in answers:
            pause = self._publish_pause
            while not await self._published(delivery, answer):
                if not _open(message) or await _stopped(self._stop, pause):
                    return False
                pause = min(MAX_PAUSE_SECONDS, pause * 2)
        return _open(message)

    async def _published(self, delivery: Delivery, answer: Outgoing) -> bool:
        try:
            confirmed = await self._exchange.publish(
                self._message(delivery, answer), routing_key=self.endpoint.code,
                mandatory=True, timeout=PUBLISH_TIMEOUT_SECONDS)
        except _GONE as exc:
            event(log, "answer_unconfirmed", level=logging.WARNING, agency=self.endpoint.code,
                  answer=answer.message_id, error=repr(exc),
                  note="published again until RabbitMQ confirms it (is the gateway's "
                       "responses queue declared?); the delivery waits unacknowledged")
            return False
        if not isinstance(confirmed, aiormq.spec.Basic.Ack):
            event(log, "answer_unconfirmed", level=logging.WARNING, agency=self.endpoint.code,
                  answer=answer.message_id, error=repr(confirmed))
            return False
        event(log, "answer_published", agency=self.endpoint.code, answer=answer.message_id,
              type=answer.type)
        return True

    def _message(self, delivery: Delivery, answer: Outgoing) -> aio_pika.Message:
        return aio_pika.Message(
            body=answer.body, message_id=answer.message_id,
            correlation_id=delivery.message_id, type=answer.type,
            content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            user_id=self.endpoint.user)


def _open(message: aio_pika.abc.AbstractIncomingMessage) -> bool:
    """Whether the channel the delivery came on is still open (it can still be settled)."""
    try:
        return not message.channel.is_closed
    except aiormq.exceptions.ChannelInvalidStateError:
        return False


async def _settle(settling: Awaitable[None]) -> None:
    """Acknowledge, reject or return a delivery; a channel closed meanwhile returns it to the
    queue by itself (it is answered from the journal when it comes again)."""
    try:
        await settling
    except _GONE as exc:
        event(log, "delivery_unsettled", level=logging.WARNING, error=repr(exc))


async def _close(connection: Any) -> None:
    with contextlib.suppress(*_GONE):
        await connection.close()
