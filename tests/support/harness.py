"""A real gateway for integration tests: its own database, exchange, queues and mailboxes,
real SFTP on a free loopback port, stopped and cleaned up after each test."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import asyncssh

from gateway.app.demo import ensure_pki
from gateway.app.serve import Running, serve
from gateway.config.load import GatewayConfig, load_config
from gateway.store.database import upgrade

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL",
                              "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ANSWER_TIMEOUT = 20.0


def database_url(name: str) -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


async def create_database() -> str:
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    await upgrade(database_url(name))
    return name


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@dataclass
class PartnerKeys:
    partner_id: str
    sender_id: str
    key_path: Path


@dataclass
class Files:
    root: Path
    config_path: Path
    partners: dict[str, PartnerKeys]
    exchange: str
    queue_prefix: str
    database: str
    #: sftp.mailbox_store: with "database" the answers are read over SFTP, never from disk.
    mailbox_store: str = "disk"

    def mailbox(self, partner_id: str) -> Path:
        return self.root / "mailboxes" / partner_id


def write_files(root: Path, database: str, *, database_url_override: str | None = None,
                amqp_url: str = AMQP_URL, port: int = 0, max_bytes: int = 1_000_000,
                reload_seconds: float = 0.2,
                agency_settings: dict[str, dict[str, object]] | None = None,
                settings: dict[str, object] | None = None,
                xml_ids: dict[str, tuple[str, ...]] | None = None,
                partner_as2: dict[str, dict[str, object]] | None = None,
                mailbox_store: str = "disk") -> Files:
    """``agency_settings``: more keys per agency code in agencies.yaml; ``settings``: more
    top-level keys in gateway.yaml; ``xml_ids``: a partner's XML identities; ``partner_as2``:
    a partner's ``as2:`` settings (paths relative to ``root``); ``mailbox_store``:
    sftp.mailbox_store."""
    tag = uuid.uuid4().hex[:10]
    partners = {}
    entries = []
    for partner_id, sender in (("van-a", "VANA"), ("van-b", "VANB")):
        key = asyncssh.generate_private_key("ssh-ed25519")
        key_path = root / f"{partner_id}.key"
        key.write_private_key(key_path)
        key_path.chmod(0o600)
        key.write_public_key(root / f"{partner_id}.key.pub")
        partners[partner_id] = PartnerKeys(partner_id, sender, key_path)
        identities = (xml_ids or {}).get(partner_id, ())
        entries.append(f"  - id: {partner_id}\n    name: {partner_id}\n    edifact_ids:\n"
                       f"      - id: {sender}\n    ssh_keys:\n      - file: {partner_id}.key.pub\n"
                       + (f"    xml_ids: {json.dumps(list(identities))}\n" if identities else "")
                       + (f"    as2: {json.dumps(partner_as2[partner_id])}\n"
                          if partner_as2 and partner_id in partner_as2 else ""))
    (root / "partners.yaml").write_text("partners:\n" + "".join(entries))
    (root / "agencies.yaml").write_text("agencies:\n" + "".join(
        f"  - code: {code}\n    name: {code}\n" + "".join(
            f"    {key}: {value}\n" for key, value in (agency_settings or {}).get(code, {}).items())
        for code in DEMO_AGENCIES))
    (root / "routing.yaml").write_text(
        (Path(__file__).resolve().parents[2] / "routing.yaml").read_text())
    exchange, prefix = f"test.{tag}.deliveries", f"test.{tag}.agency."
    shutil.copytree(demo_pki(), root / "pki")
    (root / "gateway.yaml").write_text(
        f"gateway_id: SWGATEWAY\n"
        f"database_url: {database_url_override or database_url(database)}\n"
        f"amqp:\n  url: {amqp_url}\n  exchange: {exchange}\n  queue_prefix: {prefix}\n"
        f"  responses_exchange: test.{tag}.responses\n"
        f"  responses_queue: test.{tag}.responses\n"
        f"  licences_exchange: test.{tag}.licences\n"
        f"  licences_queue: test.{tag}.licences\n"
        f"signing:\n  ca: pki/ca.crt\n  keys:\n"
        f"    - certificate: pki/gateway.crt\n      key: pki/gateway.key\n"
        f"sftp:\n  host: 127.0.0.1\n  port: {port}\n  host_key: host_key\n"
        f"  mailboxes: mailboxes\n  mailbox_store: {mailbox_store}\n"
        f"partners: partners.yaml\nagencies: agencies.yaml\nrouting: routing.yaml\n"
        f"max_submission_bytes: {max_bytes}\nrouting_reload_seconds: {reload_seconds}\n"
        + "".join(f"{key}: {value}\n" for key, value in (settings or {}).items()))
    return Files(root, root / "gateway.yaml", partners, exchange, prefix, database,
                 mailbox_store)


@functools.cache
def demo_pki() -> Path:
    """One demo PKI per test process, copied into each test's folder: its RSA keys take a
    moment to make, and no test needs its own."""
    folder = Path(tempfile.mkdtemp(prefix="gateway-pki-")) / "pki"
    ensure_pki(folder)
    return folder


@dataclass
class Client:
    """What a test does to a running gateway: upload as a partner, read answers, the store
    and the agency queues."""

    files: Files
    port: int
    seen: dict[str, list[aio_pika.abc.AbstractIncomingMessage]] = field(default_factory=dict)

    def connect(self, partner_id: str, *, username: str | None = None) -> Any:
        keys = self.files.partners[partner_id]
        return asyncssh.connect("127.0.0.1", self.port, username=username or partner_id,
                                client_keys=[str(keys.key_path)], known_hosts=None,
                                agent_path=None, preferred_auth="publickey")

    async def upload(self, partner_id: str, name: str, data: bytes) -> None:
        async with self.connect(partner_id) as connection, \
                connection.start_sftp_client() as sftp, \
                sftp.open(f"inbox/{name}", "wb") as handle:
            await handle.write(data)

    async def answers(self, partner_id: str, name: str, count: int = 1) -> list[bytes]:
        """Every answer to ``name`` in the partner's outbox, once ``count`` are there and the
        gateway has nothing left to decide or write (so a late extra answer is seen too: the
        caller unpacks the list and fails on one too many)."""
        # <name>.<submission>.<suffix>: the answer to the submission, not an agency's answer
        # (<name>.<submission>.<position>.<agency>.<n>.<suffix>) nor a signature (.p7s).
        answer = re.compile(re.escape(name) + r"\.[0-9]+\.(?:contrl\.edi|error\.txt|"
                            r"res-dms\.xml|application-response\.xml)")
        found = await self.outbox_files(partner_id, answer, count)
        await self.settled()
        return list((await self.outbox_files(partner_id, answer, len(found))).values())

    async def outbox_files(self, partner_id: str, names: re.Pattern[str], count: int,
                           ) -> dict[str, bytes]:
        """The files of the partner's outbox whose names match ``names`` (name: content, by
        name), once there are at least ``count``: read from the mailbox folder with the disk
        store, over SFTP as the partner with the database store (``sftp_outbox``)."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            if self.files.mailbox_store == "disk":
                outbox = self.files.mailbox(partner_id) / "outbox"
                found = {p.name: p.read_bytes() for p in sorted(outbox.glob("*"))
                         if names.fullmatch(p.name)}
            else:
                found = await sftp_outbox(self, partner_id, names)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} files {names.pattern} in "
                                     f"{partner_id}'s outbox after {ANSWER_TIMEOUT}s")
            await asyncio.sleep(0.05 if self.files.mailbox_store == "disk" else 0.2)

    async def settled(self) -> None:
        """Wait until no submission waits for its first decision and no outbox row for its
        first dispatch: from then on nothing more is answered or published until something new
        arrives (work failing on our side, retried later, is not waited for)."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            (row,) = await self.fetch(
                "SELECT (SELECT count(*) FROM interchanges WHERE status = 'received'"
                "        AND last_error IS NULL)"
                " + (SELECT count(*) FROM outbox WHERE dispatched_at IS NULL"
                "    AND last_error IS NULL) AS pending")
            if row["pending"] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the gateway still has {row['pending']} pending after "
                                     f"{ANSWER_TIMEOUT}s")
            await asyncio.sleep(0.05)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(database_url(self.files.database))
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    async def queue(self, agency: str, expect: int, settle: float = 0.3
                    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Every message in an agency's queue once ``expect`` have arrived, the gateway has
        nothing pending (see ``settled``: so ``expect=0`` cannot miss a late publish) and,
        to catch extras, nothing more came for ``settle`` seconds."""
        if expect == 0:
            await self.settled()
        name = self.files.queue_prefix + agency
        got = self.seen.setdefault(agency, [])
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(name, ensure=True)
            deadline = time.monotonic() + ANSWER_TIMEOUT
            quiet_until = None
            while time.monotonic() < deadline:
                message = await queue.get(no_ack=True, fail=False)
                if message is not None:
                    got.append(message)
                    quiet_until = None
                    continue
                if len(got) >= expect:
                    quiet_until = quiet_until or time.monotonic() + settle
                    if time.monotonic() >= quiet_until:
                        break
                await asyncio.sleep(0.05)
        finally:
            await connection.close()
        return list(got)



