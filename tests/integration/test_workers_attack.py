"""Attacks on ``gateway serve --workers N`` and the relays' claim (issue 13)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from gateway.config.load import load_config
from gateway.store import interchanges, outbox
from tests.integration.test_relay_outbox import claim_plan, rows_read
from tests.integration.test_worker_processes import pool_of
from tests.support.edifact import cusdec
from tests.support.harness import Gateway, add_delivery, add_submission


async def test_a_destination_in_backoff_costs_a_claim_nothing_per_waiting_row(
        pool: Any) -> None:
    """An agency whose queue is missing waits with backoff for as long as it takes (Scope
    DESTINATION), and its rows pile up ahead of everyone else's: the claim must not read that
    pile on every poll of every relay of every process."""
    async with pool.acquire() as connection:
        submission = await add_submission(connection)
        await connection.execute(
            "INSERT INTO outbox (interchange_id, channel, destination, dispatch_key, body,"
            " next_attempt_at) SELECT $1, 'amqp', 'customs', 'held' || n, '',"
            " CASE WHEN n = 1 THEN now() + interval '1 hour' ELSE now() END"
            " FROM generate_series(1, 20000) n", submission)
        await connection.execute(
            "INSERT INTO outbox (interchange_id, channel, destination, dispatch_key, body)"
            " SELECT $1, 'amqp', 'port', 'port' || n, '' FROM generate_series(1, 50) n",
            submission)
        await connection.execute("ANALYZE outbox")
        plan = await claim_plan(connection, 50)
    assert rows_read(plan) < 5000


async def test_parked_rows_cost_a_claim_nothing(pool: Any) -> None:
    """Parked rows wait for ops, maybe for days, and hold back no one: nor should they slow
    every claim down (parked rows wait at next_attempt_at 'infinity', in the range of rows in
    backoff)."""
    async with pool.acquire() as connection:
        submission = await add_submission(connection)
        await connection.execute(
            "INSERT INTO outbox (interchange_id, channel, destination, dispatch_key, body,"
            " parked_at, next_attempt_at) SELECT $1, 'amqp', 'customs', 'parked' || n, '',"
            " now(), 'infinity' FROM generate_series(1, 20000) n", submission)
        await connection.execute(
            "INSERT INTO outbox (interchange_id, channel, destination, dispatch_key, body)"
            " SELECT $1, 'amqp', (ARRAY['customs', 'port'])[1 + n % 2], 'new' || n, ''"
            " FROM generate_series(1, 50) n", submission)
        await connection.execute("ANALYZE outbox")
        plan = await claim_plan(connection, 50)
    assert rows_read(plan) < 5000


async def test_a_claim_beside_another_process_keeps_each_destination_in_order(
        pool: Any) -> None:
    """Another process holds the first rows of one destination: a claim takes none of that
    destination's later rows, the rows of a destination whose earlier row is in backoff wait
    from that row on (the rows before it go), and parked rows hold back no one."""
    async with pool.acquire() as connection:
        submission = await add_submission(connection)
        spec = [("customs", "c1"), ("customs", "c2"), ("port", "p1"), ("customs", "c3"),
                ("quarantine", "q1"), ("quarantine", "q2"), ("port", "p2"), ("quarantine", "q3"),
                ("vet", "v1"), ("vet", "v2")]
        for destination, key in spec:
            await add_delivery(connection, submission, destination, key)
        await connection.execute("UPDATE outbox SET next_attempt_at = now() + interval '1 hour'"
                                 " WHERE dispatch_key = 'q2'")
        await connection.execute("UPDATE outbox SET parked_at = now(),"
                                 " next_attempt_at = 'infinity' WHERE dispatch_key = 'v1'")
    async with pool.acquire() as other, pool.acquire() as this, other.transaction():
        held = await outbox.claim_pending(other, "amqp", 2)
        assert [r.dispatch_key for r in held] == ["c1", "c2"]
        async with this.transaction():
            taken = await outbox.claim_pending(this, "amqp", 50)
    assert [r.dispatch_key for r in taken] == ["p1", "q1", "p2", "v2"]


async def test_a_worker_starts_while_routing_yaml_is_refused(gateway: Gateway) -> None:
    """The main process refuses a broken routing.yaml and routes on with the table it applied;
    a worker started then (after a crash, an OOM kill) must do the same, not fail to start
    (and be started again every 30 s, its share of the work lost) until ops fix the file."""
    await gateway.stop()
    config = load_config(gateway.files.config_path, environ={})
    config.routing_path.write_text("rules: [\n")  # half-written
    async with pool_of(gateway) as pool:
        await interchanges.record_submission(
            pool, "van-a", "sftp", "broken.edi", cusdec(sender="VANA", control_reference="R1"))
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "-c", str(gateway.files.config_path), "serve",
        "--worker", "1", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    started = asyncio.create_task(gateway.answers("van-a", "broken.edi"))
    try:
        done, _ = await asyncio.wait({started, asyncio.create_task(worker.wait())},
                                     return_when=asyncio.FIRST_COMPLETED)
        assert started in done, f"the worker exited ({worker.returncode})"
    finally:
        started.cancel()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
