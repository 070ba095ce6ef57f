"""Consume the agencies' answers from the gateway's queue on the responses exchange.

Each answer is handed to a handler, which takes it (records it, and queues what it causes, in
one transaction) or refuses it (records why).  Only then is it settled with the broker: a
taken answer is acknowledged, a refused one rejected without requeue, so it lands in the
dead-letter queue for ops and is forwarded nowhere.  While the handler cannot reach the store
the answer stays unacknowledged and is tried again here, never returned to the queue: a
database outage must not use up the queue's delivery limit and dead-letter good answers.

Who published an answer is RabbitMQ's validated ``user_id`` property, never a header: the
broker refuses a publish whose ``user_id`` is not the connection's user (RabbitMQ "Validated
User-ID"), and an answer without one names nobody."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import pamqp.decode

from gateway import alarms
from gateway.bus.topology import (
    BROKER_ERRORS,
    Topology,
    connect,
    declare_responses,
    first_of,
    translated_errors,
)
from gateway.errors import BusError, StoreUnavailable
from gateway.logs import event, redact

log = logging.getLogger("gateway.responses")
#: Answers in hand at once (unacknowledged).
PREFETCH = 32
MAX_STORE_PAUSE_SECONDS = 30.0
#: A handler failing on one answer this many times (a bug of ours): dead-lettered, alarmed.
MAX_HANDLER_FAILURES = 3


@dataclass(frozen=True, slots=True)
class IncomingAnswer:
    broker_user: str | None
    routing_key: str
    answer_id: str | None
    correlation_id: str | None
    type: str | None
    body: bytes
    redelivered: bool


class Verdict(enum.Enum):
    TAKEN = "taken"
    REFUSED = "refused"


Handler = Callable[[IncomingAnswer], Awaitable[Verdict]]


#: The pause before connecting again after a lost connection, doubled while no broker
#: answers, up to the cap.
RECONNECT_PAUSE_SECONDS = 0.2
MAX_RECONNECT_PAUSE_SECONDS = 5.0


class _Lost(BusError):
    """The connection ended under a running consumer (not at our request)."""


async def consume_answers(url: str, topology: Topology, handler: Handler,
                          stop: asyncio.Event, *, licences: bool = False) -> None:
    """Run until ``stop`` is set.  A connection lost under it (a broker cut, or the cluster
    node it was on stopped) is opened again, on the next live broker ``url`` names
    (``topology.connect``); answers in hand then are delivered again by RabbitMQ and known
    to the handler (taken once).  Raises BusError only when the first connection fails.
    ``licences``: the licences queue instead (licensing agencies' licences, taken and
    settled alike: app.licence_feed)."""
    read_any_text()
    queues = topology.licences() if licences else topology
    connected = False
    pause = RECONNECT_PAUSE_SECONDS
    while not stop.is_set():
        try:
            await _consume(url, queues, handler, stop)
            return
        except _Lost as exc:
            connected, pause = True, RECONNECT_PAUSE_SECONDS
            event(log, "answers_reconnecting", level=logging.WARNING, error=str(exc),
                  queue=queues.responses_queue)
        except BusError as exc:
            if not connected:
                raise
            event(log, "answers_reconnecting", level=logging.WARNING, error=str(exc),
                  queue=queues.responses_queue, retry_in=pause)
        with contextlib.suppress(TimeoutError):  # stop ends the pause
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(MAX_RECONNECT_PAUSE_SECONDS, pause * 2)


async def _consume(url: str, topology: Topology, handler: Handler,
                   stop: asyncio.Event) -> None:
    """One connection: consume until ``stop``; _Lost when the broker ends it first."""
    connection = await connect(url)
    try:
        queue = await declare_responses(connection, topology)
        async with translated_errors("consuming answers"):
            await queue.channel.set_qos(prefetch_count=PREFETCH)

            in_order = _InOrder()

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                answer = _incoming(message)
                async with in_order.turn((answer.broker_user, answer.correlation_id)):
                    verdict = await _handled(handler, answer)
                await _settle(message, verdict)

            tag = await queue.consume(on_message)
        await first_of(stop.wait(), connection.closed(), queue.channel.closed())
        if not stop.is_set():
            raise _Lost(f"consuming answers: the connection to {redact(str(connection))} "
                        "was lost")
        async with translated_errors("cancelling the answers consumer"):
            await queue.cancel(tag)
    finally:
        with contextlib.suppress(*BROKER_ERRORS):
            await connection.close()


_SHORT_STRING = pamqp.decode.short_str
_FIELD_TABLE = pamqp.decode.field_table


def read_any_text() -> None:
    """Read an answer whose properties are not UTF-8 instead of dropping the connection.

    RabbitMQ checks no property but ``user_id`` and passes on a ``message_id`` or a header
    name in any bytes (AMQP 0-9-1 section 4.2.5.3 calls short strings UTF-8; no broker
    enforces it).  pamqp raises on them in the connection's frame reader: aiormq closes the
    connection, the answer comes back first after every reconnect and no agency's answer
    gets through (DESIGN rule 6).  Here a short string is read with U+FFFD for what is not
    UTF-8, and a field table (the headers, which the desk does not read) that is not, as
    empty; the answer is then taken or refused like any other.  Process-wide, idempotent."""
    pamqp.decode.METHODS["shortstr"] = _short_string
    pamqp.decode.METHODS["table"] = _field_table


def _short_string(value: bytes) -> tuple[int, str]:
    try:
        return _SHORT_STRING(value)
    except UnicodeDecodeError:
        length = value[0]
        return length + 1, value[1:length + 1].decode("utf-8", errors="replace")


def _field_table(value: bytes) -> tuple[int, Any]:
    try:
        return _FIELD_TABLE(value)
    except UnicodeDecodeError:
        return 4 + int.from_bytes(value[:4], "big"), {}


class _InOrder:
    """One agency's answers to one delivery are handled one at a time, in the order RabbitMQ
    delivered them (each in its own task, started in that order; asyncio.Lock lets waiters
    in first come, first served): an agency's "released" is never overtaken by the
    "accepted" it published before it, which would leave the agency standing at "accepted"."""

    def __init__(self) -> None:
        self._turns: dict[tuple[str | None, str | None], tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: tuple[str | None, str | None]) -> AsyncIterator[None]:
        lock, users = self._turns.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._turns[key]


def _incoming(message: aio_pika.abc.AbstractIncomingMessage) -> IncomingAnswer:
    return IncomingAnswer(broker_user=message.user_id, routing_key=message.routing_key or "",
                          answer_id=message.message_id, correlation_id=message.correlation_id,
                          type=message.type, body=message.body,
                          redelivered=bool(message.redelivered))


async def _handled(handler: Handler, answer: IncomingAnswer) -> Verdict | None:
    """The handler's verdict; None when it keeps failing (a bug of ours: dead-lettered)."""
    failures, pause = 0, 0.5
    while True:
        try:
            return await handler(answer)
        except StoreUnavailable as exc:  # everybody's outage: hold the answer and wait
            event(log, "answer_waiting", level=logging.WARNING, answer=answer.answer_id,
                  error=str(exc), retry_in=pause)
        except Exception as exc:  # noqa: BLE001 - a bug of ours about this answer
            failures += 1
            event(log, "answer_failed", level=logging.ERROR, exc_info=exc,
                  answer=answer.answer_id, agency_user=answer.broker_user, attempt=failures)
            if failures >= MAX_HANDLER_FAILURES:
                event(log, "answer_dead_lettered", level=logging.ERROR,
                      code=alarms.ANSWER_DEAD_LETTERED,
                      answer=answer.answer_id, agency_user=answer.broker_user,
                      note="alarm: the gateway failed on this answer; it is in the "
                           "responses dead-letter queue")
                return None
        await asyncio.sleep(pause)
        pause = min(MAX_STORE_PAUSE_SECONDS, pause * 2)


async def _settle(message: aio_pika.abc.AbstractIncomingMessage,
                  verdict: Verdict | None) -> None:
    async with translated_errors("settling an answer"):
        if verdict is Verdict.TAKEN:
            await message.ack()
        else:
            await message.reject(requeue=False)  # to <queue>.dead
