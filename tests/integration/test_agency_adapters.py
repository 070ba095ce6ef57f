"""``gateway agency run``: the example adapters as the demo runs them, against the real
RabbitMQ: each agency's own user (its password from its password file), its rules file beside
agencies.yaml, answering the shipped demo sample (frozen fish from Norway with a certificate
of origin); an agency without a deciding adapter prints what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from gateway.agency import customs, quarantine
from gateway.app.agency import run_agency
from gateway.bus.topology import declare, declare_responses, topology_of
from gateway.config.load import GatewayConfig, load_config
from gateway.pipeline.process import process_submission
from tests.support.agencies import (
    AgencyUsers,
    agency_settings,
    amqp_delivery,
    provisioned_agencies,
    unique_users,
)
from tests.support.harness import (
    AMQP_URL,
    DEMO_AGENCIES,
    delete_topology,
    take_messages,
    write_files,
)
from tests.support.pipeline import demo_context

pytestmark = pytest.mark.skipif(shutil.which("rabbitmqctl") is None,
                                reason="agency users are made with rabbitmqctl")
DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"
CODES = DEMO_AGENCIES
WAIT = 20.0


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[GatewayConfig, AgencyUsers]]:
    users = unique_users(CODES)
    files = write_files(tmp_path, "unused", agency_settings=agency_settings(users))
    for code in ("customs", "quarantine"):
        shutil.copy(DEMO / f"{code}-rules.yaml", tmp_path / f"{code}-rules.yaml")
    config = load_config(files.config_path, environ={})
    connection = await aio_pika.connect(AMQP_URL)
    try:
        assert await declare(connection, topology_of(config), CODES) == {}
        await declare_responses(connection, topology_of(config))
    finally:
        await connection.close()
    try:
        async with provisioned_agencies(config) as agencies:
            yield config, agencies
    finally:
        await delete_topology(files, CODES)


async def answers_in(config: GatewayConfig, count: int
                     ) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """The first ``count`` answers on the gateway's responses queue."""
    got = await take_messages(config.settings.amqp.responses_queue, count, WAIT)
    assert len(got) == count, f"{len(got)} of {count} answers after {WAIT}s"
    return got


@contextlib.asynccontextmanager
async def running(config: GatewayConfig, code: str, journal: Path) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_agency(config, code, journal=journal, stop=stop))
    try:
        yield
    finally:
        stop.set()
        assert await asyncio.wait_for(task, WAIT) == 0


async def test_customs_and_quarantine_decide_the_frozen_fish(
        demo: tuple[GatewayConfig, AgencyUsers], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config, agencies = demo
    sample = (DEMO / "samples" / "cusdec-frozen-fish.edi").read_bytes()
    fish = process_submission(sample, demo_context()).messages[0].canonical
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(config.settings.amqp.exchange)
        for code in ("customs", "quarantine"):
            await exchange.publish(amqp_delivery(fish, agency=code, submission=7),
                                   routing_key=code)
        await exchange.publish(amqp_delivery(fish, agency="port", submission=7, role="copy"),
                               routing_key="port")
    finally:
        await connection.close()
    async with running(config, "customs", tmp_path / "c.sqlite"), \
            running(config, "quarantine", tmp_path / "q.sqlite"), \
            running(config, "port", tmp_path / "p.sqlite"):
        got = await answers_in(config, 4)
    by_agency: dict[str, list[dict[str, object]]] = {}
    for message in got:
        by_agency.setdefault(message.routing_key or "", []).append(json.loads(message.body))
        assert message.user_id == agencies.users[message.routing_key or ""]
    assert by_agency["customs"][0]["decision"] == "accepted"
    assert by_agency["quarantine"][0]["decision"] == "licence_passed"
    for code, sampled_reason in (("customs", customs.SAMPLED_REASON),
                                 ("quarantine", quarantine.SAMPLED_REASON)):
        outcome = by_agency[code][1]
        assert (outcome["decision"], outcome["reasons"]) in (
            ("released", []), ("inspection", [{"code": None, "text": sampled_reason}]))
        assert {a["agency_reference"] for a in by_agency[code]} == {
            by_agency[code][0]["agency_reference"]}
        assert str(by_agency[code][0]["agency_reference"]).startswith(
            "CUS-" if code == "customs" else "QUA-")
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(p["message_id"], p["role"]) for p in printed} == {
        ("swg-7-1-customs", "deliver"), ("swg-7-1-quarantine", "deliver"),
        ("swg-7-1-port", "copy")}
    assert [p["decisions"][0]["decision"] for p in printed
            if p["message_id"] == "swg-7-1-customs"] == ["accepted"]