async def sftp_outbox(client: Client, partner_id: str, names: re.Pattern[str] | None = None
                      ) -> dict[str, bytes]:
    """The partner's outbox as the partner reads it over SFTP from ``client``'s node: each
    file (whose name matches ``names``) and its content, by name."""
    async with client.connect(partner_id) as connection, \
            connection.start_sftp_client() as sftp:
        listed = sorted(await sftp.listdir("outbox"))
        found = {}
        for name in listed:
            if name in (".", "..") or (names is not None and not names.fullmatch(name)):
                continue
            async with sftp.open(f"outbox/{name}", "rb") as handle:
                found[name] = await handle.read()
        return found


async def take_messages(queue_name: str, count: int, seconds: float = ANSWER_TIMEOUT
                        ) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Up to ``count`` messages taken off a queue (acknowledged), waiting at most
    ``seconds`` for them."""
    connection = await aio_pika.connect(AMQP_URL)
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    try:
        queue = await (await connection.channel()).get_queue(queue_name, ensure=True)
        deadline = time.monotonic() + seconds
        while len(got) < count and time.monotonic() < deadline:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                got.append(message)
    finally:
        await connection.close()
    return got


@dataclass
class Gateway(Client):
    """A gateway started in this event loop."""

    config: GatewayConfig | None = None
    running: Running | None = None
    task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        assert self.running is not None and self.task is not None
        self.running.stopped.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 30)
        except TimeoutError:
            self.task.print_stack()
            raise


async def start_gateway(files: Files, *, workers: int = 1) -> Gateway:
    """``workers``: serve()'s (worker processes beside this event loop's gateway)."""
    config = load_config(files.config_path, environ={})
    ready: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(config, ready=ready, install_signals=False,
                                     workers=workers))
    waited: set[asyncio.Future[Any]] = {task, ready}
    done, _ = await asyncio.wait(waited, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what stopped it
    if ready not in done:
        task.cancel()
        raise AssertionError("the gateway did not start within 30 s")
    running = ready.result()
    return Gateway(files, running.sftp_port, config=config, running=running, task=task)


#: The agencies of the demo configuration, which the shipped routing.yaml names.
DEMO_AGENCIES = ("customs", "quarantine", "port", "trade", "bank", "tax")


async def delete_topology(files: Files, agencies: tuple[str, ...]) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for agency in agencies:
            await channel.queue_delete(files.queue_prefix + agency)
            await channel.queue_delete(files.queue_prefix + agency + ".dead")
        await channel.exchange_delete(files.exchange)
        await channel.exchange_delete(files.exchange + ".dead")
        responses = files.exchange.removesuffix(".deliveries") + ".responses"
        await channel.queue_delete(responses)
        await channel.queue_delete(responses + ".dead")
        await channel.exchange_delete(responses)
        licences = files.exchange.removesuffix(".deliveries") + ".licences"
        await channel.queue_delete(licences)
        await channel.queue_delete(licences + ".dead")
        await channel.exchange_delete(licences)
    finally:
        await connection.close()


async def gateway_fixture(root: Path, *, workers: int = 1,
                          **options: Any) -> AsyncIterator[Gateway]:
    """``options``: write_files' keyword arguments."""
    database = await create_database()
    files = write_files(root, database, **options)
    gateway = await start_gateway(files, workers=workers)
    try:
        yield gateway
    finally:
        if gateway.task is not None and not gateway.task.done():
            await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


