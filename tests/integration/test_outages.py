"""Our infrastructure failing is never the partner's fault, and loses nothing (rules 1 and 4).

The gateway reaches PostgreSQL or RabbitMQ through a loopback TCP proxy that the test cuts and
restores: a real network failure, while the shared services keep running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from tests.support.edifact import cusdec
from tests.support.harness import (
    AMQP_URL,
    DEMO_AGENCIES,
    Gateway,
    create_database,
    database_url,
    delete_topology,
    drop_database,
    start_gateway,
    write_files,
)
from tests.support.proxy import TcpProxy


@pytest.fixture
async def proxied(tmp_path: Path, request: pytest.FixtureRequest
                  ) -> AsyncIterator[tuple[Gateway, TcpProxy]]:
    which = request.param
    database = await create_database()
    if which == "postgres":
        proxy = await TcpProxy("127.0.0.1", 5432).start()
        url = database_url(database).replace(":5432/", f":{proxy.port}/")
        files = write_files(tmp_path, database, database_url_override=url)
    else:
        proxy = await TcpProxy("127.0.0.1", 5672).start()
        files = write_files(tmp_path, database,
                            amqp_url=AMQP_URL.replace(":5672/", f":{proxy.port}/"))
    gateway = await start_gateway(files)
    try:
        yield gateway, proxy
    finally:
        await proxy.restore() if proxy.port and not proxy._server else None
        await gateway.stop()
        await proxy.close()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


@pytest.mark.parametrize("proxied", ["postgres"], indirect=True)
async def test_upload_fails_while_the_database_is_down_and_the_retry_counts_once(
        proxied: tuple[Gateway, TcpProxy]) -> None:
    gateway, proxy = proxied
    data = cusdec(("0303",), sender="VANA", control_reference="OUTAGE1")
    await proxy.cut()
    with pytest.raises(asyncssh.SFTPFailure, match="send it again"):
        await gateway.upload("van-a", "decl.edi", data)
    assert not (gateway.files.mailbox("van-a") / "inbox" / "decl.edi").exists()
    assert await gateway.fetch("SELECT id FROM interchanges") == []  # nothing half-accepted
    await proxy.restore()
    await gateway.upload("van-a", "decl.edi", data)
    (answer,) = await gateway.answers("van-a", "decl.edi")
    assert b"UCI+OUTAGE1+VANA:ZZZ+SWGATEWAY:ZZZ+7" in answer
    assert [r["status"] for r in await gateway.fetch("SELECT status FROM interchanges")] == [
        "accepted"]
    assert len(await gateway.queue("customs", expect=1, settle=1.0)) == 1
    assert len(await gateway.queue("quarantine", expect=1)) == 1


@pytest.mark.parametrize("proxied", ["rabbitmq"], indirect=True)
async def test_deliveries_wait_in_the_outbox_while_the_broker_is_down(
        proxied: tuple[Gateway, TcpProxy]) -> None:
    gateway, proxy = proxied
    await proxy.cut()
    await gateway.upload("van-a", "decl.edi", cusdec(("0303",), sender="VANA"))
    (answer,) = await gateway.answers("van-a", "decl.edi")
    assert b"+7'" in answer  # the partner is answered: the broker outage is ours, not theirs
    for _ in range(100):
        failed = await gateway.fetch(
            "SELECT destination, last_error FROM outbox WHERE channel = 'amqp'"
            " AND dispatched_at IS NULL AND attempts > 0")
        if failed:
            break
        await asyncio.sleep(0.1)
    assert failed and "RabbitMQ" in failed[0]["last_error"]
    await proxy.restore()
    customs = await gateway.queue("customs", expect=1, settle=1.0)
    quarantine = await gateway.queue("quarantine", expect=1)
    assert len(customs) == 1 and len(quarantine) == 1
    pending = await gateway.fetch("SELECT id FROM outbox WHERE dispatched_at IS NULL")
    assert pending == []
