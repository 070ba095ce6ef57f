"""Issue 16 item 1: partners' outboxes in the database (``sftp.mailbox_store: database``).
Two ``gateway serve`` processes (two nodes) on one database and one broker, each with its own
mailbox directory: whichever node a partner reaches, it sees the same outbox/, every answer
once, with its signature; a node killed mid-work loses and doubles nothing.  Hostile: a
partner reaches no other partner's files and writes none into outbox/."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from gateway.app.mailbox_purge import MailboxPurge
from gateway.app.relay import MailboxDispatcher, Relay
from gateway.config.load import load_config
from gateway.errors import StoreUnavailable
from gateway.store import mailbox_files, outbox
from gateway.store.outbox import OutboxRow
from tests.integration.test_sftp import openssh_sftp
from tests.support.agencies import (
    DEMO,
    agency_settings,
    provisioned_agencies,
    running_adapters,
    unique_users,
)
from tests.support.cms import openssl_verifies
from tests.support.edifact import cusdec
from tests.support.harness import (
    DEMO_AGENCIES,
    FXF_CREAT,
    FXF_READ,
    FXF_WRITE,
    FXP_DATA,
    FXP_OPEN,
    FXP_STATUS,
    Client,
    Files,
    Gateway,
    RawSftp,
    add_submission,
    create_database,
    delete_topology,
    drop_database,
    gateway_fixture,
    sftp_outbox,
    sftp_string,
    write_files,
)
from tests.support.nodes import Node, nodes
from tests.support.signing import signer_for_tests

FISH = (DEMO / "samples/cusdec-frozen-fish.edi").read_bytes().replace(
    b"DEMOVAN:ZZZ", b"VANA:ZZZ")
DECLARATION = "DEC-2026-000123"
CONTRL = re.compile(r".+\.[0-9]+\.contrl\.edi")
#: SFTP status codes (draft-ietf-secsh-filexfer-02 section 7).
FX_NO_SUCH_FILE, FX_PERMISSION_DENIED = 2, 3


@dataclass
class Cluster:
    files: Files
    tmp: Path
    users: dict[str, str]  # agency code -> its broker user


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """A database, a topology and agency broker users for nodes to share (the nodes are
    started by each test)."""
    database = await create_database()
    users = unique_users(DEMO_AGENCIES)
    files = write_files(tmp_path, database, agency_settings=agency_settings(users),
                        mailbox_store="database")
    try:
        yield Cluster(files, tmp_path, users)
    finally:
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


def no_files_on_disk(cluster: Cluster, *names: str) -> None:
    """Nothing of an answer on any node's disk: the mailboxes hold the inbox folders only."""
    for name in names:
        folders = list((cluster.files.root / f"mailboxes-{name}").glob("*/outbox"))
        assert len(folders) == 2  # van-a's and van-b's, made at the start
        for folder in folders:
            assert list(folder.iterdir()) == [], folder


async def listing(client: Client, partner: str) -> dict[str, tuple[int, int]]:
    """outbox/ as ``ls -l`` shows it over SFTP: name -> (size, mtime)."""
    async with client.connect(partner) as connection, \
            connection.start_sftp_client() as sftp:
        return {entry.filename: (entry.attrs.size or 0, entry.attrs.mtime or 0)
                for entry in await sftp.readdir("outbox")
                if entry.filename not in (".", "..")}


