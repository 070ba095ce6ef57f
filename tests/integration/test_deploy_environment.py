"""A gateway node started the way deploy/ starts one (docs/runbook.md): through the image's
entrypoint, the URLs only in mounted secret files (GATEWAY_*_URL_FILE; gateway.yaml's own URLs
lead nowhere), the SFTP port from the environment, and the shared host key copied from a
group-readable secret.  A partner's upload is answered, the partner sees the secret's host key,
no alarm is raised, and SIGTERM ends the node cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path

import asyncssh

from tests.support.edifact import cusdec
from tests.support.fault_audit import free_port
from tests.support.harness import (
    AMQP_URL,
    DEMO_AGENCIES,
    Client,
    create_database,
    database_url,
    delete_topology,
    drop_database,
    write_files,
)

ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "entrypoint.sh"
GATEWAY_BIN = Path(sys.executable).with_name("gateway")
#: What gateway.yaml says: nothing listens there, so only the secret files can work.
NOWHERE_DATABASE = "postgresql://nobody@127.0.0.1:9/nowhere"
NOWHERE_BROKER = "amqp://nobody@127.0.0.1:9/"


async def listening(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        if process.returncode is not None:
            raise AssertionError(f"the gateway exited ({process.returncode})")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise AssertionError("the gateway did not listen")


async def test_a_node_configured_by_environment_and_secret_files_serves(
        tmp_path: Path) -> None:
    database = await create_database()
    files = write_files(tmp_path, database, database_url_override=NOWHERE_DATABASE,
                        amqp_url=NOWHERE_BROKER, port=2)  # the port below wins
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "database-url").write_text(database_url(database) + "\n")
    (secrets / "amqp-url").write_text(AMQP_URL + "\n")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(secrets / "sftp-host-key")
    for secret in secrets.iterdir():
        secret.chmod(0o440)  # as a Secret volume with fsGroup gives them
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("GATEWAY_")}
    environment.update({
        "PYTHONUNBUFFERED": "1",
        "GATEWAY_CONFIG": str(files.config_path),
        "GATEWAY_DATABASE_URL_FILE": str(secrets / "database-url"),
        "GATEWAY_AMQP_URL_FILE": str(secrets / "amqp-url"),
        "GATEWAY_SFTP_PORT": str(port),
        "GATEWAY_HOST_KEY_SECRET": str(secrets / "sftp-host-key"),
        "GATEWAY_HOST_KEY": str(tmp_path / "host_key"),  # sftp.host_key of write_files
    })
    process = await asyncio.create_subprocess_exec(
        str(ENTRYPOINT), str(GATEWAY_BIN), "serve", env=environment,
        stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    try:
        await listening(port, process)
        client = Client(files, port)
        await client.upload("van-a", "decl.edi", cusdec(("0303",), sender="VANA"))
        (answer,) = await client.answers("van-a", "decl.edi")
        assert b"UCI+" in answer  # the CONTRL: decided with the database of the secret file
        published = await client.fetch("SELECT count(*) AS n FROM outbox WHERE dispatched_at"
                                       " IS NOT NULL AND channel = 'amqp'")
        assert published[0]["n"] >= 1  # and published to the broker of the secret file
        keys = files.partners["van-a"]
        async with asyncssh.connect("127.0.0.1", port, username="van-a",
                                    client_keys=[str(keys.key_path)], known_hosts=None,
                                    agent_path=None) as connection:
            presented = connection.get_server_host_key()
        assert presented is not None
        assert presented.export_public_key() == host_key.export_public_key()
        copied = tmp_path / "host_key"
        assert stat.S_IMODE(copied.stat().st_mode) == 0o600
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert process.stderr is not None
        log = [json.loads(line) for line in (await process.stderr.read()).decode().splitlines()
               if line.startswith("{")]
        assert [e for e in log if "code" in e] == []  # no alarm (GW-A014 above all)
        assert log[-1]["event"] == "stopped"
        assert "nobody" not in json.dumps(log)  # gateway.yaml's URLs were never used
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)
