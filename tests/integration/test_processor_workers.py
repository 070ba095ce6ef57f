"""Processor workers never stop each other: no worker holds one pooled connection while it
waits for another, and no claimed submission is dropped because another worker looked at it
(found by an adversarial review of issue 9)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.app import traders
from gateway.store import interchanges
from tests.integration.test_poison import wait_for
from tests.support.edifact import cusdec
from tests.support.harness import (
    DEMO_AGENCIES,
    create_database,
    database_url,
    delete_topology,
    drop_database,
    start_gateway,
    write_files,
)


async def test_as_many_workers_as_pooled_connections_do_not_stop_the_gateway(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Processor.process_one used to hold a pooled connection for the decision's transaction
    and, inside it, TraderRegistry.current() took a second one (store.traders.aeo_partners) when
    its snapshot is older than REFRESH_SECONDS.  create_pool() makes 10 connections whatever
    processor_workers says (2..64 allowed): with 12 workers woken by a burst, ten hold one
    connection each and wait for an eleventh for ever.  Nothing is decided again, every SFTP
    close hangs (the intake needs a connection too), no alarm is logged, and the gateway does
    not stop on SIGTERM.  Seen with the registry's 10 s refresh (a burst after a quiet spell);
    a refresh at every decision makes it certain here."""
    monkeypatch.setattr(traders, "REFRESH_SECONDS", 0.0)
    looked_up = interchanges.earlier_of

    async def slow_look_up(connection: Any, pending: Any, key: Any) -> Any:
        # A decision that takes a moment before it reads the registry (a large submission,
        # a busy database): the workers woken together all hold their connection by then.
        await asyncio.sleep(1.0)
        return await looked_up(connection, pending, key)

    monkeypatch.setattr(interchanges, "earlier_of", slow_look_up)
    database = await create_database()
    files = write_files(tmp_path, database)
    files.config_path.write_text(files.config_path.read_text() + "processor_workers: 12\n")
    gateway = await start_gateway(files)
    try:
        rows = []
        for n in range(40):
            raw = cusdec([f"{8400 + k % 99:04d}" for k in range(300)], sender="VANA",
                         control_reference=f"BURST{n}")
            rows.append(("van-a", "sftp", f"burst{n}.edi", raw, hashlib.sha256(raw).digest()))
        connection = await asyncpg.connect(
            files.config_path.read_text().split("database_url: ")[1].split("\n")[0])
        try:
            await connection.executemany(  # not due yet: the workers are all idle
                "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256,"
                " next_attempt_at) VALUES ($1, $2, $3, $4, $5, now() + interval '1 hour')",
                rows)
            async with gateway.connect("van-a") as ssh, ssh.start_sftp_client() as sftp:
                await connection.execute("UPDATE interchanges SET next_attempt_at = now()")
                async with sftp.open("inbox/wake.edi", "wb") as handle:  # wakes every worker
                    await handle.write(cusdec(("8471",), sender="VANA",
                                              control_reference="WAKE"))
        finally:
            await connection.close()
        await wait_for(lambda: gateway.fetch(
            "SELECT 1 FROM interchanges HAVING count(*) FILTER (WHERE status = 'received') = 0"
        ), "every submission decided", seconds=30)
        await gateway.stop()
    finally:
        if gateway.task is not None and not gateway.task.done():
            gateway.task.cancel()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def test_a_claimed_submission_is_not_dropped_because_another_claim_looked_at_it(
        ) -> None:
    """store.lock_claimed used to lock with SKIP LOCKED.  Another worker's claim_next, whose
    snapshot still saw the row due, locks it for an instant while it re-checks it (READ COMMITTED
    re-evaluation of FOR UPDATE SKIP LOCKED); lock_claimed then finds it locked and the worker
    drops the submission it has just claimed: the attempt is counted, nothing is recorded
    (Processor.process_one returns quietly), and the submission waits for its backoff.  With
    six workers on a backlog of 3,000, about 7% of claims were lost; a gateway under load
    delays submissions by 2, 4, 8 ... s and moves them towards parking (after MAX_ATTEMPTS
    it is parked as 'the gateway stopped while deciding it')."""
    database = await create_database()
    pool = await asyncpg.create_pool(database_url(database), min_size=6, max_size=8)
    try:
        async with pool.acquire() as connection:
            await connection.executemany(
                "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256)"
                " VALUES ('van-a', 'sftp', 'x.edi', $1, $2)",
                [(b"%d" % n, hashlib.sha256(b"%d" % n).digest()) for n in range(3000)])
        dropped = 0

        async def worker() -> None:
            nonlocal dropped
            while (claimed := await interchanges.claim_next(pool)) is not None:
                async with pool.acquire() as connection, connection.transaction():
                    if not await interchanges.lock_claimed(connection, claimed):
                        dropped += 1
                        continue
                    await connection.execute(
                        "UPDATE interchanges SET status = 'rejected' WHERE id = $1", claimed.id)

        await asyncio.gather(*[worker() for _ in range(6)])
        assert dropped == 0
    finally:
        await pool.close()
        await drop_database(database)


async def test_attempts_cut_short_by_a_database_outage_do_not_park(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL unreachable in the middle of a decision is everybody's outage: however long
    it flaps, a good submission is decided once it is back, never parked for it."""
    from gateway.app.mapping_files import load_compiled
    from gateway.app.processor import MAX_ATTEMPTS, Processor
    from gateway.app.routing_reload import LiveRouting
    from gateway.config.load import load_config
    from gateway.errors import StoreUnavailable
    from gateway.store.database import create_pool

    database = await create_database()
    files = write_files(tmp_path, database)
    config = load_config(files.config_path, environ={})
    pool = await create_pool(database_url(database))
    outages = MAX_ATTEMPTS + 2
    locked = interchanges.lock_claimed

    async def flapping(connection: Any, pending: Any) -> bool:
        nonlocal outages
        if outages:
            outages -= 1
            raise StoreUnavailable("deciding a submission: PostgreSQL failed: cut")
        return await locked(connection, pending)

    monkeypatch.setattr(interchanges, "lock_claimed", flapping)
    try:
        routing = LiveRouting(config, pool)
        await routing.start()
        processor = Processor(pool, config, load_compiled(config.mappings_path), routing,
                              asyncio.Event(), asyncio.Event())
        await interchanges.record_submission(pool, "van-a", "sftp", "decl.edi",
                                             cusdec(("8471",), sender="VANA"))
        for _ in range(MAX_ATTEMPTS + 3):
            with contextlib.suppress(StoreUnavailable):
                await processor.process_one()
            await pool.execute("UPDATE interchanges SET next_attempt_at = now()")
        (row,) = await pool.fetch("SELECT status, attempts FROM interchanges")
        assert row["status"] == "accepted" and row["attempts"] == MAX_ATTEMPTS + 3
    finally:
        await pool.close()
        await drop_database(database)
