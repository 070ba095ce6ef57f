"""The agency SDK against the real RabbitMQ: it consumes a queue declared the way the gateway
declares it, answers to the contract (user_id, message ids, correlation id), acknowledges only
after every answer is confirmed, and decides each delivery once: a consumer killed between its
publishes and its acknowledgement gets the delivery again and republishes the same answers
from its journal without calling the handler.  Names are unique per test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from gateway.agency import Answer, Delivery, Endpoint, answers, consume
from gateway.bus.topology import Topology, declare, topology_of
from gateway.config.load import GatewayConfig, load_config
from gateway.errors import ConfigError
from tests.support.agencies import (
    amqp_delivery,
    declaration,
    provisioned_agencies,
    unique_users,
)
from tests.support.harness import AMQP_URL, write_files

WAIT = 20.0
CODES = ("customs", "quarantine")


@dataclass
class Bus:
    """A topology of the test's own: the delivery exchange and the agencies' queues as the
    gateway declares them, and the responses exchange with test queues on it."""

    config: GatewayConfig
    topology: Topology
    connection: Any
    channel: Any = None
    answer_queues: list[str] = field(default_factory=list)

    async def deliver(self, message: aio_pika.Message, agency: str = "customs") -> None:
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(self.topology.exchange)
        await exchange.publish(message, routing_key=agency, mandatory=True)
        await channel.close()

    async def answer_queue(self, arguments: dict[str, Any] | None = None,
                           bind: bool = True) -> str:
        name = f"{self.topology.responses_queue}.{uuid.uuid4().hex[:6]}"
        queue = await self.channel.declare_queue(name, arguments=arguments)
        if bind:
            await queue.bind(self.topology.responses_exchange, routing_key="#")
        self.answer_queues.append(name)
        return name

    async def count(self, queue: str) -> int:
        declared = await self.channel.declare_queue(queue, passive=True)
        count: int = declared.declaration_result.message_count
        return count

    async def until(self, queue: str, count: int) -> None:
        """Wait (a bounded time) until ``queue`` holds ``count`` messages ready."""
        deadline = time.monotonic() + WAIT
        while await self.count(queue) != count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{queue}: {await self.count(queue)} messages, "
                                     f"not {count}, after {WAIT}s")
            await asyncio.sleep(0.05)

    async def take(self, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Every message ready in ``queue`` (taken off it)."""
        taken = []
        got = await self.channel.get_queue(queue)
        while (message := await got.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
        return taken

    def endpoint(self, code: str = "customs", url: str = AMQP_URL,
                 user: str = "guest") -> Endpoint:
        return Endpoint(url, code, user, self.topology.queue_name(code),
                        self.topology.responses_exchange)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    files = write_files(tmp_path, "unused")  # unique names; no gateway runs
    config = load_config(files.config_path, environ={})
    topology = topology_of(config)
    connection = await aio_pika.connect(AMQP_URL)
    try:
        assert await declare(connection, topology, CODES) == {}
        channel = await connection.channel()
        await channel.declare_exchange(topology.responses_exchange,
                                       aio_pika.ExchangeType.TOPIC, durable=True)
        made = Bus(config, topology, connection, channel)
        yield made
    finally:
        channel = await connection.channel()
        for name in made.answer_queues:
            await channel.queue_delete(name)
        for code in CODES:
            await channel.queue_delete(topology.queue_name(code))
            await channel.queue_delete(topology.dead_letter_queue(code))
        for exchange in (topology.exchange, topology.dead_letter_exchange,
                         topology.responses_exchange):
            await channel.exchange_delete(exchange)
        await connection.close()


@dataclass
class Deciding:
    """A handler that counts its calls and answers accepted then released."""

    calls: list[Delivery] = field(default_factory=list)
    fail_first: int = 0
    called: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, delivery: Delivery) -> Sequence[Answer]:
        self.calls.append(delivery)
        self.called.set()
        if len(self.calls) <= self.fail_first:
            raise RuntimeError("the agency's own database is down")
        return [answers.accepted(delivery, "CUS-1"), answers.released(delivery, "CUS-1")]


