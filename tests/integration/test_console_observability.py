"""The console's listener on a running gateway (issue 14, part 5): /health, /ready naming
what is not ready, and /metrics in the Prometheus text format, whose counters move when
traffic flows, whichever process of ``gateway serve --workers N`` did the work."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app.processor import Processor
from gateway.console.metrics import DIRECTORY_VARIABLE
from tests.support.edifact import cusdec
from tests.support.harness import Gateway, gateway_fixture

CONSOLE = {"console": "{host: 127.0.0.1, port: 0}"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for running in gateway_fixture(tmp_path, settings=CONSOLE):
        yield running


def base(gateway: Gateway) -> str:
    assert gateway.running is not None and gateway.running.console_port is not None
    return f"http://127.0.0.1:{gateway.running.console_port}"


async def get(gateway: Gateway, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, \
            session.get(base(gateway) + path) as response:
        return response.status, await response.text()


async def scrape(gateway: Gateway) -> Samples:
    status, text = await get(gateway, "/metrics")
    assert status == 200
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def moved(gateway: Gateway, before: Samples, name: str, by: float,
                seconds: float = 20.0, **labels: str) -> Samples:
    """The scrape once ``name`` moved ``by`` since ``before`` (counting follows commits)."""
    deadline = time.monotonic() + seconds
    while True:
        now = await scrape(gateway)
        if value(now, name, **labels) - value(before, name, **labels) >= by:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} {labels} moved by "
                                 f"{value(now, name, **labels) - value(before, name, **labels)}"
                                 f", not {by}")
        await asyncio.sleep(0.1)


async def test_health_and_ready_on_a_running_gateway(gateway: Gateway) -> None:
    status, text = await get(gateway, "/health")
    assert status == 200
    status, text = await get(gateway, "/ready")
    assert status == 200, text
    body = json.loads(text)
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "broker", "routing"}
    assert all(check["ok"] for check in body["checks"].values())


async def test_not_ready_names_the_broker_when_it_cannot_be_reached(tmp_path: Path) -> None:
    """A gateway whose AMQP URL points at a closed port starts (submissions are still taken,
    deliveries wait) but is not ready, and says it is the broker, without its password."""
    async for gateway in gateway_fixture(
            tmp_path, settings=CONSOLE, amqp_url="amqp://guest:n0t-shown@127.0.0.1:1/"):
        status, text = await get(gateway, "/ready")
        assert status == 503, text
        checks = json.loads(text)["checks"]
        assert checks["broker"]["ok"] is False
        assert "127.0.0.1:1" in checks["broker"]["detail"]
        assert checks["database"]["ok"] is True and checks["routing"]["ok"] is True
        assert "n0t-shown" not in text
        status, _ = await get(gateway, "/health")
        assert status == 200


async def test_counters_move_when_traffic_flows(gateway: Gateway) -> None:
    before = await scrape(gateway)
    await gateway.upload("van-a", "observed.edi", cusdec(sender="VANA", control_reference="O1"))
    (answer,) = await gateway.answers("van-a", "observed.edi")
    assert b"UCI+" in answer
    await gateway.upload("van-a", "broken.edi", b"UNB+UNOC:3+VANA+SWGATEWAY+")
    await gateway.answers("van-a", "broken.edi")
    after = await moved(gateway, before, "gateway_submissions_decided_total", 1,
                        status="rejected")

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def total(name: str, **labels: str) -> float:
        """Summed over the other labels."""
        return sum(v - value(before, n, **dict(sample_labels))
                   for (n, sample_labels), v in after.items()
                   if n == name and labels.items() <= dict(sample_labels).items())

    assert delta("gateway_submissions_received_total", transport="sftp") == 2
    assert delta("gateway_submissions_decided_total", status="accepted") == 1
    assert delta("gateway_submissions_decided_total", status="rejected") == 1
    assert total("gateway_rejections_total", level="interchange") == 1
    assert total("gateway_answer_latency_seconds_count", channel="mailbox") == 2
    assert delta("gateway_answer_latency_seconds_count", channel="mailbox", kind="CONTRL") >= 1
    assert delta("gateway_messages_routed_total", agency="customs") == 1
    assert delta("gateway_messages_routed_total", agency="quarantine") == 1
    assert delta("gateway_dispatched_total", channel="amqp") == 2
    # the backlog gauges are there, read from the store (drained: nothing waits)
    assert ("gateway_outbox_waiting_rows", (("channel", "amqp"), ("destination", "customs"))) \
        in after
    assert value(after, "gateway_processor_waiting_submissions") == 0
    assert value(after, "gateway_store_up") == 1
    assert value(after, "gateway_routing_version") >= 1


async def test_outbox_depth_while_the_relay_cannot_publish(gateway: Gateway) -> None:
    """Rows waiting in the outbox show in the gauges with their age (rows due in an hour,
    queued 30 s ago: the relay leaves them be)."""
    await gateway.fetch(
        "WITH i AS (INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256,"
        "   status) VALUES ('van-a', 'sftp', 'x.edi', '', '', 'accepted') RETURNING id)"
        " INSERT INTO outbox (interchange_id, channel, destination, dispatch_key, body,"
        " next_attempt_at, created_at)"
        " SELECT i.id, 'amqp', 'customs', 'observed-' || n, '', now() + interval '1 hour',"
        " now() - interval '30 seconds' FROM i, generate_series(1, 3) n")
    found = await scrape(gateway)
    labels = {"channel": "amqp", "destination": "customs"}
    assert value(found, "gateway_outbox_waiting_rows", **labels) == 3
    assert value(found, "gateway_outbox_oldest_age_seconds", **labels) >= 29


@pytest.fixture
async def deciding_in_the_worker_only(tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    """``--workers 2`` whose main process (this one) never decides: its processor takes
    nothing, so the worker process decides everything."""
    async def takes_nothing(self: Processor, *_: Any, **__: Any) -> bool:
        return False

    monkeypatch.setattr(Processor, "process_batch", takes_nothing)
    async for running in gateway_fixture(tmp_path, workers=2, settings=CONSOLE):
        yield running


async def test_what_a_worker_process_counts_shows_in_the_main_processs_metrics(
        deciding_in_the_worker_only: Gateway) -> None:
    gateway = deciding_in_the_worker_only
    directory = Path(os.environ[DIRECTORY_VARIABLE])
    before = await scrape(gateway)
    await gateway.upload("van-a", "worker.edi", cusdec(sender="VANA", control_reference="W7"))
    (answer,) = await gateway.answers("van-a", "worker.edi")
    assert b"UCI+" in answer
    after = await moved(gateway, before, "gateway_submissions_decided_total", 1,
                        status="accepted")
    assert value(after, "gateway_messages_routed_total", agency="customs") \
        - value(before, "gateway_messages_routed_total", agency="customs") == 1
    # and it was counted by another process: a counter file besides this process's
    assert other_processes_files(directory)


def other_processes_files(directory: Path) -> list[Path]:
    return [p for p in directory.glob("counter_*.db") if p.stem != f"counter_{os.getpid()}"]
