"""Issue 16 item 4: two gateway nodes on a three-node RabbitMQ cluster and a PostgreSQL primary
with a hot standby, all on this machine, under a steady SFTP load spread over both nodes.
During the load one broker node (the one the gateways are connected to, and the queues'
leader) is stopped and started again, one gateway node is SIGKILLed (its partners' sessions
go to the other node, as a TCP load balancer would send them; it is started again later), and
the standby is promoted while the old primary is stopped.  Then the fault audit of issue 13
(tests/support/fault_reconcile.py) counts, from what partners and agencies saw: 0 lost, 0
doubled, every accepted upload answered.

Run by ``make test-cluster`` (not by ``make test``: it starts five servers of its own and takes
minutes).  The primary replicates synchronously (``synchronous_standby_names``), as a
deployment that must lose no accepted upload on failover has to: with asynchronous
replication a commit the primary acknowledged may never reach the standby."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.cluster.rig import Cluster, cluster
from tests.cluster.services import missing, rig_folder
from tests.support.fault_audit import (
    AgencyConsumer,
    Load,
    Window,
    expected_routes,
    format_table,
    outbox_answers,
    quiesce,
    reconcile,
)
from tests.support.harness import DEMO_AGENCIES

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))

RATE, SECONDS = 12.0, 60.0
#: When each fault starts, as a share of the load's length.
BROKER_AT, GATEWAY_AT, DATABASE_AT = 0.2, 0.45, 0.7
GRACE = 5.0


async def _consume(made: Cluster, clock: Load) -> None:
    """The agencies' consumers, on the third broker node (the one never stopped)."""
    url = f"amqp://guest:guest@127.0.0.1:{made.rabbit.nodes[2].amqp_port}/"
    for agency in DEMO_AGENCIES:
        consumer = AgencyConsumer(agency, made.files.queue_prefix + agency, url,
                                  made.deliveries.append, clock.now)
        await consumer.start()
        made.consumers.append(consumer)


async def _faults(made: Cluster, load: Load) -> Window:
    await asyncio.sleep(max(0.0, BROKER_AT * SECONDS - load.now()))
    start = load.now()
    broker = made.rabbit.nodes[0]  # where the gateways connected first, the queues' leader
    await asyncio.to_thread(broker.stop)
    await asyncio.sleep(3)
    await asyncio.to_thread(broker.start)

    await asyncio.sleep(max(0.0, GATEWAY_AT * SECONDS - load.now()))
    killed = made.nodes[1]
    await killed.kill()  # its sessions fail and reconnect to node A

    await asyncio.sleep(max(0.0, DATABASE_AT * SECONDS - load.now()))
    await asyncio.to_thread(made.pg.promote)
    await asyncio.to_thread(made.pg.primary.stop, "immediate")
    await killed.start()  # the orchestrator brings the node back, on the new primary
    return Window(start, load.now())


async def test_a_broker_a_gateway_and_the_primary_lost_under_load() -> None:
    root = await asyncio.to_thread(rig_folder)
    async with cluster(root) as made:
        routes = expected_routes(made.files.root / "routing.yaml")
        load = Load(made.files, tuple(n.port for n in made.nodes), routes, RATE, SECONDS,
                    connections=2, per_connection=4)
        await _consume(made, load)
        running = asyncio.create_task(load.run())
        await asyncio.sleep(0)
        window = await _faults(made, load)
        await running
        await quiesce(made, load, stall=60.0, settle=2.0)
        row = reconcile("cluster", RATE, SECONDS, load.uploads, made.deliveries,
                        await outbox_answers(made.files), window, GRACE, 0, 0)
        verdict = f"\n{format_table([row])}\nlogs: {root}/node-a.log, node-b.log"
        print(verdict)
        assert row.accepted > RATE * SECONDS / 2, verdict
        assert (row.lost, row.doubled, row.unanswered) == (0, 0, 0), verdict
        assert row.misrouted == 0 and row.strange == 0, verdict
    await asyncio.to_thread(shutil.rmtree, root, True)  # kept, with its logs, on a failure
