"""The console's pure parts and its listener without a database: counting across processes
(console.metrics), the gauges and their exposition (console.scrape), readiness (console.health),
the listener's pages and a port already taken (console.app), and the ``console:`` settings."""

from __future__ import annotations

import multiprocessing
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from gateway.config.settings import ConsoleSettings
from gateway.console import metrics
from gateway.console.app import Console, start_console
from gateway.console.health import Readiness
from gateway.console.scrape import gauges, render
from gateway.errors import ConfigError, StoreUnavailable
from gateway.store.gauges import Backlog, Waiting

DB_URL = "postgresql://gw:s3cr3t-pw@db.example:5432/gateway"
AMQP_URL = "amqp://bus:hunter2-pw@mq.example:5672/"


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[Path]:
    metrics.enable(tmp_path)
    try:
        yield tmp_path
    finally:
        metrics.disable()


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _count_in_another_process(directory: str) -> None:
    metrics.enable(Path(directory))
    metrics.record_received("as2")
    tally = metrics.Tally(status="accepted")
    tally.message("routed", ("customs",))
    tally.commit()
    metrics.disable()


def test_counts_of_every_process_add_up(counting: Path) -> None:
    """What another process counted into the directory is in the exposition beside ours."""
    metrics.record_received("sftp")
    metrics.record_received("sftp")
    tally = metrics.Tally(status="accepted")
    tally.message("routed", ("customs", "port"))
    tally.commit()
    other = multiprocessing.get_context("spawn").Process(
        target=_count_in_another_process, args=(str(counting),))
    other.start()
    other.join(30)
    assert other.exitcode == 0
    found = samples(render(counting, []))
    assert found[("gateway_submissions_received_total", (("transport", "sftp"),))] == 2
    assert found[("gateway_submissions_received_total", (("transport", "as2"),))] == 1
    assert found[("gateway_submissions_decided_total", (("status", "accepted"),))] == 2
    assert found[("gateway_messages_routed_total", (("agency", "customs"),))] == 2
    assert found[("gateway_messages_routed_total", (("agency", "port"),))] == 1


def test_a_tally_not_committed_counts_nothing(counting: Path) -> None:
    """A batch rolled back and decided again one by one is counted once, when it commits."""
    tally = metrics.Tally(status="rejected")
    tally.rejected("interchange", 23)
    tally.message("rejected", ())
    found = samples(render(counting, []))
    assert not any(name.startswith("gateway_rejections") for name, _ in found)
    tally.commit()
    found = samples(render(counting, []))
    assert found[("gateway_rejections_total", (("code", "23"), ("level", "interchange")))] == 1
    assert found[("gateway_messages_total", (("status", "rejected"),))] == 1


def test_counting_is_off_until_enabled(tmp_path: Path) -> None:
    assert not metrics.enabled()
    metrics.record_received("sftp")  # a no-op, not an error
    metrics.record_answer_latency("mailbox", "CONTRL", 0.2)
    assert list(tmp_path.iterdir()) == []


def test_answer_latency_histogram(counting: Path) -> None:
    metrics.record_answer_latency("mailbox", "CONTRL", 0.3)
    metrics.record_answer_latency("mailbox", "CONTRL", 42.0)
    found = samples(render(counting, []))
    labels = (("channel", "mailbox"), ("kind", "CONTRL"))
    assert found[("gateway_answer_latency_seconds_count", labels)] == 2
    assert found[("gateway_answer_latency_seconds_bucket",
                  tuple(sorted((*labels, ("le", "0.5")))))] == 1
    assert found[("gateway_answer_latency_seconds_sum", labels)] == pytest.approx(42.3)


def test_gauges_from_the_backlog() -> None:
    backlog = Backlog(outbox=(Waiting("amqp", "customs", 12, 3.5),
                              Waiting("mailbox", "van-a", 1, 0.25)),
                      undecided=4, undecided_oldest_age_seconds=9.0,
                      parked_submissions=1, parked_outbox_rows=2, held_messages=3,
                      unroutable_messages=5)
    found = samples(render(None, gauges(backlog, 7, ("customs", "port"))))
    assert found[("gateway_outbox_waiting_rows",
                  (("channel", "amqp"), ("destination", "customs")))] == 12
    assert found[("gateway_outbox_oldest_age_seconds",
                  (("channel", "mailbox"), ("destination", "van-a")))] == 0.25
    # an agency with nothing waiting still has its series, at 0
    assert found[("gateway_outbox_waiting_rows",
                  (("channel", "amqp"), ("destination", "port")))] == 0
    assert found[("gateway_processor_waiting_submissions", ())] == 4
    assert found[("gateway_processor_lag_seconds", ())] == 9
    assert found[("gateway_parked_submissions", ())] == 1
    assert found[("gateway_outbox_parked_rows", ())] == 2
    assert found[("gateway_messages_waiting_for_ops", (("status", "held"),))] == 3
    assert found[("gateway_messages_waiting_for_ops", (("status", "unroutable"),))] == 5
    assert found[("gateway_routing_version", ())] == 7
    assert found[("gateway_store_up", ())] == 1