# Relays on their own (tests/integration/test_relay_*.py, test_publish_*.py): a database and a
# topology of their own, rows written straight into the outbox.


async def add_submission(connection: Any, partner_id: str = "van-a") -> int:
    """A bare submission row for outbox rows to belong to."""
    submission: int = await connection.fetchval(
        "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256, status)"
        " VALUES ($1, 'sftp', 'x.edi', '', '', 'accepted') RETURNING id", partner_id)
    return submission


async def add_delivery(connection: Any, submission: int, agency: str, key: str,
                       body: bytes = b"{}") -> None:
    """An outbox row publishing ``body`` to ``agency`` under the message id ``key``."""
    from gateway.store import outbox

    await outbox.add(connection, interchange_id=submission, message_id=None, channel="amqp",
                     destination=agency, dispatch_key=key, body=body, properties={
                         "message_id": key, "correlation_id": key, "type": "Test",
                         "headers": {"agency": agency, "submission_id": submission}})


async def delete_bus(exchange: str, queue_prefix: str, agencies: tuple[str, ...]) -> None:
    """``delete_topology`` for a topology made without ``write_files``."""
    await delete_topology(Files(Path("."), Path("."), {}, exchange, queue_prefix, ""), agencies)


# SFTP (tests/integration/test_sftp_*.py): a gateway with SFTP limits of its own, and a client
# that speaks SFTP v3 packet by packet, to do what no polite client does (send EOF without
# closing its files, ask for a 4 GiB read).


