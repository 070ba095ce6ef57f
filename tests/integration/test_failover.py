"""Issue 16 item 2: the AMQP URL names several brokers and the database URL several hosts
(``target_session_attrs=read-write``); when the one in use goes away the gateway carries on
through another: its publisher, its answer consumer and an agency's SDK consumer move to a live
broker, its connection pool to the host that is now the primary.  Two "nodes" here are two
loopback proxies to the one RabbitMQ or PostgreSQL: cutting the first is a real loss of the
node in use (every connection through it broken, new ones refused) while the second stays
reachable, as a cluster's other node or a promoted standby would (the three-node RabbitMQ
cluster and a real promotion are tests/cluster's)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aio_pika
import pytest

from gateway.agency import answers, consume
from gateway.agency.answers import Answer
from gateway.agency.delivery import Delivery
from gateway.bus import responses
from gateway.bus.topology import topology_of
from gateway.config.load import load_config
from tests.integration.test_answers import Scene
from tests.support.agencies import agency_settings, provisioned_agencies, unique_users
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import (
    AMQP_URL,
    DEMO_AGENCIES,
    create_database,
    database_url,
    delete_topology,
    drop_database,
    start_gateway,
    write_files,
)
from tests.support.proxy import TcpProxy


@pytest.fixture
async def two_nodes(tmp_path: Path, request: pytest.FixtureRequest
                    ) -> AsyncIterator[tuple[Scene, TcpProxy]]:
    """The gateway with two "nodes" of the service ``request.param`` names, the first of
    them (returned) in use."""
    port = {"rabbitmq": 5672, "postgres": 5432}[request.param]
    first = await TcpProxy("127.0.0.1", port).start()
    second = await TcpProxy("127.0.0.1", port).start()
    # A dead port ahead of them: a host of the list that never answers is passed over.
    hosts = f"127.0.0.1:1,127.0.0.1:{first.port},127.0.0.1:{second.port}"
    database = await create_database()
    users = unique_users(DEMO_AGENCIES)
    if port == 5672:
        files = write_files(tmp_path, database, agency_settings=agency_settings(users),
                            amqp_url=AMQP_URL.replace("127.0.0.1:5672", hosts))
    else:
        files = write_files(tmp_path, database, agency_settings=agency_settings(users),
                            database_url_override=database_url(database).replace(
                                "127.0.0.1:5432", hosts) + "?target_session_attrs=read-write")
    config = load_config(files.config_path, environ={})
    try:
        async with provisioned_agencies(config, {"customs": users["customs"]}) as agencies:
            scene = Scene(await start_gateway(files), agencies, tmp_path)
            try:
                yield scene, first
            finally:
                await scene.gateway.stop()
                await delete_topology(files, DEMO_AGENCIES)
    finally:
        await first.close()
        await second.close()
        await drop_database(database)


def _declaration(number: int) -> bytes:
    return interchange([cusdec_message(declaration=f"DEC-{number}", commodity_codes=("8438",))],
                       sender="VANA", control_reference=f"FAIL{number}")


@pytest.mark.parametrize("two_nodes", ["rabbitmq", "postgres"], indirect=True)
async def test_the_gateway_and_an_agency_move_to_a_live_node(
        two_nodes: tuple[Scene, TcpProxy]) -> None:
    scene, first = two_nodes
    endpoint = scene.agencies.endpoint("customs")

    async def decide(delivery: Delivery) -> Sequence[Answer]:
        return [answers.released(delivery, f"CUS-{delivery.document_reference}")]

    stop = asyncio.Event()
    customs = asyncio.create_task(consume(endpoint, decide, stop,
                                          journal=scene.tmp / "customs.journal.sqlite"))
    try:
        await scene.gateway.upload("van-a", "d1.edi", _declaration(1))
        await scene.gateway.answers("van-a", "d1.edi")
        await _cusres(scene, "DEC-1")
        await first.cut()  # the node every connection is on is gone, for good
        for number in (2, 3):
            await scene.gateway.upload("van-a", f"d{number}.edi", _declaration(number))
            await scene.gateway.answers("van-a", f"d{number}.edi")
        await _cusres(scene, "DEC-2")
        await _cusres(scene, "DEC-3")
    finally:
        stop.set()
        await asyncio.wait_for(customs, 30)
    states = await scene.gateway.fetch(
        "SELECT document_ref, clearance FROM messages ORDER BY document_ref")
    assert [(s["document_ref"], s["clearance"]) for s in states] == [
        ("DEC-1", "released"), ("DEC-2", "released"), ("DEC-3", "released")]
    undelivered = await scene.gateway.fetch("SELECT id FROM outbox WHERE dispatched_at IS NULL")
    assert undelivered == []


async def _cusres(scene: Scene, declaration: str) -> Path:
    for _ in range(600):
        found = sorted(scene.outbox.glob(f"{declaration}.*.customs.1.cusres.edi"))
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no CUSRES for {declaration} in the outbox")


async def test_the_answers_consumer_stops_during_its_reconnect_pause(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its broker lost for good, the answers consumer waits between attempts; ``stop`` ends
    that wait (an hour here: without it the consumer would outlive the drain)."""
    monkeypatch.setattr(responses, "RECONNECT_PAUSE_SECONDS", 3600.0)
    files = write_files(tmp_path, "unused")  # unique names; no gateway runs
    topology = topology_of(load_config(files.config_path, environ={}))
    node = await TcpProxy("127.0.0.1", 5672).start()
    stop = asyncio.Event()

    async def take(answer: responses.IncomingAnswer) -> responses.Verdict:
        raise AssertionError("no answer is sent here")

    url = AMQP_URL.replace("127.0.0.1:5672", f"127.0.0.1:1,127.0.0.1:{node.port}")
    consumer = asyncio.create_task(responses.consume_answers(url, topology, take, stop))
    try:
        await _consumed(topology.responses_queue, consumer)
        await node.cut()
        await _logged(caplog, "answers_reconnecting", consumer)
        stop.set()
        await asyncio.wait_for(consumer, 30)
    finally:
        consumer.cancel()
        await node.close()
        await delete_topology(files, ())


async def _logged(caplog: pytest.LogCaptureFixture, name: str,
                  running: asyncio.Task[None]) -> None:
    for _ in range(600):
        assert not running.done(), running
        if any(record.msg == name for record in caplog.records):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was never logged")


async def _consumed(queue: str, running: asyncio.Task[None]) -> None:
    """Wait until ``queue`` has a consumer."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for _ in range(600):
            assert not running.done(), running
            with contextlib.suppress(aio_pika.exceptions.ChannelNotFoundEntity):
                declared = await channel.declare_queue(queue, passive=True)
                if declared.declaration_result.consumer_count == 1:
                    return
            if channel.is_closed:
                channel = await connection.channel()
            await asyncio.sleep(0.05)
        raise AssertionError(f"{queue} never had a consumer")
    finally:
        await connection.close()
