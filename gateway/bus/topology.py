"""Exchange and queues: a topic exchange; one durable queue per agency, bound by its code."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq

from gateway.errors import BusError

#: What aio-pika, aiormq and the OS raise when the broker is unreachable or drops us.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError: the channel died under us
    aio_pika.exceptions.AMQPException,
    ConnectionError,
    OSError,
    TimeoutError,
)


@dataclass(frozen=True, slots=True)
class Topology:
    exchange: str
    queue_prefix: str

    def queue_name(self, agency: str) -> str:
        return f"{self.queue_prefix}{agency}"


@contextlib.asynccontextmanager
async def translated_errors(what: str) -> AsyncIterator[None]:
    try:
        yield
    except BROKER_ERRORS as exc:
        raise BusError(f"{what}: RabbitMQ failed: {exc!r}") from exc


async def connect(url: str, *, robust: bool = False) -> Any:
    """A plain connection for publishing (the publisher reconnects itself, so a publish never
    waits on a hidden reconnect); a robust one for consumers, which re-consume by themselves."""
    async with translated_errors("connecting"):
        if robust:
            return await aio_pika.connect_robust(url, timeout=10)
        return await aio_pika.connect(url, timeout=10)


async def declare(channel: Any, topology: Topology, agencies: tuple[str, ...]) -> Any:
    """Declare the exchange and every agency queue; returns the exchange."""
    async with translated_errors("declaring the topology"):
        exchange = await channel.declare_exchange(
            topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        for agency in agencies:
            queue = await channel.declare_queue(topology.queue_name(agency), durable=True)
            await queue.bind(exchange, routing_key=agency)
        return exchange
