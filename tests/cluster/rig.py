"""The cluster rig (issue 16 item 4): services.py's RabbitMQ cluster and PostgreSQL pair with
a gateway database on them, and two ``gateway serve`` nodes sharing one configuration folder
(and so one SSH host key), each on an SFTP port and with a mailbox folder of its own: the
partners' outboxes are in the database (``sftp.mailbox_store: database``).  Used by
test_cluster.py and bench/e2e.py --cluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from gateway.store.database import upgrade
from tests.cluster.services import PgPair, RabbitCluster
from tests.support.fault_audit import AgencyConsumer, Delivery, GatewayProcess, free_port
from tests.support.harness import Files, write_files


@dataclass
class Cluster:
    rabbit: RabbitCluster
    pg: PgPair
    files: Files
    nodes: list[GatewayProcess]
    deliveries: list[Delivery] = field(default_factory=list)
    consumers: list[AgencyConsumer] = field(default_factory=list)


@contextlib.asynccontextmanager
async def cluster(root: Path) -> AsyncIterator[Cluster]:
    """The rig in ``root`` (services.rig_folder: kept, with every server's log)."""
    rabbit, pg = RabbitCluster(root / "rabbit"), PgPair(root / "pg")
    try:
        await asyncio.to_thread(rabbit.start)
        await asyncio.to_thread(pg.start)
        await _synchronous(pg)
        database = "gateway"
        admin = await asyncpg.connect(pg.url("postgres"))
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        await upgrade(pg.url(database))
        ports = (free_port(), free_port())
        await asyncio.to_thread((root / "gateway").mkdir)
        files = write_files(root / "gateway", database, port=ports[0],
                            database_url_override=pg.url(database), amqp_url=rabbit.url(),
                            mailbox_store="database")
        # Node B: its own SFTP port and its own mailbox folder: nothing on disk is shared
        # but the configuration (and the host key, as a deployment mounts one on every node).
        second = files.root / "gateway-b.yaml"
        second.write_text(files.config_path.read_text().replace(
            f"port: {ports[0]}\n", f"port: {ports[1]}\n").replace(
            "mailboxes: mailboxes\n", "mailboxes: mailboxes-b\n"))
        nodes = [GatewayProcess(files.config_path, root / "node-a.log", ports[0]),
                 GatewayProcess(second, root / "node-b.log", ports[1])]
        made = Cluster(rabbit, pg, files, nodes)
        try:
            for node in nodes:  # one after the other: the first makes the shared host key
                await node.start()
            yield made
        finally:
            for node in nodes:
                await node.stop()
            for consumer in made.consumers:
                await consumer.close()
    finally:
        await asyncio.to_thread(pg.stop)
        await asyncio.to_thread(rabbit.stop)


async def _synchronous(pg: PgPair) -> None:
    """Commits wait for the standby (set on the primary after the base backup was taken, so
    the promoted standby does not wait for a standby of its own)."""
    connection = await asyncpg.connect(pg.url("postgres"))
    try:
        await connection.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


