"""Exchange and queues: a topic exchange; one durable queue per agency, bound by its code."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq

from gateway.config.broker_urls import broker_urls
from gateway.config.load import GatewayConfig
from gateway.errors import BusError
from gateway.logs import event, redact

log = logging.getLogger("gateway.bus")

#: What aio-pika, aiormq and the OS raise when the broker is unreachable or drops us.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError: the channel died under us
    aio_pika.exceptions.AMQPException,
    ConnectionError,
    OSError,
    TimeoutError,
)


#: A delivery an agency's handler fails this many times goes to its dead-letter queue instead
#: of being redelivered for ever (quorum queue delivery limit).
DELIVERY_LIMIT = 10


@dataclass(frozen=True, slots=True)
class Topology:
    exchange: str
    queue_prefix: str
    #: Where agencies answer (a topic exchange, routing key = agency code) and the gateway's
    #: queue on it.
    responses_exchange: str = "gateway.responses"
    responses_queue: str = "gateway.responses"
    #: Where licensing agencies publish licences (routing key = agency code), and the
    #: gateway's queue on it (docs/licences.md).
    licences_exchange: str = "gateway.licences"
    licences_queue: str = "gateway.licences"

    @property
    def responses_dead_queue(self) -> str:
        return f"{self.responses_queue}.dead"

    def responses_queue_arguments(self) -> dict[str, Any]:
        """What cannot be taken as an answer (and an answer our handler keeps failing on)
        goes to ``<queue>.dead`` through the default exchange, at least once."""
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.responses_dead_queue,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def licences(self) -> Topology:
        """The same topology with the licences exchange and queue in the responses' place:
        they are declared and consumed alike."""
        return dataclasses.replace(self, responses_exchange=self.licences_exchange,
                                   responses_queue=self.licences_queue)

    def queue_name(self, agency: str) -> str:
        return f"{self.queue_prefix}{agency}"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dead"

    def dead_letter_queue(self, agency: str) -> str:
        return f"{self.queue_prefix}{agency}.dead"

    def queue_arguments(self, agency: str) -> dict[str, Any]:
        """Quorum queues (replicated, durable), and what an agency rejects or cannot handle
        goes to its dead-letter queue, at least once."""
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": agency,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }


@contextlib.asynccontextmanager
async def translated_errors(what: str) -> AsyncIterator[None]:
    try:
        yield
    except BROKER_ERRORS as exc:
        raise BusError(f"{what}: RabbitMQ failed: {exc!r}") from exc


#: Per broker list, the position of the broker that answered last (tried first next time).
_LAST_LIVE: dict[str, int] = {}
#: How long one broker of a list may take to answer before the next is tried.
CONNECT_TIMEOUT_SECONDS = 10


async def connect(url: str) -> Any:
    """A plain connection (the publisher reconnects itself, so a publish never waits on a
    hidden reconnect; consumers end on a lost connection and their supervisor starts them
    again).  ``url`` may name several brokers (config.broker_urls): each is tried in turn,
    the one that answered last first, and the error names every one that failed."""
    urls = broker_urls(url)
    first = _LAST_LIVE.get(url, 0) % len(urls)
    failures: list[tuple[str, BaseException]] = []
    for position in [*range(first, len(urls)), *range(first)]:
        try:
            connection = await aio_pika.connect(urls[position], timeout=CONNECT_TIMEOUT_SECONDS)
        except BROKER_ERRORS as exc:
            failures.append((redact(urls[position]), exc))
            continue
        _LAST_LIVE[url] = position
        return connection
    # The cause callers judge by (the agency SDK: a refused password is not retried): a
    # refusal of the user by any broker, else the last failure.
    cause = next((exc for _, exc in failures if isinstance(
        exc, aiormq.exceptions.ProbableAuthenticationError)), failures[-1][1])
    raise BusError("connecting: RabbitMQ failed: "
                   + "; ".join(f"{where}: {exc!r}" for where, exc in failures)) from cause


async def first_of(*waits: Awaitable[Any]) -> None:
    """Wait until one of ``waits`` is done (say: stop, or the connection closed); the others
    are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def declare(connection: Any, topology: Topology,
                  agencies: tuple[str, ...]) -> dict[str, str]:
    """Declare the delivery exchange, the dead-letter exchange, and per agency its queue and
    its dead-letter queue.  A queue that already exists with other settings (say a classic
    queue from an older version) is left as it is, with a warning: it is never deleted with
    messages inside.

    Each agency is declared on its own: one whose queue cannot be declared (its name held by
    an exclusive queue of another connection, say) is returned with why, and never keeps the
    others from being declared and published to (DESIGN rule 6).  Raises BusError when the
    exchanges cannot be declared."""
    async with translated_errors("declaring the exchanges"):
        channel = await connection.channel()
        await channel.declare_exchange(
            topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await channel.declare_exchange(
            topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    failed: dict[str, str] = {}
    for agency in agencies:
        try:
            async with translated_errors(f"declaring the queues of {agency!r}"):
                if channel.is_closed:  # the broker closed it on the agency before
                    channel = await connection.channel()
                channel = await _agency_queues(connection, channel, topology, agency)
        except BusError as exc:
            failed[agency] = str(exc)
    if not channel.is_closed:
        async with translated_errors("declaring the topology"):
            await channel.close()
    return failed


async def _agency_queues(connection: Any, channel: Any, topology: Topology,
                         agency: str) -> Any:
    """An agency's dead-letter queue and queue, bound; returns the channel still open."""
    dead_queue = await _queue(connection, channel, topology.dead_letter_queue(agency),
                              {"x-queue-type": "quorum"})
    await dead_queue.bind(topology.dead_letter_exchange, routing_key=agency)
    queue = await _queue(connection, dead_queue.channel, topology.queue_name(agency),
                         topology.queue_arguments(agency))
    await queue.bind(topology.exchange, routing_key=agency)
    return queue.channel


async def _queue(connection: Any, channel: Any, name: str, arguments: dict[str, Any]) -> Any:
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments)
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        # The broker closed that channel: carry on with a new one, keeping the queue as it is.
        event(log, "queue_kept", level=logging.WARNING, queue=name, reason=str(exc),
              note="it exists with other settings; migrate it by hand when it is empty")
        channel = await connection.channel()
        return await channel.declare_queue(name, passive=True)


async def declare_responses(connection: Any, topology: Topology) -> Any:
    """The responses exchange, the gateway's queue bound to every routing key on it, and its
    dead-letter queue; returns the queue, on a channel left open for consuming."""
    async with translated_errors("declaring the responses exchange and queue"):
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            topology.responses_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await _queue(connection, channel, topology.responses_dead_queue,
                     {"x-queue-type": "quorum"})
        queue = await _queue(connection, channel, topology.responses_queue,
                             topology.responses_queue_arguments())
        await queue.bind(exchange, routing_key="#")
        return queue


async def declare_licences(connection: Any, topology: Topology) -> Any:
    """The licences exchange and the gateway's queue on it, like the responses': what is
    refused there goes to ``<queue>.dead``."""
    return await declare_responses(connection, topology.licences())


def topology_of(config: GatewayConfig) -> Topology:
    """The exchanges and queues gateway.yaml's ``amqp:`` names."""
    amqp = config.settings.amqp
    return Topology(amqp.exchange, amqp.queue_prefix, amqp.responses_exchange,
                    amqp.responses_queue, amqp.licences_exchange, amqp.licences_queue)
