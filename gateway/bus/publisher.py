"""Publish outbox rows to the delivery exchange: persistent, mandatory, with publisher
confirms, so a row is marked sent only once RabbitMQ has taken responsibility for it.

Only a ``Basic.Ack`` is a delivery.  A mandatory publish that no queue takes comes back
(``Basic.Return``, AMQP 0-9-1 section 1.8.3.9): the channel raises it (``on_return_raises``;
aio-pika's default would resolve the publish with the returned message, a lost message marked
sent), and the result is checked too.  The agency's queue is then declared again and the
publish tried once more.  A ``Basic.Nack`` (a full queue with ``x-overflow: reject-publish``)
is a failure of that destination.

A batch is published with every confirm in flight at once (``dispatch_many``): the relay waits
for one round of confirms per batch, not one per row."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
import aiormq

from gateway import alarms
from gateway.bus.topology import Topology, connect, declare, translated_errors
from gateway.errors import BusError
from gateway.logs import event
from gateway.store.outbox import Failure, OutboxRow, Scope

PUBLISH_TIMEOUT_SECONDS = 15
#: RabbitMQ refuses a larger message (its ``max_message_size``, 128 MiB by default since 3.8;
#: a broker set lower refuses with 406, which counts the same).
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
log = logging.getLogger("gateway.bus")


class AmqpPublisher:
    """The dispatcher of the "amqp" outbox channel."""

    done_event = "delivered"

    def __init__(self, url: str, topology: Topology, agencies: tuple[str, ...]) -> None:
        self._url = url
        self._topology = topology
        self._agencies = agencies
        self._connection: Any = None
        self._channel: Any = None
        self._exchange: Any = None
        #: One connection attempt at a time: a batch's publishes share what it opens.
        self._connecting = asyncio.Lock()

    async def _ensure(self) -> Any:
        async with self._connecting:
            return await self._open()

    async def _open(self) -> Any:
        if self._connection is None or self._connection.is_closed:
            await self.close()
            self._connection = await connect(self._url)
            _deferred(await declare(self._connection, self._topology, self._agencies))
        if self._channel is None or self._channel.is_closed:  # the broker closed it
            async with translated_errors("opening a channel"):
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True)
                self._exchange = await self._channel.get_exchange(self._topology.exchange)
        return self._exchange

    async def update_agencies(self, agencies: tuple[str, ...]) -> None:
        """New agencies: declare their queues now (and on every reconnect from now on)."""
        self._agencies = agencies
        if self._connection is None or self._connection.is_closed:
            return  # declared when the publisher next connects
        try:
            _deferred(await declare(self._connection, self._topology, agencies))
        except BusError as exc:  # ours: the next connection declares them
            await self._drop()
            event(log, "topology_deferred", level=logging.WARNING, error=str(exc))

    async def prepare(self) -> None:
        """Connect and declare the exchange and every agency queue now, so agencies can
        subscribe before the first declaration arrives."""
        await self._ensure()

    async def unreachable(self) -> str | None:
        """Why the broker cannot be published to now, or None when it can (/ready asks).
        Connects when not connected, as the next publish would: a gateway that started while
        RabbitMQ was down becomes ready once it is back, before any row waits."""
        _exchange, failure = await self._connected()
        return None if failure is None else failure.error

    async def dispatch(self, row: OutboxRow) -> Failure | None:
        (outcome,) = await self.dispatch_many([row])
        return outcome

    async def dispatch_many(self, rows: list[OutboxRow]) -> list[Failure | None]:
        """Publish every row at once and wait for all their confirms; then, in id order, the
        rows that came back are published again (once their queue is declared again).

        Order holds per destination: AMQP keeps the order of the messages one channel
        publishes to one queue (0-9-1 section 4.7), and the publishes, started in id order
        here, take the channel's frame lock in that order (aiormq's ``asyncio.Lock`` is
        FIFO, and nothing before it suspends).  Rows that came back are published again one
        at a time, in order, and not after an earlier row of their destination failed in
        this batch."""
        exchange, failure = await self._connected()
        if failure is not None:
            return [failure] * len(rows)
        first = await asyncio.gather(*(self._publish(row, exchange) for row in rows))
        results: list[Failure | None] = []
        stopped: set[str] = set()  # destinations with a failed row in this batch
        declared: dict[str, str | None] = {}  # destination -> why its queue is not declared
        for row, (failure, returned) in zip(rows, first, strict=True):
            if returned and row.destination not in stopped:
                assert failure is not None
                failure = await self._returned(row, failure, declared)
            if failure is not None:
                stopped.add(row.destination)
            results.append(failure)
        return results

    async def _returned(self, row: OutboxRow, failure: Failure,
                        declared: dict[str, str | None]) -> Failure | None:
        """A row no queue took: its agency's queue is declared again (once a batch) and the
        row published once more."""
        if row.destination not in self._agencies:
            return Failure(Scope.UNDELIVERABLE, f"{failure.error}; {row.destination!r} is not "
                                                "an agency of this gateway any more")
        event(log, "publish_returned", level=logging.ERROR, code=alarms.PUBLISH_RETURNED,
              destination=row.destination,
              key=row.dispatch_key, error=failure.error,
              note="alarm: no queue took it (the agency's queue was deleted?); declaring the "
                   "queue again and publishing again")
        if row.destination not in declared:
            try:
                failed = await declare(self._connection, self._topology, (row.destination,))
            except BusError as exc:
                failed = {row.destination: str(exc)}
            declared[row.destination] = failed.get(row.destination)
        why = declared[row.destination]
        if why is not None:
            return Failure(Scope.DESTINATION, f"{failure.error}; declaring its queue: {why}")
        exchange, failure_now = await self._connected()
        if failure_now is None:
            failure_now, _ = await self._publish(row, exchange)
        return failure_now

    async def _connected(self) -> tuple[Any, Failure | None]:
        """The exchange to publish on, or why there is none (about every row alike)."""
        try:
            return await self._ensure(), None
        except Exception as exc:  # noqa: BLE001 - never about a row: aiormq also raises a
            # plain RuntimeError for a connection closing under us
            await self._drop()
            return None, Failure(Scope.CHANNEL, f"connecting to RabbitMQ: {exc!r}")

    async def _publish(self, row: OutboxRow, exchange: Any) -> tuple[Failure | None, bool]:
        """(why it failed or None, whether it came back because no queue took it)."""
        if len(row.body) > MAX_MESSAGE_BYTES:
            return Failure(Scope.UNDELIVERABLE, f"{len(row.body)} bytes: larger than the "
                                                f"broker takes ({MAX_MESSAGE_BYTES})"), False
        what = f"publishing {row.dispatch_key} to {row.destination!r}"
        try:
            async with translated_errors(what):
                confirmed = await exchange.publish(
                    _message(row), routing_key=row.destination, mandatory=True,
                    timeout=PUBLISH_TIMEOUT_SECONDS)
        except BusError as exc:
            scope = publish_scope(exc.__cause__)
            if scope is Scope.CHANNEL:
                await self._drop()  # closed under us, or wedged (a lost confirm): start anew
            return Failure(scope, str(exc)), _is_return(exc.__cause__)
        if isinstance(confirmed, aiormq.spec.Basic.Ack):
            return None, False
        # Not an ack: the message came back (a channel that does not raise on returns).
        return Failure(Scope.DESTINATION, f"{what}: RabbitMQ returned it: {confirmed!r}"), True

    async def _drop(self) -> None:
        """Forget the connection (closing it): the next publish opens a new one."""
        try:
            await self.close()
        except BusError as exc:
            event(log, "close_failed", level=logging.WARNING, error=str(exc))

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = self._exchange = None
        if connection is not None and not connection.is_closed:
            async with translated_errors("closing"):
                await connection.close()


def publish_scope(cause: BaseException | None) -> Scope:
    """What a failed publish is about, from what aio-pika raised."""
    if isinstance(cause, aiormq.exceptions.DeliveryError) and isinstance(
            cause.frame, aiormq.spec.Basic.Return | aiormq.spec.Basic.Nack
            | aiormq.spec.Basic.Reject):
        return Scope.DESTINATION  # no queue took it, or its queue refused it (full)
    if isinstance(cause, aiormq.exceptions.ChannelPreconditionFailed):
        return Scope.UNDELIVERABLE  # 406 on a publish: this message (say too large)
    return Scope.CHANNEL  # the connection, the channel, a timeout: every row alike


def _deferred(failed: dict[str, str]) -> None:
    """Agencies whose queues could not be declared: publishing to them comes back, and
    declares them again (``dispatch``); the others go on meanwhile."""
    for agency, error in failed.items():
        event(log, "topology_deferred", level=logging.WARNING, agency=agency, error=error,
              note="declared again when a publish to it comes back")


def _is_return(cause: BaseException | None) -> bool:
    return isinstance(cause, aiormq.exceptions.DeliveryError) and isinstance(
        cause.frame, aiormq.spec.Basic.Return)


def _message(row: OutboxRow) -> aio_pika.Message:
    props = row.properties
    return aio_pika.Message(
        body=row.body,
        message_id=props["message_id"],
        correlation_id=props["correlation_id"],
        type=props["type"],
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=props.get("priority"),
        headers=props["headers"],
    )
