"""The SFTP endpoint: real clients (asyncssh and OpenSSH), mailbox isolation, upload patterns."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import asyncssh
import pytest

from tests.integration.test_sftp_limits import limited
from tests.support.edifact import cusdec
from tests.support.harness import Gateway


async def openssh_sftp(gateway: Gateway, partner: str, batch: Path
                       ) -> subprocess.CompletedProcess[str]:
    """Run OpenSSH's sftp client in batch mode as ``partner``."""
    key = gateway.files.partners[partner].key_path
    return await asyncio.to_thread(subprocess.run, [
        "sftp", "-b", str(batch), "-i", str(key), "-P", str(gateway.port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", f"{partner}@127.0.0.1",
    ], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("sftp") is None, reason="the OpenSSH sftp client is missing")
async def test_openssh_sftp_batch_upload(gateway: Gateway, tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "decl.edi").write_bytes(cusdec(("0201",), sender="VANA"))
    (folder / "batch").write_text(f"cd inbox\nput {folder / 'decl.edi'}\n")
    result = await openssh_sftp(gateway, "van-a", folder / "batch")
    assert result.returncode == 0, result.stderr
    (answer,) = await gateway.answers("van-a", "decl.edi")
    assert b"UCI+ICR0001+VANA" in answer
    assert len(await gateway.queue("quarantine", expect=1)) == 1
    # the partner picks the answer up from outbox/ with the same client
    (folder / "get").write_text(f"cd outbox\nget * {folder}/\n")
    result = await openssh_sftp(gateway, "van-a", folder / "get")
    assert result.returncode == 0, result.stderr
    assert any(n.endswith(".contrl.edi") for n in os.listdir(folder))


@pytest.mark.skipif(shutil.which("sftp") is None, reason="the OpenSSH sftp client is missing")
async def test_openssh_put_with_attributes_then_rename(gateway: Gateway, tmp_path: Path) -> None:
    """OpenSSH's own temporary-name flow: put -p (fsetstat of permissions and times) and -f
    (fsync), ls of the temporary, then rename (posix-rename@openssh.com)."""
    data = cusdec(("0303",), sender="VANA", control_reference="OSSH2")
    (tmp_path / "decl.edi").write_bytes(data)
    (tmp_path / "batch").write_text(
        f"cd inbox\nput -p -f {tmp_path / 'decl.edi'} decl.edi.part\nls -l\n"
        "rename decl.edi.part decl.edi\nls\n")
    result = await openssh_sftp(gateway, "van-a", tmp_path / "batch")
    assert result.returncode == 0, result.stderr
    assert "decl.edi.part" in result.stdout
    (row,) = await gateway.fetch("SELECT file_name, raw FROM interchanges")
    assert row["file_name"] == "decl.edi" and bytes(row["raw"]) == data


async def test_times_set_after_the_close_or_the_rename_succeed(
        gateway: Gateway, tmp_path: Path) -> None:
    """asyncssh's ``put(preserve=True)`` sets the file's times by name (SSH_FXP_SETSTAT) after
    its close, WinSCP after its rename: the close or rename already submitted the file, and a
    failing setstat made the client report a stored upload as failed (a script sends it
    again: a duplicate)."""
    local = tmp_path / "decl.edi"
    local.write_bytes(cusdec(("8471",), sender="VANA", control_reference="KEEP1"))
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        await sftp.put(str(local), "inbox/decl.edi", preserve=True)
        async with sftp.open("inbox/late.edi.filepart", "wb") as handle:
            await handle.write(cusdec(("8471",), sender="VANA", control_reference="KEEP2"))
        await sftp.posix_rename("inbox/late.edi.filepart", "inbox/late.edi")
        await sftp.setstat("inbox/late.edi", asyncssh.SFTPAttrs(atime=1, mtime=1))
        await sftp.chmod("inbox/late.edi", 0o640)
        # a no-op on what it submitted, not a way to change it or to reach other names
        size = len(local.read_bytes())
        await sftp.setstat("inbox/decl.edi", asyncssh.SFTPAttrs(size=size))
        with pytest.raises(asyncssh.SFTPOpUnsupported):
            await sftp.truncate("inbox/decl.edi", 0)
        for never in ("inbox/other.edi", "inbox/late.edi.filepart"):
            with pytest.raises(asyncssh.SFTPNoSuchFile):
                await sftp.setstat(never, asyncssh.SFTPAttrs(atime=1, mtime=1))
        async with gateway.connect("van-a") as other, other.start_sftp_client() as theirs:
            with pytest.raises(asyncssh.SFTPNoSuchFile):  # another session submitted nothing
                await theirs.setstat("inbox/decl.edi", asyncssh.SFTPAttrs(atime=1, mtime=1))
    (answer,) = await gateway.answers("van-a", "decl.edi")
    assert b"UCI+KEEP1" in answer
    (answer,) = await gateway.answers("van-a", "late.edi")
    assert b"UCI+KEEP2" in answer
    assert len(await gateway.fetch("SELECT id FROM interchanges")) == 2


async def test_a_session_remembers_only_its_last_submissions(gateway: Gateway) -> None:
    """As many names as files it may hold open: a long session keeps no growing list."""
    async with limited(gateway, max_open_files=2) as gw, gw.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        for reference in ("A1", "A2", "A3"):
            async with sftp.open(f"inbox/{reference}.edi", "wb") as handle:
                await handle.write(cusdec(sender="VANA", control_reference=reference))
        times = asyncssh.SFTPAttrs(atime=1, mtime=1)
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await sftp.setstat("inbox/A1.edi", times)
        for kept in ("inbox/A2.edi", "inbox/A3.edi"):
            await sftp.setstat(kept, times)


@pytest.mark.skipif(shutil.which("sftp") is None, reason="the OpenSSH sftp client is missing")
async def test_openssh_chmod_after_put(gateway: Gateway, tmp_path: Path) -> None:
    """A script's ``put`` then ``chmod`` (SSH_FXP_SETSTAT by name after the close): batch mode
    stops, and the script fails, at a command that fails."""
    (tmp_path / "decl.edi").write_bytes(cusdec(("0303",), sender="VANA", control_reference="CHM"))
    (tmp_path / "batch").write_text(
        f"cd inbox\nput -p {tmp_path / 'decl.edi'} decl.edi\nchmod 640 decl.edi\n")
    result = await openssh_sftp(gateway, "van-a", tmp_path / "batch")
    assert result.returncode == 0, result.stderr
    (answer,) = await gateway.answers("van-a", "decl.edi")
    assert b"UCI+CHM" in answer


async def test_a_key_cannot_log_in_as_another_partner(gateway: Gateway) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        async with gateway.connect("van-a", username="van-b"):
            pass
    with pytest.raises(asyncssh.PermissionDenied):
        async with gateway.connect("van-a", username="nobody"):
            pass


async def test_a_partner_sees_only_its_own_mailbox(gateway: Gateway) -> None:
    await gateway.upload("van-b", "b.edi", cusdec(sender="VANB"))
    await gateway.answers("van-b", "b.edi")
    answer, _ = sorted(os.listdir(gateway.files.mailbox("van-b") / "outbox"))  # and .p7s
    async with gateway.connect("van-a") as connection, connection.start_sftp_client() as sftp:
        root = sorted(await sftp.listdir("/"))
        assert root == [".", "..", "inbox", "outbox"]
        for above in ("/..", "../..", "/../../.."):  # climbing out stops at A's own mailbox
            assert sorted(await sftp.listdir(above)) == root
        for escape in (f"/../van-b/outbox/{answer}", f"../van-b/outbox/{answer}",
                       f"/../../mailboxes/van-b/outbox/{answer}"):
            assert not await sftp.exists(escape)
            with pytest.raises(asyncssh.SFTPError):  # no such file, or not a mailbox folder
                await sftp.open(escape, "rb")
        with pytest.raises(asyncssh.SFTPError):
            await sftp.open("/../van-b/outbox/x", "wb")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open("outbox/forged.contrl.edi", "wb")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.mkdir("inbox/sub")



async def test_a_listing_names_the_partner_not_the_gateway_account(gateway: Gateway) -> None:
    """``ls -l`` used to show the gateway's Unix user and group (looked up on the event loop)."""
    import pwd

    await gateway.upload("van-a", "a.edi", cusdec(sender="VANA"))
    await gateway.answers("van-a", "a.edi")
    account = pwd.getpwuid(os.getuid()).pw_name
    async with gateway.connect("van-a") as connection, connection.start_sftp_client() as sftp:
        names = await sftp.readdir("outbox")
    longnames = [n.longname for n in names if n.filename.startswith("a.edi")]
    assert longnames and all(" van-a " in str(n) for n in longnames)
    assert not any(f" {account} " in str(n) for n in longnames)


@pytest.mark.parametrize("temporary", [
    "decl.edi.part", "decl.edi.filepart", "decl.edi.tmp", "decl.edi.temp", "decl.edi.partial",
    "decl.edi.upload", "decl.edi.inprogress", "decl.edi.INPROGRESS", ".decl.edi",
])
async def test_upload_to_a_temporary_name_then_rename(gateway: Gateway, temporary: str) -> None:
    data = cusdec(("0303",), sender="VANA", control_reference="TMP1")
    async with gateway.connect("van-a") as connection, connection.start_sftp_client() as sftp:
        async with sftp.open(f"inbox/{temporary}", "wb") as handle:
            await handle.write(data)
        assert await gateway.fetch("SELECT id FROM interchanges") == []  # not yet submitted
        await sftp.posix_rename(f"inbox/{temporary}", "inbox/decl.edi")
    (answer,) = await gateway.answers("van-a", "decl.edi")
    assert b"UCI+TMP1" in answer
    (row,) = await gateway.fetch("SELECT file_name, raw FROM interchanges")
    assert row["file_name"] == "decl.edi" and bytes(row["raw"]) == data


async def test_a_broken_upload_is_not_a_submission(gateway: Gateway) -> None:
    connection = await gateway.connect("van-a")
    sftp = await connection.start_sftp_client()
    handle = await sftp.open("inbox/half.edi", "wb")
    await handle.write(cusdec(sender="VANA")[:100])
    connection.abort()  # the network breaks before the client closes the file
    await asyncio.sleep(1.0)
    assert await gateway.fetch("SELECT id FROM interchanges") == []
    assert not (gateway.files.mailbox("van-a") / "inbox" / "half.edi").exists()


async def test_an_oversized_upload_is_refused_and_nothing_is_stored(gateway: Gateway) -> None:
    data = cusdec(sender="VANA") + b"FTX+AAA+++" + b"x" * 1_000_000 + b"'"
    with pytest.raises(asyncssh.SFTPFailure, match="too large"):
        await gateway.upload("van-a", "huge.edi", data)
    assert await gateway.fetch("SELECT id FROM interchanges") == []
    assert not (gateway.files.mailbox("van-a") / "inbox" / "huge.edi").exists()