@contextlib.asynccontextmanager
async def consuming(endpoint: Endpoint, handler: Callable[[Delivery], Awaitable[Any]],
                    journal: Path, **options: Any) -> AsyncIterator[asyncio.Task[None]]:
    """The SDK consuming in a task; stopped (and awaited) after the block unless the test
    killed it."""
    stop = asyncio.Event()
    task = asyncio.create_task(consume(endpoint, handler, stop, journal=journal,
                                       handler_retry_pause=0.0, publish_retry_pause=0.05,
                                       **options))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)


async def test_answers_follow_the_contract_as_the_agencys_own_user(
        bus: Bus, tmp_path: Path) -> None:
    """A provisioned agency user consumes its queue and answers; every answer carries its
    user, its n-th message id and the delivery's id; the delivery is acknowledged."""
    answered = await bus.answer_queue()
    users = unique_users(["customs"])
    async with provisioned_agencies(bus.config, users) as agencies:
        fish = declaration(number="DEC-42")
        await bus.deliver(amqp_delivery(fish, submission=42))
        handler = Deciding()
        async with consuming(agencies.endpoint("customs"), handler, tmp_path / "j.sqlite"):
            await bus.until(answered, 2)
            await bus.until(bus.topology.queue_name("customs"), 0)
    got = await bus.take(answered)
    assert [(m.message_id, m.correlation_id, m.type, m.user_id, m.routing_key)
            for m in got] == [
        ("swg-42-1-customs:1", "swg-42-1-customs", "CustomsResponse", users["customs"],
         "customs"),
        ("swg-42-1-customs:2", "swg-42-1-customs", "CustomsResponse", users["customs"],
         "customs")]
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in got)
    assert all(m.content_type == "application/json" for m in got)
    bodies = [json.loads(m.body) for m in got]
    assert [b["decision"] for b in bodies] == ["accepted", "released"]
    assert {b["agency"] for b in bodies} == {"customs"}
    assert {json.dumps(b["answers"], sort_keys=True) for b in bodies} == {json.dumps({
        "document_reference": "DEC-42", "interchange_reference": "IC1",
        "message_reference": "1", "correlation_id": "swg-42-1-customs"}, sort_keys=True)}
    assert bodies[0]["source"] == json.loads(fish.model_dump_json())["source"]
    (seen,) = handler.calls
    assert not seen.aeo and seen.role == "deliver" and seen.message == fish


async def test_killed_before_its_ack_it_republishes_from_the_journal_and_decides_once(
        bus: Bus, tmp_path: Path) -> None:
    """The first answer is confirmed, the second refused (a full queue nacks it): the delivery
    stays unacknowledged and the consumer is killed.  The redelivery publishes both answers,
    under the same message ids and with the same bodies, and the handler is not called."""
    small = await bus.answer_queue({"x-max-length": 1, "x-overflow": "reject-publish"})
    journal = tmp_path / "journal.sqlite"
    handler = Deciding()
    await bus.deliver(amqp_delivery(declaration()))
    async with consuming(bus.endpoint(), handler, journal) as task:
        await bus.until(small, 1)
        assert len(handler.calls) == 1
        task.cancel()  # killed while its second answer waits for a confirm
    queue = bus.topology.queue_name("customs")
    await bus.until(queue, 1)  # not acknowledged: back on the queue
    await (await bus.channel.get_queue(small)).unbind(bus.topology.responses_exchange, "#")
    big = await bus.answer_queue()
    async with consuming(bus.endpoint(), handler, journal):
        await bus.until(big, 2)
        await bus.until(queue, 0)
    assert len(handler.calls) == 1  # never decided twice
    first, again = await bus.take(small), await bus.take(big)
    assert [m.message_id for m in first] == ["swg-1-1-customs:1"]
    assert [m.message_id for m in again] == ["swg-1-1-customs:1", "swg-1-1-customs:2"]
    assert first[0].body == again[0].body