def test_no_backlog_gauges_when_the_store_did_not_answer() -> None:
    found = samples(render(None, gauges(None, None, ("customs",))))
    assert found == {("gateway_store_up", ()): 0, ("gateway_routing_version", ()): 0}


class _Pool:
    """A pool whose connections answer SELECT 1, or fail as PostgreSQL gone would."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def acquire(self) -> _Pool:
        return self

    async def __aenter__(self) -> _Pool:
        if self.error is not None:
            raise self.error
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def fetchval(self, sql: str, **_: Any) -> int:
        return 1

    async def fetch(self, sql: str, **_: Any) -> list[Any]:
        raise StoreUnavailable("the backlog query failed")

    async def connect(self, url: str, seconds: float) -> _Pool:
        """Readiness.connect: /ready's own connection, this fake's answers."""
        if self.error is not None:
            raise self.error
        return self

    def is_closed(self) -> bool:
        return False

    def terminate(self) -> None:
        return None


def readiness(*, pool: _Pool | None = None, broker: str | None = None,
              version: int | None = 3) -> Readiness:
    async def unreachable() -> str | None:
        return broker

    database = pool or _Pool()
    return Readiness(database, DB_URL, AMQP_URL, unreachable, lambda: version,
                     database.connect)


async def test_ready_when_every_check_passes() -> None:
    checks = await readiness().checks()
    assert [(c.name, c.ok) for c in checks] == [("database", True), ("broker", True),
                                                ("routing", True)]


async def test_each_failed_check_says_what_failed_without_a_password() -> None:
    checks = await readiness(
        pool=_Pool(StoreUnavailable(f"cannot reach {DB_URL}")),
        broker=f"connecting to RabbitMQ: refused by {AMQP_URL}", version=None).checks()
    assert [(c.name, c.ok) for c in checks] == [("database", False), ("broker", False),
                                                ("routing", False)]
    text = " ".join(c.detail for c in checks)
    assert "s3cr3t-pw" not in text and "hunter2-pw" not in text
    assert "db.example:5432" in text and "mq.example:5672" in text and "refused" in text
    assert "no routing table" in text


@pytest.fixture
async def listener(tmp_path: Path) -> AsyncIterator[tuple[str, Readiness]]:
    ready = readiness(broker="connection refused")
    running = await start_console(Console(ready, None, lambda: ("customs",)),
                                  host="127.0.0.1", port=0, source=tmp_path / "gateway.yaml")
    try:
        yield f"http://127.0.0.1:{running.port}", ready
    finally:
        await running.close()


async def test_the_listener_pages(listener: tuple[str, Readiness]) -> None:
    base, _ = listener
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/health") as response:
            assert response.status == 200
        async with session.get(f"{base}/ready") as response:
            assert response.status == 503
            body = await response.json()
            assert body["ready"] is False
            assert body["checks"]["broker"]["ok"] is False
            assert "connection refused" in body["checks"]["broker"]["detail"]
            assert body["checks"]["database"]["ok"] is True
        async with session.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            found = samples(await response.read())
            # the fake pool has no backlog to give: the store is said to be down
            assert found[("gateway_store_up", ())] == 0


async def test_a_port_already_taken_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"console: cannot listen on 127\.0\.0\.1:{port}"
                           ".*already in use"):
            await start_console(Console(readiness(), None, tuple), host="127.0.0.1",
                                port=port, source=tmp_path / "gateway.yaml")


def test_console_settings_are_strict() -> None:
    assert ConsoleSettings().port == 8081 and ConsoleSettings().host == "127.0.0.1"
    with pytest.raises(ValidationError):
        ConsoleSettings.model_validate({"port": 8081, "password": "x"})
    with pytest.raises(ValidationError):
        ConsoleSettings.model_validate({"port": 70000})
