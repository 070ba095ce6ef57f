"""The cluster rig's services on one machine (issue 16 item 4): three RabbitMQ nodes from the
Debian package clustered on loopback, and a PostgreSQL primary with a hot standby fed by
streaming replication, each a server of its own on its own ports, in a folder of the run's.

RabbitMQ: each node has its own node name (``RABBITMQ_NODENAME``), AMQP and distribution
ports, configuration file and data folder owned by the ``rabbitmq`` user; the Erlang cookie is
that user's, so the nodes and ``rabbitmqctl`` trust each other.  PostgreSQL: ``initdb`` as the
``postgres`` user, trust authentication on loopback, ``pg_basebackup -R`` for the standby
(``standby.signal`` and ``primary_conninfo`` written by it); ``pg_ctl promote`` makes it the
primary.  Both need root (to act as those users), as on the machines CI runs on."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
#: The node every other joins; the one the gateway lists first.
RABBIT_NODES = ("swgc1", "swgc2", "swgc3")
START_TIMEOUT = 120.0


def _run(*command: str, user: str | None = None, env: dict[str, str] | None = None,
         check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    full = [*(["runuser", "-u", user, "--"] if user else []), *command]
    return subprocess.run(full, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, check=check, timeout=timeout)


def rig_folder() -> Path:
    """A folder for one run's servers, outside pytest's own (which only root may enter): the
    rabbitmq and postgres users must reach their folders below it."""
    folder = Path(tempfile.mkdtemp(prefix="swg-cluster-"))
    folder.chmod(0o755)
    return folder


def missing() -> str | None:
    """Why this machine cannot host the rig, or None."""
    if os.geteuid() != 0:
        return "the cluster rig runs RabbitMQ and PostgreSQL servers as their users: run as root"
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        return f"no RabbitMQ at {RABBITMQ_BIN} (Debian package rabbitmq-server)"
    if not _pg_bin():
        return "no PostgreSQL server binaries under /usr/lib/postgresql"
    return None


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class RabbitNode:
    name: str  # the node name's first part: <name>@localhost
    amqp_port: int
    dist_port: int
    folder: Path

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    def env(self) -> dict[str, str]:
        return {
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "node.pid"),
            "HOME": "/var/lib/rabbitmq",  # the rabbitmq user's Erlang cookie
        }

    def prepare(self) -> None:
        for sub in ("mnesia", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            "loopback_users.guest = true\n")
        (self.folder / "rabbitmq-env.conf").write_text("")
        (self.folder / "enabled_plugins").write_text("[].\n")
        shutil.chown(self.folder, "rabbitmq", "rabbitmq")
        for path in self.folder.rglob("*"):
            shutil.chown(path, "rabbitmq", "rabbitmq")

    def ctl(self, *args: str, check: bool = True, timeout: float = 120.0) -> str:
        return _run(str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args,
                    user="rabbitmq", env=self.env(), check=check, timeout=timeout).stdout

    def start(self) -> None:
        _run(str(RABBITMQ_BIN / "rabbitmq-server"), "-detached", user="rabbitmq",
             env={**self.env(), "ERL_EPMD_ADDRESS": "127.0.0.1"})
        self.ctl("wait", "--timeout", str(int(START_TIMEOUT)), str(self.folder / "node.pid"),
                 timeout=START_TIMEOUT + 10)

    def stop(self) -> None:
        self.ctl("stop", check=False)


class RabbitCluster:
    def __init__(self, folder: Path, base_port: int = 5781) -> None:
        self.nodes = [RabbitNode(name, base_port + i, 20000 + base_port + i, folder / name)
                      for i, name in enumerate(RABBIT_NODES)]

    def url(self, user: str = "guest", password: str = "guest") -> str:
        hosts = ",".join(f"127.0.0.1:{n.amqp_port}" for n in self.nodes)
        return f"amqp://{user}:{password}@{hosts}/"

    def start(self) -> None:
        first, *others = self.nodes
        for node in self.nodes:
            node.prepare()
            node.start()
        for node in others:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.ctl("start_app")
        running = first.ctl("cluster_status", "--formatter", "json")
        for node in self.nodes:
            if node.node not in running:
                raise RuntimeError(f"{node.node} did not join the cluster: {running}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@dataclass
class PgServer:
    folder: Path
    port: int

    def ctl(self, *args: str, check: bool = True) -> str:
        bin_dir = _pg_bin()
        assert bin_dir is not None
        return _run(str(bin_dir / "pg_ctl"), "-D", str(self.folder), *args, user="postgres",
                    check=check).stdout

    def start(self) -> None:
        self.ctl("-w", "-t", "60", "-l", str(self.folder.parent / f"{self.folder.name}.log"),
                 "-o", f"-p {self.port} -k {self.folder.parent}", "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-w", "-m", mode, "stop", check=False)


class PgPair:
    """A primary and its streaming standby."""

    def __init__(self, folder: Path, base_port: int = 5491) -> None:
        self.folder = folder
        self.primary = PgServer(folder / "primary", base_port)
        self.standby = PgServer(folder / "standby", base_port + 1)

    def url(self, database: str) -> str:
        return (f"postgresql://postgres@127.0.0.1:{self.primary.port},"
                f"127.0.0.1:{self.standby.port}/{database}?target_session_attrs=read-write")

    def start(self) -> None:
        bin_dir = _pg_bin()
        assert bin_dir is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        _run(str(bin_dir / "initdb"), "-D", str(self.primary.folder), "-A", "trust",
             "-U", "postgres", "--no-sync", user="postgres")
        with (self.primary.folder / "postgresql.conf").open("a") as conf:
            conf.write("listen_addresses = '127.0.0.1'\nwal_level = replica\n"
                       "max_wal_senders = 5\nhot_standby = on\nfsync = on\n"
                       "max_connections = 200\n")
        with (self.primary.folder / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self.primary.start()
        _run(str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
             "-U", "postgres", "-D", str(self.standby.folder), "-R", "-X", "stream",
             user="postgres")
        self.standby.start()

    def promote(self) -> None:
        """The standby becomes the primary (the old one is stopped by the caller)."""
        self.standby.ctl("-w", "promote")

    def stop(self) -> None:
        self.standby.stop("immediate")
        self.primary.stop("immediate")


async def until(check: object, what: str, seconds: float = 60.0) -> None:
    """Wait until the synchronous ``check()`` holds."""
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"never: {what}")
        await asyncio.sleep(0.2)
