"""``gateway serve --workers N``: worker processes decide and relay beside the main one,
sharing the work through the database, follow the main process's routing table, are kept
running, and never outlive their main process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app.routing_follow import FollowedRouting
from gateway.config.load import load_config
from gateway.errors import ConfigError
from gateway.store import interchanges, routing_versions
from gateway.store.database import create_pool
from tests.integration.test_poison import wait_for
from tests.support.edifact import cusdec
from tests.support.harness import Gateway, database_url, gateway_fixture, start_gateway

ROUTING = (Path(__file__).resolve().parents[2] / "routing.yaml").read_text()


@pytest.fixture
async def two_processes(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for gateway in gateway_fixture(tmp_path, workers=2):
        yield gateway


@contextlib.asynccontextmanager
async def pool_of(gateway: Gateway) -> AsyncIterator[Any]:
    pool = await create_pool(database_url(gateway.files.database), size=2)
    try:
        yield pool
    finally:
        await pool.close()


def worker_pids(gateway: Gateway) -> list[int]:
    """This test's worker processes (their command line names its gateway.yaml)."""
    config = str(gateway.files.config_path.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            words = (entry / "cmdline").read_bytes().split(b"\0")
            if b"--worker" in words and config in words and not is_zombie(entry):
                found.append(int(entry.name))
    return found


def is_zombie(entry: Path) -> bool:
    return (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z"


async def test_a_worker_alone_decides_routes_and_answers(gateway: Gateway) -> None:
    """With the main process stopped, a worker process takes a committed submission from
    the store, routes it with the table the main process applied, and writes its answer; it
    leaves when its standard input (the main process's pipe) closes."""
    await gateway.stop()
    async with pool_of(gateway) as pool:
        await interchanges.record_submission(
            pool, "van-a", "sftp", "alone.edi", cusdec(sender="VANA", control_reference="W1"))
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "-c", str(gateway.files.config_path), "serve",
        "--worker", "1", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        (answer,) = await gateway.answers("van-a", "alone.edi")
        assert b"UCI+" in answer
        assert len(await gateway.queue("customs", expect=1)) == 1
        assert len(await gateway.queue("quarantine", expect=1)) == 1
        (row,) = await gateway.fetch("SELECT routing_version FROM messages")
        (applied,) = await gateway.fetch(
            "SELECT max(id) AS id FROM routing_versions WHERE status = 'applied'")
        assert row["routing_version"] == applied["id"]
        assert worker.stdin is not None
        worker.stdin.close()  # what the main process's death looks like from here
        assert await asyncio.wait_for(worker.wait(), 30) == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert worker.stderr is not None
    log = await worker.stderr.read()
    assert b'"process": "worker-1"' in log and b'"worker_stopped"' in log


async def test_workers_are_kept_running_and_stop_with_the_gateway(
        two_processes: Gateway) -> None:
    gateway = two_processes
    (first,) = await wait_for(lambda: asyncio.sleep(0, worker_pids(gateway)), "a worker")
    os.kill(first, signal.SIGKILL)
    # Started again (after a pause of 1 s), and the gateway routed meanwhile all the same.
    for n in range(6):
        await gateway.upload("van-a", f"k{n}.edi", cusdec(
            sender="VANA", control_reference=f"K{n}"))
    for n in range(6):
        (answer,) = await gateway.answers("van-a", f"k{n}.edi")
        assert b"UCI+" in answer
    assert len(await gateway.queue("customs", expect=6)) == 6
    await wait_for(
        lambda: asyncio.sleep(0, [p for p in worker_pids(gateway) if p != first]),
        "the worker started again")
    await gateway.stop()
    assert worker_pids(gateway) == []


async def test_a_worker_follows_the_table_the_main_process_applied(
        gateway: Gateway) -> None:
    config = load_config(gateway.files.config_path, environ={})
    async with pool_of(gateway) as pool:
        follower = FollowedRouting(config, pool)
        started = await follower.start()
        assert await follower.step() is False  # nothing new
        narrower = ROUTING + "\n# edited\n"
        await routing_versions.record(pool, sha256="refused", body="rules: [", source="t",
                                      status="refused", error="not YAML")
        assert await follower.step() is False  # a refused table is in force nowhere
        version = await routing_versions.record(pool, sha256="new", body=narrower,
                                                source="t", status="applied")
        assert await follower.step() is True
        assert follower.current is not None and follower.current.version == version
        assert follower.current.version != started.version
        # A stored table this process cannot read (agencies.yaml changed meanwhile) keeps
        # the previous one in force, with an alarm at each look (watch) until it can.
        await routing_versions.record(pool, sha256="bad", body="rules: [", source="t",
                                      status="applied")
        with pytest.raises(ConfigError):
            await follower.step()
        assert follower.current.version == version


async def test_a_worker_started_before_any_table_says_so(tmp_path: Path) -> None:
    async for gateway in gateway_fixture(tmp_path):
        config = load_config(gateway.files.config_path, environ={})
        async with pool_of(gateway) as pool:
            await gateway.fetch("DELETE FROM routing_versions")
            with pytest.raises(ConfigError, match="no routing table has been applied"):
                await FollowedRouting(config, pool).start()


async def test_more_workers_than_postgresql_has_connections_for_is_refused_at_start(
        gateway: Gateway) -> None:
    """Under load the last processes to connect would fail with too_many_connections over
    and over; the gateway says so at start, with the figures, and starts nothing."""
    await gateway.stop()
    with pytest.raises(ConfigError, match=r"--workers 40 with processor_workers \d+ opens up "
                       r"to \d+ database connections, and PostgreSQL allows \d+"):
        await start_gateway(gateway.files, workers=40)
    assert worker_pids(gateway) == []


async def test_ctrl_c_at_a_terminal_drains_the_main_process_then_its_workers(
        gateway: Gateway, tmp_path: Path) -> None:
    """SIGINT to the terminal's foreground process group reaches the main process alone (its
    workers have a group of their own): it stops them after its drain, and no worker is
    reported as having exited on its own."""
    await gateway.stop()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        main = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "-c", str(gateway.files.config_path), "serve",
            "--workers", "2", stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True)  # its own group, as a shell gives a foreground job
    try:
        await wait_for(lambda: asyncio.sleep(0, b'"worker_ready"' in log.read_bytes()),
                       "the worker ready")
        assert [os.getpgid(pid) for pid in worker_pids(gateway)] != [main.pid]
        os.killpg(main.pid, signal.SIGINT)
        assert await asyncio.wait_for(main.wait(), 30) == 0
    finally:
        if main.returncode is None:
            main.kill()
            await main.wait()
    text = log.read_bytes()
    assert b'"worker_stopped"' in text and b'"worker_exited"' not in text, text[-2000:]
    assert worker_pids(gateway) == []