async def test_an_answer_no_queue_takes_waits_and_the_delivery_stays_unacknowledged(
        bus: Bus, tmp_path: Path) -> None:
    """Returned (no queue bound: the gateway not started yet) is not confirmed: the answer is
    published again until a queue takes it, and only then is the delivery acknowledged."""
    unbound = await bus.answer_queue(bind=False)
    await bus.deliver(amqp_delivery(declaration()))
    handler = Deciding()
    queue = bus.topology.queue_name("customs")
    async with consuming(bus.endpoint(), handler, tmp_path / "j.sqlite"):
        await asyncio.wait_for(handler.called.wait(), WAIT)
        assert await bus.count(queue) == 0  # in hand, unacknowledged
        await (await bus.channel.get_queue(unbound)).bind(bus.topology.responses_exchange,
                                                          "#")
        await bus.until(unbound, 2)
        await bus.until(queue, 0)
    assert len(handler.calls) == 1
    assert [m.message_id for m in await bus.take(unbound)] == [
        "swg-1-1-customs:1", "swg-1-1-customs:2"]


async def test_a_handler_that_fails_gets_its_delivery_again(bus: Bus, tmp_path: Path) -> None:
    answered = await bus.answer_queue()
    await bus.deliver(amqp_delivery(declaration()))
    handler = Deciding(fail_first=1)
    async with consuming(bus.endpoint(), handler, tmp_path / "j.sqlite"):
        await bus.until(answered, 2)
        await bus.until(bus.topology.queue_name("customs"), 0)
    assert [d.redelivered for d in handler.calls] == [False, True]
    assert [m.message_id for m in await bus.take(answered)] == [
        "swg-1-1-customs:1", "swg-1-1-customs:2"]


async def test_a_malformed_delivery_is_dead_lettered_undecided(bus: Bus, tmp_path: Path) -> None:
    answered = await bus.answer_queue()
    await bus.deliver(amqp_delivery(declaration(), body=b'{"kind": "CustomsDeclaration"}'))
    await bus.deliver(amqp_delivery(declaration(), submission=2))
    handler = Deciding()
    async with consuming(bus.endpoint(), handler, tmp_path / "j.sqlite"):
        await bus.until(bus.topology.dead_letter_queue("customs"), 1)
        await bus.until(answered, 2)
    (dead,) = await bus.take(bus.topology.dead_letter_queue("customs"))
    assert dead.message_id == "swg-1-1-customs"
    assert [d.message_id for d in handler.calls] == ["swg-2-1-customs"]


async def test_a_copy_is_seen_but_never_answered(bus: Bus, tmp_path: Path) -> None:
    answered = await bus.answer_queue()
    copies: list[Delivery] = []

    async def observe(delivery: Delivery) -> None:
        copies.append(delivery)

    await bus.deliver(amqp_delivery(declaration(), role="copy", aeo=None))
    await bus.deliver(amqp_delivery(declaration(), submission=2, aeo=True))
    handler = Deciding()
    async with consuming(bus.endpoint(), handler, tmp_path / "j.sqlite", on_copy=observe):
        await bus.until(answered, 2)
        await bus.until(bus.topology.queue_name("customs"), 0)
    assert [(c.message_id, c.aeo) for c in copies] == [("swg-1-1-customs", False)]
    assert [(d.message_id, d.aeo) for d in handler.calls] == [("swg-2-1-customs", True)]
    assert {m.correlation_id for m in await bus.take(answered)} == {"swg-2-1-customs"}



@pytest.mark.parametrize("hosts", ["127.0.0.1:5672", "127.0.0.1:1,127.0.0.1:5672"])
async def test_a_password_the_broker_refuses_is_a_config_error(
        bus: Bus, tmp_path: Path, hosts: str) -> None:
    """Retrying will not mend it: the SDK says to provision, on a broker list as on one."""
    url = AMQP_URL.replace("guest:guest@", "guest:not-the-password@").replace(
        "127.0.0.1:5672", hosts)
    with pytest.raises(ConfigError, match="refused user 'guest'"):
        await asyncio.wait_for(consume(bus.endpoint(url=url), Deciding(), asyncio.Event(),
                                       journal=tmp_path / "j.sqlite"), WAIT)
