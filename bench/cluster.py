"""``bench/e2e.py --cluster``: routed/s of two gateway nodes beside one node's, on the cluster
rig of issue 16 (tests/cluster/rig.py: three RabbitMQ nodes, a PostgreSQL primary with a
synchronous standby, two ``gateway serve`` processes), in one run.

Closed loop: ``--clients`` SFTP sessions as van-a upload 1-KB CUSDEC interchanges one after the
other, spread evenly over the nodes in use.  First both nodes take the load, then node B is
stopped and node A alone takes it, on the same rig, the same database and broker cluster.
routed/s counts the interchanges whose first delivery reached a tap queue (bound to the
gateway's exchange as customs is) within the measured window; accepted/s the uploads whose
close returned within it.  On one machine both nodes share its two cores with five servers
and the load: the ratio says how the design scales where CPU is not the limit, not what two
machines would give (docs/throughput.md, "Cluster")."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncssh

from bench.e2e import Plan, Send, Tap, Template, drive, sftp_send
from tests.cluster.rig import Cluster, cluster
from tests.cluster.services import missing, rig_folder


@dataclass(frozen=True)
class Figures:
    nodes: int
    accepted: float
    routed: float


@contextlib.asynccontextmanager
async def _sessions(plan: Plan, ports: tuple[int, ...], key: str
                    ) -> AsyncIterator[list[Send]]:
    async with contextlib.AsyncExitStack() as stack:
        sends: list[Send] = []
        for k in range(plan.clients):
            connection = await stack.enter_async_context(asyncssh.connect(
                "127.0.0.1", ports[k % len(ports)], username="van-a", client_keys=[key],
                known_hosts=None, agent_path=None, preferred_auth="publickey"))
            sftp = await stack.enter_async_context(connection.start_sftp_client())
            sends.append(sftp_send(sftp, plan.template))
        yield sends


async def _measure(made: Cluster, nodes: int, plan: Plan) -> Figures:
    tap = Tap()
    await tap.start(plan)
    try:
        ports = tuple(n.port for n in made.nodes[:nodes])
        key = str(made.files.partners["van-a"].key_path)
        print(f"{nodes} node(s): {plan.clients} sessions, {plan.warmup:g} s + "
              f"{plan.seconds:g} s ...", file=sys.stderr)
        async with _sessions(plan, ports, key) as sends:
            load = await drive(plan, sends, lambda: None)
        await tap.quiet(3.0)
    finally:
        await tap.close()
    start, end = load.window
    span = max(end - start, 1e-9)
    accepted = sum(1 for _, _, done, ok in load.uploads if ok and start <= done < end)
    routed = sum(1 for at in tap.tapped.first.values() if start <= at < end)
    return Figures(nodes, accepted / span, routed / span)


async def scaling(clients: int, warmup: float, seconds: float) -> list[Figures]:
    """Two nodes, then node A alone, on one rig."""
    root = await asyncio.to_thread(rig_folder)
    print(f"cluster rig in {root} (servers' and nodes' logs kept there)", file=sys.stderr)
    figures: list[Figures] = []
    template = Template.of(1, 1)
    first = 1
    async with cluster(root) as made:
        tap_url = f"amqp://guest:guest@127.0.0.1:{made.rabbit.nodes[2].amqp_port}/"
        for nodes in (2, 1):
            if nodes == 1:
                await made.nodes[1].stop()
            plan = Plan("sftp", clients, warmup, seconds, None, template, first, tap_url,
                        made.files.exchange, f"{made.files.queue_prefix}tap-{uuid.uuid4().hex[:6]}")
            started = time.monotonic()
            figures.append(await _measure(made, nodes, plan))
            first += 10_000_000
            print(f"  done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return figures


def report(figures: list[Figures]) -> None:
    one = next(f for f in figures if f.nodes == 1)
    print("\n| gateway nodes | accepted/s | routed/s | routed vs one node |")
    print("|---|---|---|---|")
    for f in sorted(figures, key=lambda f: f.nodes):
        ratio = f.routed / one.routed if one.routed else float("nan")
        print(f"| {f.nodes} | {f.accepted:.1f} | {f.routed:.1f} | {ratio:.2f} |")


def run(clients: int, warmup: float, seconds: float) -> None:
    why = missing()
    if why is not None:
        raise SystemExit(f"--cluster: {why}")
    report(asyncio.run(scaling(clients, warmup, seconds)))