async def test_a_partner_uploads_to_one_node_and_collects_from_the_other(
        cluster: Cluster) -> None:
    """CONTRL and each agency's CUSRES, each beside its signature, uploaded through node A
    and collected through node B; listed alike on both (names, sizes, times); deleted
    through B, gone on A at once; nothing on either node's disk."""
    config = load_config(cluster.files.config_path, environ={})
    deciding = {code: cluster.users[code] for code in ("customs", "quarantine")}
    contrl = "fish.edi.1.contrl.edi"
    sent = [contrl, *(f"{DECLARATION}.1.1.{agency}.{n}.cusres.edi"
                      for agency in ("customs", "quarantine") for n in (1, 2))]
    async with nodes(cluster.files, "a", "b") as running:
        a, b = running["a"].client, running["b"].client
        async with provisioned_agencies(config, deciding), \
                running_adapters(config, cluster.tmp, "customs", "quarantine"):
            await a.upload("van-a", "fish.edi", FISH)
            await b.outbox_files("van-a", re.compile("|".join(map(re.escape, sent))), 5)
            await b.settled()
        files = await sftp_outbox(b, "van-a")
        assert sorted(files) == sorted([*sent, *(f"{name}.p7s" for name in sent)])
        assert b"UCI+" in files[contrl]
        ca = cluster.files.root / "pki" / "ca.crt"
        for name in sent:  # as the partner checks them, with the files it downloaded
            (cluster.tmp / name).write_bytes(files[name])
            (cluster.tmp / f"{name}.p7s").write_bytes(files[f"{name}.p7s"])
            assert openssl_verifies(cluster.tmp / name, cluster.tmp / f"{name}.p7s", ca), name
        (record,) = await b.fetch(
            "SELECT count(*) AS n FROM signed_answers s JOIN mailbox_files f"
            " ON f.name = s.file_name AND f.partner_id = 'van-a'")
        assert record["n"] == 5  # the record names the file the partner reads

        on_a, on_b = await listing(a, "van-a"), await listing(b, "van-a")
        assert on_a == on_b
        assert {n: size for n, (size, _) in on_a.items()} == {
            n: len(body) for n, body in files.items()}
        async with b.connect("van-a") as connection, \
                connection.start_sftp_client() as sftp:
            await sftp.remove(f"outbox/{contrl}")
            await sftp.remove(f"outbox/{contrl}.p7s")
        async with a.connect("van-a") as connection, \
                connection.start_sftp_client() as sftp:
            assert contrl not in await sftp.listdir("outbox")
            with pytest.raises(asyncssh.SFTPNoSuchFile):
                await sftp.stat(f"outbox/{contrl}")
            with pytest.raises(asyncssh.SFTPNoSuchFile):  # deleted once: not twice
                await sftp.remove(f"outbox/{contrl}")
        assert sorted(await listing(a, "van-a")) == sorted(
            n for n in files if not n.startswith(contrl))
    no_files_on_disk(cluster, "a", "b")


async def upload_all(node: Node, count: int, tag: str) -> list[str]:
    names = []
    for n in range(count):
        name = f"{tag}{n}.edi"
        await node.client.upload("van-a", name, cusdec(sender="VANA",
                                                         control_reference=f"{tag}{n}"))
        names.append(name)
    return names


async def exactly_once(client: Client, names: list[str]) -> None:
    """Each upload answered by one CONTRL and its signature, no answer twice, by name or by
    content, in the outbox nor in the table (removed rows included)."""
    contrls = await client.outbox_files("van-a", CONTRL, len(names))
    await client.settled()
    everything = await sftp_outbox(client, "van-a")
    contrls = {n: body for n, body in everything.items() if CONTRL.fullmatch(n)}
    assert sorted(n.split(".edi.")[0] + ".edi" for n in contrls) == sorted(names)
    assert len(set(contrls.values())) == len(names)
    assert sorted(everything) == sorted([*contrls, *(f"{n}.p7s" for n in contrls)])
    (row,) = await client.fetch("SELECT count(*) AS n, count(DISTINCT name) AS d,"
                                " count(*) FILTER (WHERE removed_at IS NOT NULL) AS removed"
                                " FROM mailbox_files")
    assert (row["n"], row["d"], row["removed"]) == (2 * len(names), 2 * len(names), 0)
    (row,) = await client.fetch("SELECT count(*) AS n FROM events WHERE kind = 'acknowledged'")
    assert row["n"] == len(names)