async def restart_with_sftp(gateway: Gateway, **settings: object) -> Gateway:
    """Stop ``gateway``, add ``settings`` to its ``sftp:`` section and start it again (the
    caller stops the new one)."""
    await gateway.stop()
    text = gateway.files.config_path.read_text()
    extra = "".join(f"  {key}: {value}\n" for key, value in settings.items())
    gateway.files.config_path.write_text(
        text.replace("  mailboxes: mailboxes\n", f"  mailboxes: mailboxes\n{extra}", 1))
    return await start_gateway(gateway.files)


FXP_INIT, FXP_OPEN, FXP_CLOSE, FXP_READ, FXP_WRITE = 1, 3, 4, 5, 6
FXP_STATUS, FXP_HANDLE, FXP_DATA = 101, 102, 103
FXF_READ, FXF_WRITE, FXF_CREAT, FXF_TRUNC = 0x01, 0x02, 0x08, 0x10


def sftp_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


@dataclass
class RawSftp:
    """One SFTP v3 channel driven packet by packet (draft-ietf-secsh-filexfer-02)."""

    writer: asyncssh.SSHWriter[bytes]
    reader: asyncssh.SSHReader[bytes]
    next_id: int = 1

    @classmethod
    async def start(cls, connection: asyncssh.SSHClientConnection) -> RawSftp:
        writer, reader, _ = await connection.open_session(subsystem="sftp", encoding=None)
        raw = cls(writer, reader)
        writer.write(raw._frame(bytes([FXP_INIT]) + (3).to_bytes(4, "big")))
        kind, _ = await raw.receive()
        assert kind == 2, kind  # SSH_FXP_VERSION
        return raw

    @staticmethod
    def _frame(body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + body

    def send(self, kind: int, *fields: bytes) -> None:
        self.writer.write(self._frame(bytes([kind]) + self.next_id.to_bytes(4, "big")
                                      + b"".join(fields)))
        self.next_id += 1

    async def receive(self) -> tuple[int, bytes]:
        """The next reply: its type and what follows (the request id included)."""
        length = int.from_bytes(await self.reader.readexactly(4), "big")
        body = await self.reader.readexactly(length)
        return body[0], body[1:]

    async def request(self, kind: int, *fields: bytes) -> tuple[int, bytes]:
        self.send(kind, *fields)
        return await self.receive()

    async def open(self, path: bytes, pflags: int) -> bytes:
        kind, body = await self.request(FXP_OPEN, sftp_string(path), pflags.to_bytes(4, "big"),
                                        (0).to_bytes(4, "big"))
        assert kind == FXP_HANDLE, (kind, body)
        return body[8:8 + int.from_bytes(body[4:8], "big")]

    async def write(self, handle: bytes, offset: int, data: bytes) -> int:
        """The status code of one write."""
        kind, body = await self.request(FXP_WRITE, sftp_string(handle),
                                        offset.to_bytes(8, "big"), sftp_string(data))
        assert kind == FXP_STATUS, (kind, body)
        return int.from_bytes(body[4:8], "big")

    async def close(self, handle: bytes) -> tuple[int, bytes]:
        """The status code and message of closing ``handle`` (SSH_FXP_CLOSE)."""
        kind, body = await self.request(FXP_CLOSE, sftp_string(handle))
        assert kind == FXP_STATUS, (kind, body)
        return int.from_bytes(body[4:8], "big"), body[12:12 + int.from_bytes(body[8:12], "big")]

    async def read(self, handle: bytes, offset: int, length: int) -> tuple[int, bytes]:
        """(FXP_DATA, the data) or (FXP_STATUS, the status code)."""
        kind, body = await self.request(FXP_READ, sftp_string(handle),
                                        offset.to_bytes(8, "big"), length.to_bytes(4, "big"))
        if kind == FXP_DATA:
            return kind, body[8:8 + int.from_bytes(body[4:8], "big")]
        return kind, body[4:8]
