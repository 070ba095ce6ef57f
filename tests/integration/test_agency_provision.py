"""``gateway agencies provision`` against the real RabbitMQ (rabbitmqctl): run twice it sets the
same state, and each agency's user then acts only as itself: it consumes its own queue, but
not another agency's; it answers with its own code as routing key and its own user_id, and
the broker refuses anything else (access_refused, precondition_failed).  Users, queues and
exchanges are unique to the test and deleted after it."""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest

from gateway.agency.credentials import endpoint_of
from gateway.app.broker_admin import RabbitmqCtl
from gateway.bus.topology import declare, declare_licences, declare_responses, topology_of
from gateway.cli import main
from gateway.config.load import GatewayConfig, load_config
from tests.support.agencies import agency_settings, amqp_delivery, declaration, unique_users
from tests.support.harness import AMQP_URL, DEMO_AGENCIES, delete_topology, write_files

pytestmark = pytest.mark.skipif(shutil.which("rabbitmqctl") is None,
                                reason="provisioning needs rabbitmqctl (root on the broker)")
CODES = DEMO_AGENCIES


@pytest.fixture
async def config(tmp_path: Path) -> AsyncIterator[GatewayConfig]:
    """A gateway configuration with unique agency users and topology, declared as the gateway
    declares it; the users are deleted after the test."""
    users = unique_users(CODES)
    files = write_files(tmp_path, "unused", agency_settings=agency_settings(users))
    loaded = load_config(files.config_path, environ={})
    connection = await aio_pika.connect(AMQP_URL)
    try:
        assert await declare(connection, topology_of(loaded), CODES) == {}
        await declare_responses(connection, topology_of(loaded))
        await declare_licences(connection, topology_of(loaded))
    finally:
        await connection.close()
    try:
        yield loaded
    finally:
        for user in users.values():
            await RabbitmqCtl().delete_user(user)
        await delete_topology(files, CODES)


async def permissions(user: str) -> tuple[Any, Any]:
    ctl = RabbitmqCtl()
    return (json.loads(await ctl._run("list_user_permissions", "--formatter", "json", user)),
            json.loads(await ctl._run("list_user_topic_permissions", "--formatter", "json",
                                      user)))


async def provision_twice(config: GatewayConfig, capsys: pytest.CaptureFixture[str]) -> str:
    argv = ["--config", str(config.source), "agencies", "provision"]
    assert await asyncio.to_thread(main, argv) == 0
    first = capsys.readouterr().out
    passwords = {a.code: config.password_path(a).read_text()  # type: ignore[union-attr]
                 for a in config.agencies}
    state = {a.code: await permissions(a.user) for a in config.agencies}
    assert await asyncio.to_thread(main, argv) == 0
    again = capsys.readouterr().out
    assert {a.code: config.password_path(a).read_text()  # type: ignore[union-attr]
            for a in config.agencies} == passwords
    assert {a.code: await permissions(a.user) for a in config.agencies} == state
    assert again.count("updated") == len(CODES) and "created" not in again.replace(
        "password created", "")
    return first


async def test_each_agency_acts_only_as_itself(config: GatewayConfig,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    told = await provision_twice(config, capsys)
    customs, quarantine = config.agency("customs"), config.agency("quarantine")
    assert customs is not None and quarantine is not None
    assert f"customs: user {customs.user!r} created; password created in" in told
    path = config.password_path(customs)
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    perms, topic = await permissions(customs.user)
    amqp = config.settings.amqp
    exchanges = (amqp.responses_exchange, amqp.licences_exchange)
    assert perms == [{"vhost": "/", "configure": "^$",
                      "write": "^(?:" + "|".join(e.replace(".", "\\.") for e in exchanges)
                      + ")$",
                      "read": "^" + (amqp.queue_prefix + "customs").replace(".", "\\.") + "$"}]
    assert sorted(topic, key=lambda t: t["exchange"]) == sorted(
        ({"vhost": "/", "exchange": e, "write": "^customs$", "read": "^$"} for e in exchanges),
        key=lambda t: t["exchange"])

    topology = topology_of(config)
    endpoint = endpoint_of(config, "customs")  # its password from its password file
    guest = await aio_pika.connect(AMQP_URL)
    own = await aio_pika.connect(endpoint.url)
    try:
        channel = await guest.channel(publisher_confirms=True)
        deliveries = await channel.get_exchange(topology.exchange)
        await deliveries.publish(amqp_delivery(declaration()), routing_key="customs")
        # Its own queue: yes.
        mine = await (await own.channel()).get_queue(endpoint.queue)
        got = await mine.get(timeout=10)
        assert got.message_id == "swg-1-1-customs"
        await got.ack()
        # Another agency's queue: no (passively opening it is allowed, consuming is not).
        theirs = await (await own.channel()).get_queue(topology.queue_name("quarantine"))
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused,
                           match=f"access to queue '{theirs.name}'"):
            await theirs.consume(ignore)
        # Declaring anything: no.
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="access to queue"):
            await (await own.channel()).declare_queue(f"{endpoint.queue}.mine")
        # Its own answer: yes; as another agency, to a queue directly, or as another user: no.
        await publish(own, endpoint.responses_exchange, "customs", customs.user)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused,
                           match="access to topic 'quarantine' in exchange"):
            await publish(own, endpoint.responses_exchange, "quarantine", customs.user)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused,
                           match=r"access to exchange 'amq\.default'"):
            await publish(own, "", amqp.responses_queue, customs.user)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id"):
            await publish(own, endpoint.responses_exchange, "customs", quarantine.user)
        # Licences (docs/licences.md): in its own name, yes; as another agency, no.
        await publish(own, endpoint.licences_exchange, "customs", customs.user)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused,
                           match="access to topic 'quarantine' in exchange"):
            await publish(own, endpoint.licences_exchange, "quarantine", customs.user)
        taken = await (await guest.channel()).get_queue(amqp.responses_queue)
        answer = await taken.get(no_ack=True, timeout=10)
        assert (answer.user_id, answer.routing_key) == (customs.user, "customs")
        assert await taken.get(no_ack=True, fail=False) is None  # nothing else got through
    finally:
        await own.close()
        await guest.close()


async def ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    raise AssertionError("consumed another agency's queue")


async def publish(connection: Any, exchange_name: str, routing_key: str, user_id: str) -> None:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    exchange = (channel.default_exchange if not exchange_name
                else await channel.get_exchange(exchange_name))
    await exchange.publish(aio_pika.Message(b"{}", user_id=user_id, message_id="m"),
                           routing_key=routing_key, mandatory=True, timeout=10)
    await channel.close()