async def test_uploads_spread_over_two_nodes_are_each_answered_once(cluster: Cluster) -> None:
    async with nodes(cluster.files, "a", "b") as running:
        names = [*await asyncio.gather(upload_all(running["a"], 8, "A"),
                                       upload_all(running["b"], 8, "B"))]
        await exactly_once(running["a"].client, [*names[0], *names[1]])
        # each node saw some of them through: its own relay, or the other's
        (row,) = await running["a"].client.fetch("SELECT count(*) AS n FROM interchanges")
        assert row["n"] == 16
    no_files_on_disk(cluster, "a", "b")


async def test_a_node_killed_while_relaying_loses_and_doubles_nothing(
        cluster: Cluster) -> None:
    """Node A takes uploads and is killed (SIGKILL) the moment the last one is accepted,
    while it decides and writes their answers; node B finishes: every answer once."""
    async with nodes(cluster.files, "a", "b") as running:
        names = await upload_all(running["a"], 20, "K")
        await running["a"].kill()  # measured: 18 or 19 of the 20 answered by then
        (row,) = await running["b"].client.fetch("SELECT count(*) AS n FROM interchanges")
        assert row["n"] == 20  # every upload that succeeded was accepted
        await exactly_once(running["b"].client, names)
    assert '"stopped"' not in running["a"].log_text()  # killed, not stopped


# --- the relay and the purge on their own ---------------------------------------------------


async def add_answer(connection: Any, name: str, partner: str = "van-a") -> int:
    submission = await add_submission(connection, partner)
    return await outbox.add(
        connection, interchange_id=submission, message_id=None, channel="mailbox",
        destination=partner, dispatch_key=name, body=f"answer {name}".encode(),
        properties={"file_name": name, "kind": "CONTRL"})


async def test_answers_and_signatures_are_written_with_the_dispatch_or_not_at_all(
        pool: Any) -> None:
    """The files are inserted in the transaction that marks the rows dispatched: when it
    fails after the insert, neither the files nor the mark are there, and the next try
    writes each file once."""
    async with pool.acquire() as connection:
        for n in range(3):
            await add_answer(connection, f"x{n}.edi.{n}.contrl.edi")
    writer = MailboxDispatcher(None, signer_for_tests())

    async def record_then_fail(connection: Any, rows: list[OutboxRow]) -> list[dict[str, Any]]:
        await writer.record(connection, rows)
        raise StoreUnavailable("the connection broke before the commit")

    failing = Relay(pool, "mailbox", writer, asyncio.Event(), on_done=record_then_fail)
    with pytest.raises(StoreUnavailable):
        await failing.dispatch_batch()
    async with pool.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM mailbox_files") == 0
        assert await connection.fetchval(
            "SELECT count(*) FROM outbox WHERE dispatched_at IS NULL") == 3
    relay = Relay(pool, "mailbox", writer, asyncio.Event(), on_done=writer.record)
    assert await relay.dispatch_batch() == 3
    assert await relay.dispatch_batch() == 0
    async with pool.acquire() as connection:
        files = await mailbox_files.listing(connection, "van-a")
        signed = {r["file_name"]: r["signature_sha256"] for r in await connection.fetch(
            "SELECT file_name, signature_sha256 FROM signed_answers")}
        assert sorted(f.name for f in files) == sorted(
            n for k in range(3) for n in (f"x{k}.edi.{k}.contrl.edi",
                                          f"x{k}.edi.{k}.contrl.edi.p7s"))
        assert await connection.fetchval("SELECT count(*) FROM mailbox_files") == 6
        for found in files:  # the signature recorded is the one the partner reads
            if found.name.endswith(".p7s"):
                body = await mailbox_files.read(connection, found.id, 0, found.size)
                assert hashlib.sha256(body).hexdigest() == signed[found.name[:-4]]


