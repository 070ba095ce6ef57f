"""Several gateway nodes on one database and one broker: each a ``gateway serve`` process of
its own, with its own SFTP port, host key and mailbox directory (nothing shared on disk), as
several hosts behind a load balancer run them (issue 16)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.harness import Client, Files

STARTED_TIMEOUT = 60.0


@dataclass
class Node:
    """One ``gateway serve`` process: a Client of its SFTP port, and its log."""

    name: str
    client: Client
    process: asyncio.subprocess.Process
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def kill(self) -> None:
        """SIGKILL: no drain, no goodbye (a host lost)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()


def node_config(files: Files, name: str) -> Path:
    """``files``' gateway.yaml for node ``name``: its own mailboxes directory and host key,
    and a free SFTP port (port 0: the log's "started" line tells which)."""
    text = files.config_path.read_text()
    for old, new in (("  mailboxes: mailboxes\n", f"  mailboxes: mailboxes-{name}\n"),
                     ("  port: 0\n  host_key: host_key\n",
                      f"  port: 0\n  host_key: host_key-{name}\n")):
        assert old in text, old
        text = text.replace(old, new)
    path = files.root / f"gateway-{name}.yaml"
    path.write_text(text)
    return path


async def start_node(files: Files, name: str) -> Node:
    config = node_config(files, name)
    log = files.root / f"node-{name}.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("GATEWAY_DATABASE_URL", "GATEWAY_AMQP_URL")}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "-c", str(config), "serve",
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    node = Node(name, Client(files, 0), process, log)
    deadline = time.monotonic() + STARTED_TIMEOUT
    while (port := _started_port(log)) is None:
        if process.returncode is not None or time.monotonic() > deadline:
            await node.kill()
            raise AssertionError(f"node {name} did not start:\n{node.log_text()[-3000:]}")
        await asyncio.sleep(0.1)
    node.client.port = port
    return node


def _started_port(log: Path) -> int | None:
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            said = json.loads(line)
            if said.get("event") == "started":
                return int(str(said["sftp"]).rsplit(":", 1)[1])
    return None


@contextlib.asynccontextmanager
async def nodes(files: Files, *names: str) -> AsyncIterator[dict[str, Node]]:
    """Nodes ``names`` started one after the other, stopped (SIGTERM) afterwards."""
    started: dict[str, Node] = {}
    try:
        for name in names:
            started[name] = await start_node(files, name)
        yield started
    finally:
        for node in started.values():
            await node.stop()
