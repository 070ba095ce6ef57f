"""Rule 1: work committed before a crash is finished after the restart, exactly once."""

from __future__ import annotations

from pathlib import Path

from gateway.store.database import create_pool
from gateway.store.interchanges import record_submission
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


async def test_a_submission_stored_before_a_crash_is_processed_on_start(tmp_path: Path) -> None:
    database = await create_database()
    files = write_files(tmp_path, database)
    # The transport committed the bytes, then the process died before deciding anything.
    pool = await create_pool(database_url(database))
    await record_submission(pool, "van-a", "sftp", "before-crash.edi",
                            cusdec(("0303",), sender="VANA", control_reference="CRASH1"))
    await pool.close()
    gateway = await start_gateway(files)
    try:
        (answer,) = await gateway.answers("van-a", "before-crash.edi")
        assert b"UCI+CRASH1" in answer
        assert len(await gateway.queue("customs", expect=1, settle=1.0)) == 1
        assert len(await gateway.queue("quarantine", expect=1)) == 1
    finally:
        await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def test_deliveries_decided_before_a_crash_are_published_on_start(tmp_path: Path) -> None:
    database = await create_database()
    files = write_files(tmp_path, database)
    first = await start_gateway(files)
    try:
        await first.upload("van-a", "decl.edi", cusdec(("8471",), sender="VANA"))
        await first.answers("van-a", "decl.edi")
        assert len(await first.queue("customs", expect=1)) == 1
    finally:
        await first.stop()
    # Pretend the confirm never came back: the row is due again after the restart.
    await first.fetch("UPDATE outbox SET dispatched_at = NULL WHERE channel = 'amqp'")
    second = await start_gateway(files)
    try:
        again = await second.queue("customs", expect=1, settle=1.0)
        assert len(again) == 1
        # the re-publish carries the same message_id, so the agency can drop it
        assert again[0].message_id == first.seen["customs"][0].message_id
    finally:
        await second.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def test_a_queue_from_an_older_version_is_kept_and_still_fed(tmp_path: Path) -> None:
    """A classic queue made before quorum queues: kept as it is (never deleted with messages
    inside), bound, and fed; the gateway logs a warning instead of refusing to start."""
    import aio_pika

    from tests.support.harness import AMQP_URL

    database = await create_database()
    files = write_files(tmp_path, database)
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    await channel.declare_queue(files.queue_prefix + "customs", durable=True)
    await connection.close()
    gateway = await start_gateway(files)
    try:
        await gateway.upload("van-a", "decl.edi", cusdec(("8471",), sender="VANA"))
        await gateway.answers("van-a", "decl.edi")
        assert len(await gateway.queue("customs", expect=1)) == 1
    finally:
        await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)