async def test_a_file_no_outbox_takes_is_parked_and_holds_back_no_one(pool: Any) -> None:
    """A destination that is no partner's mailbox name is refused as on disk: its row is
    parked (undeliverable) and the rows beside it are written."""
    async with pool.acquire() as connection:
        bad = await add_answer(connection, "x.edi.1.contrl.edi", partner="../van-b")
        await add_answer(connection, "y.edi.2.contrl.edi")
    writer = MailboxDispatcher(None, signer_for_tests())
    relay = Relay(pool, "mailbox", writer, asyncio.Event(), on_done=writer.record)
    assert await relay.dispatch_batch() == 2
    async with pool.acquire() as connection:
        rows = await connection.fetch("SELECT partner_id, name FROM mailbox_files ORDER BY name")
        assert [(r["partner_id"], r["name"]) for r in rows] == [
            ("van-a", "y.edi.2.contrl.edi"), ("van-a", "y.edi.2.contrl.edi.p7s")]
        parked = await connection.fetchrow("SELECT parked_at, last_error FROM outbox"
                                           " WHERE id = $1", bad)
        assert parked["parked_at"] is not None and "refusing partner id" in parked["last_error"]


async def test_files_deleted_long_enough_ago_are_purged(pool: Any) -> None:
    async with pool.acquire() as connection:
        await mailbox_files.put_many(connection, [("van-a", f"f{n}.1.contrl.edi", b"x")
                                                  for n in range(5)])
        for n in (0, 1):
            assert await mailbox_files.remove(connection, "van-a", f"f{n}.1.contrl.edi")
        await connection.execute("UPDATE mailbox_files SET removed_at = now() - interval"
                                 " '31 days' WHERE name = 'f0.1.contrl.edi'")
        assert not await mailbox_files.remove(connection, "van-a", "f0.1.contrl.edi")
    purge = MailboxPurge(pool, retention_days=30)
    assert await purge.purge() is False  # one purged, less than a batch: nothing more due
    async with pool.acquire() as connection:
        left = await connection.fetch("SELECT name, removed_at IS NULL AS present"
                                      " FROM mailbox_files ORDER BY name")
    assert [(r["name"], r["present"]) for r in left] == [
        ("f1.1.contrl.edi", False), *((f"f{n}.1.contrl.edi", True) for n in (2, 3, 4))]


# --- hostile ------------------------------------------------------------------------------


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for running in gateway_fixture(tmp_path, mailbox_store="database"):
        yield running


async def open_status(raw: RawSftp, path: bytes, pflags: int = FXF_READ) -> int:
    """The status code an SSH_FXP_OPEN of ``path`` is refused with (fails if it opens)."""
    kind, body = await raw.request(FXP_OPEN, sftp_string(path), pflags.to_bytes(4, "big"),
                                   (0).to_bytes(4, "big"))
    assert kind == FXP_STATUS, (path, kind, body)
    return int.from_bytes(body[4:8], "big")


