"""Publish outbox rows to the delivery exchange: persistent, mandatory, with publisher
confirms, so a row is marked sent only once RabbitMQ has taken responsibility for it."""

from __future__ import annotations

import logging
from typing import Any

import aio_pika

from gateway.bus.topology import Topology, connect, declare, translated_errors
from gateway.errors import BusError
from gateway.logs import event
from gateway.store.outbox import OutboxRow

PUBLISH_TIMEOUT_SECONDS = 15
log = logging.getLogger("gateway.bus")


class AmqpPublisher:
    """The dispatcher of the "amqp" outbox channel."""

    done_event = "delivered"

    def __init__(self, url: str, topology: Topology, agencies: tuple[str, ...]) -> None:
        self._url = url
        self._topology = topology
        self._agencies = agencies
        self._connection: Any = None
        self._exchange: Any = None

    async def _ensure(self) -> Any:
        if self._exchange is None or self._connection is None or self._connection.is_closed:
            await self.close()
            self._connection = await connect(self._url)
            await declare(self._connection, self._topology, self._agencies)
            async with translated_errors("opening a channel"):
                channel = await self._connection.channel(publisher_confirms=True)
                self._exchange = await channel.get_exchange(self._topology.exchange)
        return self._exchange

    async def update_agencies(self, agencies: tuple[str, ...]) -> None:
        """New agencies: declare their queues now (and on every reconnect from now on)."""
        self._agencies = agencies
        if self._connection is None or self._connection.is_closed:
            return  # declared when the publisher next connects
        try:
            await declare(self._connection, self._topology, agencies)
        except BusError as exc:  # ours: the next connection declares them
            self._exchange = None
            event(log, "topology_deferred", level=logging.WARNING, error=str(exc))

    async def prepare(self) -> None:
        """Connect and declare the exchange and every agency queue now, so agencies can
        subscribe before the first declaration arrives."""
        await self._ensure()

    async def dispatch(self, row: OutboxRow) -> None:
        exchange = await self._ensure()
        props = row.properties
        message = aio_pika.Message(
            body=row.body,
            message_id=props["message_id"],
            correlation_id=props["correlation_id"],
            type=props["type"],
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            priority=props.get("priority"),
            headers=props["headers"],
        )
        try:
            async with translated_errors(f"publishing {props['message_id']}"):
                await exchange.publish(message, routing_key=row.destination, mandatory=True,
                                       timeout=PUBLISH_TIMEOUT_SECONDS)
        except Exception:
            self._exchange = None  # reconnect on the next try
            raise

    async def close(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None and not connection.is_closed:
            async with translated_errors("closing"):
                await connection.close()