async def test_a_partner_reaches_no_other_partners_files(gateway: Gateway) -> None:
    await gateway.upload("van-b", "theirs.edi", cusdec(sender="VANB", control_reference="T1"))
    (theirs,) = await gateway.outbox_files("van-b", CONTRL, 1)
    async with gateway.connect("van-a") as connection:
        async with connection.start_sftp_client() as sftp:
            assert await sftp.listdir("outbox") == [".", ".."]
            for path in (f"outbox/{theirs}", f"../van-b/outbox/{theirs}",
                         f"/../van-b/outbox/{theirs}", f"/van-b/outbox/{theirs}",
                         f"outbox/../../van-b/outbox/{theirs}", f"outbox/../van-b/{theirs}",
                         f"outbox/{'x' * 300}", f"outbox/.{theirs}", "outbox/%", "outbox/*"):
                with pytest.raises(asyncssh.SFTPNoSuchFile):
                    await sftp.open(path, "rb")
                with pytest.raises(asyncssh.SFTPNoSuchFile):
                    await sftp.stat(path)
                with pytest.raises((asyncssh.SFTPNoSuchFile, asyncssh.SFTPPermissionDenied)):
                    await sftp.remove(path)
            for path in ("outbox/x.contrl.edi", f"outbox/{theirs}", "/outbox/forged.edi",
                         f"../van-b/outbox/{theirs}"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await sftp.open(path, "wb")
        raw = await RawSftp.start(connection)
        for name in (f"outbox/{theirs}\x00".encode(), f"outbox/\x00{theirs}".encode(),
                     b"outbox/\xff\xfe" + theirs.encode(), b"outbox/" + b"\x00" * 10,
                     b"outbox/" + b"y" * 70000):
            assert await open_status(raw, name) == FX_NO_SUCH_FILE, name[:80]
        assert await open_status(raw, b"outbox/forged.edi",
                                 FXF_WRITE | FXF_CREAT) == FX_PERMISSION_DENIED
    found = await gateway.outbox_files("van-b", re.compile(".*"), 2)
    assert sorted(found) == [theirs, f"{theirs}.p7s"]  # still there, whole
    (row,) = await gateway.fetch("SELECT count(*) AS n FROM mailbox_files")
    assert row["n"] == 2  # nothing written by van-a's attempts


@pytest.mark.skipif(shutil.which("sftp") is None, reason="the OpenSSH sftp client is missing")
async def test_openssh_lists_fetches_and_deletes_answers_in_the_database(
        gateway: Gateway, tmp_path: Path) -> None:
    """The outbox as OpenSSH's sftp sees it: ls -l, get * (stat, open, reads), rm."""
    await gateway.upload("van-a", "decl.edi", cusdec(sender="VANA", control_reference="O1"))
    (answer,) = await gateway.outbox_files("van-a", CONTRL, 1)
    got = tmp_path / "got"
    got.mkdir()
    (tmp_path / "batch").write_text(f"cd outbox\nls -l\nget * {got}/\nrm {answer}\nls\n")
    result = await openssh_sftp(gateway, "van-a", tmp_path / "batch")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(got)) == [answer, f"{answer}.p7s"]
    assert b"UCI+O1+VANA" in (got / answer).read_bytes()
    listed = result.stdout.split("sftp> ls\n")[1]
    assert f"{answer}.p7s" in listed and f"{answer}\n" not in listed
    assert "van-a" in result.stdout.split("sftp> ls -l\n")[1]  # owner: the partner itself
    (row,) = await gateway.fetch("SELECT count(*) AS n FROM mailbox_files"
                                 " WHERE removed_at IS NULL")
    assert row["n"] == 1


async def test_a_large_answer_is_read_by_range(gateway: Gateway) -> None:
    """Each READ reads its own range from the database (the body stored uncompressed out of
    line: PostgreSQL fetches only the chunks of the range); the whole file arrives intact,
    a range in the middle, the end and past it as well."""
    body = bytes(range(256)) * (12 * 4096)  # 12 MiB
    await gateway.fetch("INSERT INTO mailbox_files (partner_id, name, body)"
                        " VALUES ('van-a', 'big.1.contrl.edi', $1)", body)
    (row,) = await gateway.fetch(
        "SELECT attstorage::text AS attstorage FROM pg_attribute"
        " WHERE attrelid = 'mailbox_files'::regclass AND attname = 'body'")
    assert row["attstorage"] == "e"
    async with gateway.connect("van-a") as connection:
        async with connection.start_sftp_client() as sftp:
            assert (await sftp.stat("outbox/big.1.contrl.edi")).size == len(body)
            async with sftp.open("outbox/big.1.contrl.edi", "rb") as handle:
                assert await handle.read() == body
        raw = await RawSftp.start(connection)
        handle = await raw.open(b"outbox/big.1.contrl.edi", FXF_READ)
        middle = 5 * 1024 * 1024 + 7
        assert await raw.read(handle, middle, 1000) == (FXP_DATA, body[middle:middle + 1000])
        assert await raw.read(handle, len(body) - 10, 1000) == (FXP_DATA, body[-10:])
        kind, status = await raw.read(handle, len(body), 1000)
        assert kind == FXP_STATUS and int.from_bytes(status, "big") == 1  # SSH_FX_EOF
        # deleted while open: the open handle reads on, as a file unlinked on disk
        async with connection.start_sftp_client() as sftp:
            await sftp.remove("outbox/big.1.contrl.edi")
            assert await sftp.listdir("outbox") == [".", ".."]
        assert await raw.read(handle, 0, 100) == (FXP_DATA, body[:100])
        await raw.close(handle)
