"""SFTP uploads as unlucky or hostile clients make them: two handles on one name, a client that
dies with its channel half closed, renames onto folders and open files, names that are no file
names, files that grow past the limit while they are written."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncssh
import pytest

from tests.support.edifact import cusdec
from tests.support.harness import (
    FXF_CREAT,
    FXF_TRUNC,
    FXF_WRITE,
    FXP_CLOSE,
    FXP_STATUS,
    Gateway,
    RawSftp,
    sftp_string,
)

FX_OK = 0


async def submitted(gateway: Gateway) -> list[tuple[str, bytes]]:
    await gateway.settled()
    rows = await gateway.fetch("SELECT file_name, raw FROM interchanges ORDER BY id")
    return [(r["file_name"], bytes(r["raw"])) for r in rows]


def declaration(reference: str) -> bytes:
    return cusdec(("0303",), sender="VANA", control_reference=reference)


async def test_two_sessions_writing_one_name_each_store_their_own_bytes(
        gateway: Gateway) -> None:
    """A retry after a timeout, or two overlapping cron jobs: both write inbox/x.edi at once.
    Each close that succeeds stored the bytes of its own handle."""
    first, second = declaration("FIRST1") + b"\n" * 50, declaration("SECOND2")
    async with gateway.connect("van-a") as one, one.start_sftp_client() as sftp_one, \
            gateway.connect("van-a") as two, two.start_sftp_client() as sftp_two:
        handle_one = await sftp_one.open("inbox/x.edi", "wb")
        handle_two = await sftp_two.open("inbox/x.edi", "wb")
        await handle_one.write(first)
        await handle_two.write(second)
        await handle_one.close()
        await handle_two.close()
    assert await submitted(gateway) == [("x.edi", first), ("x.edi", second)]


async def test_two_handles_of_one_session_on_one_name_are_two_uploads(gateway: Gateway) -> None:
    first, second = declaration("FIRST1"), declaration("SECOND2") + b"\n" * 10
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        handle_one = await sftp.open("inbox/x.edi", "wb")
        handle_two = await sftp.open("inbox/x.edi", "wb")
        await handle_two.write(second)
        await handle_one.write(first)
        await handle_two.close()
        await handle_one.close()
    assert await submitted(gateway) == [("x.edi", second), ("x.edi", first)]


async def test_a_client_that_dies_with_its_channel_half_closed_submits_nothing(
        gateway: Gateway) -> None:
    """The client process dies mid-upload and its SSH transport sends EOF on the channel
    without SSH_FXP_CLOSE: the session's end closes the handle, which is not the client's
    close, so nothing is submitted, and nothing is left half accepted."""
    async with gateway.connect("van-a") as connection:
        raw = await RawSftp.start(connection)
        handle = await raw.open(b"inbox/half.edi", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        assert await raw.write(handle, 0, declaration("HALF1")[:120]) == FX_OK
        raw.writer.write_eof()
        await raw.writer.channel.wait_closed()  # the server has ended the session
        assert await submitted(gateway) == []
        # the connection is alive: the same partner uploads normally right after
        async with connection.start_sftp_client() as sftp:
            assert await sftp.listdir("inbox") == [".", ".."]
            async with sftp.open("inbox/whole.edi", "wb") as handle_file:
                await handle_file.write(declaration("WHOLE1"))
    assert [name for name, _ in await submitted(gateway)] == ["whole.edi"]


async def test_a_close_sent_just_before_eof_is_the_clients_close(gateway: Gateway) -> None:
    """What counts is SSH_FXP_CLOSE, not the channel's state when it is handled: a client
    that closes its file and ends its input without waiting still has its upload submitted
    and is told so."""
    data = declaration("EOF1")
    async with gateway.connect("van-a") as connection:
        raw = await RawSftp.start(connection)
        handle = await raw.open(b"inbox/eager.edi", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        assert await raw.write(handle, 0, data) == FX_OK
        raw.send(FXP_CLOSE, sftp_string(handle))
        raw.writer.write_eof()
        kind, body = await raw.receive()
        assert (kind, body[4:8]) == (FXP_STATUS, bytes(4)), body
        await raw.writer.channel.wait_closed()
    assert await submitted(gateway) == [("eager.edi", data)]


@pytest.mark.skipif(shutil.which("sftp") is None, reason="the OpenSSH sftp client is missing")
async def test_an_openssh_client_killed_mid_upload_submits_nothing(
        gateway: Gateway, tmp_path: Path) -> None:
    """``sftp`` is killed while it uploads: its ssh process sees its input end and sends EOF
    on the channel, which stays half open until the server ends the session."""
    source = tmp_path / "slow.edi"
    source.write_bytes(declaration("KILL1") + b"\n" * 100_000)
    key = gateway.files.partners["van-a"].key_path
    client = await asyncio.create_subprocess_exec(
        "sftp", "-vvv", "-B", "1024", "-R", "1", "-l", "8", "-b", "-", "-i", str(key),
        "-P", str(gateway.port), "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "van-a@127.0.0.1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    assert client.stdin is not None and client.stderr is not None
    client.stdin.write(f"put {source} inbox/slow.edi\n".encode())
    client.stdin.close()
    trace = b""
    async for line in client.stderr:  # sftp's own trace (-vvv): the server took a write
        trace += line
        if b"In write loop, ack for" in line:
            break
    assert b"In write loop, ack for" in trace, trace.decode(errors="replace")
    client.kill()
    await client.wait()
    # ssh shares sftp's stderr: it is closed once ssh has gone, after the server ended the
    # session (nothing here waits for a time to pass)
    await asyncio.wait_for(client.stderr.read(), 60)
    assert await submitted(gateway) == []


async def test_a_rename_needs_a_file_name_and_a_closed_temporary(gateway: Gateway) -> None:
    data = declaration("REN1")
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        async with sftp.open("inbox/decl.edi.part", "wb") as handle:
            await handle.write(data)
        for folder in ("inbox/", "inbox", "inbox/.", "/inbox/../inbox/"):  # not a file name
            with pytest.raises(asyncssh.SFTPFailure, match="folder"):
                await sftp.posix_rename("inbox/decl.edi.part", folder)
            with pytest.raises(asyncssh.SFTPFailure, match="folder"):
                await sftp.rename("inbox/decl.edi.part", folder)
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.posix_rename("inbox/decl.edi.part", "outbox/decl.edi")
        # a name being written in this session is taken: the rename would hide that upload
        writing = await sftp.open("inbox/decl.edi", "wb")
        with pytest.raises(asyncssh.SFTPFailure, match="open"):
            await sftp.posix_rename("inbox/decl.edi.part", "inbox/decl.edi")
        # an upload still being written cannot be renamed: its bytes are not all there
        with pytest.raises(asyncssh.SFTPFailure, match="close"):
            await sftp.posix_rename("inbox/decl.edi", "inbox/other.edi")
        await writing.write(data)
        await writing.close()
        assert await submitted(gateway) == [("decl.edi", data)]
        # the temporary is still there, and the right rename submits it
        await sftp.posix_rename("inbox/decl.edi.part", "inbox/final.edi")
    assert await submitted(gateway) == [("decl.edi", data), ("final.edi", data)]


async def test_a_partial_upload_cannot_be_renamed_into_a_submission(gateway: Gateway) -> None:
    data = declaration("PART1")
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        handle = await sftp.open("inbox/decl.edi.part", "wb")
        await handle.write(data[:50])
        with pytest.raises(asyncssh.SFTPFailure, match="close"):
            await sftp.posix_rename("inbox/decl.edi.part", "inbox/decl.edi")
        await handle.write(data[50:], 50)
        await handle.close()
        await sftp.posix_rename("inbox/decl.edi.part", "inbox/decl.edi")
    assert await submitted(gateway) == [("decl.edi", data)]


async def test_another_session_cannot_touch_an_upload_in_progress(gateway: Gateway) -> None:
    data = declaration("MINE1")
    async with gateway.connect("van-a") as one, one.start_sftp_client() as sftp_one, \
            gateway.connect("van-a") as two, two.start_sftp_client() as sftp_two:
        handle = await sftp_one.open("inbox/mine.edi", "wb")
        await handle.write(data)
        async with sftp_one.open("inbox/mine.edi.part", "wb") as parked:
            await parked.write(b"temporary")
        for name in ("inbox/mine.edi", "inbox/mine.edi.part"):
            with pytest.raises(asyncssh.SFTPNoSuchFile):
                await sftp_two.remove(name)
            with pytest.raises(asyncssh.SFTPNoSuchFile):
                await sftp_two.posix_rename(name, "inbox/stolen.edi")
            assert not await sftp_two.exists(name)
        assert await sftp_two.listdir("inbox") == [".", ".."]
        await handle.close()
        await sftp_one.posix_rename("inbox/mine.edi.part", "inbox/parked.edi")
    assert await submitted(gateway) == [("mine.edi", data), ("parked.edi", b"temporary")]


async def test_a_session_sees_its_own_uploads_in_inbox(gateway: Gateway) -> None:
    """ls and stat of inbox/ show what the session is writing and its temporaries waiting for
    their rename; a submitted file is gone (the gateway has taken it)."""
    data = declaration("SEE1")
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        handle = await sftp.open("inbox/a.edi", "wb")
        await handle.write(data[:10])
        async with sftp.open("inbox/b.edi.filepart", "wb") as parked:
            await parked.write(data)
        assert sorted(await sftp.listdir("inbox")) == [".", "..", "a.edi", "b.edi.filepart"]
        assert (await sftp.stat("inbox/a.edi")).size == 10
        assert (await sftp.stat("inbox/b.edi.filepart")).size == len(data)
        assert await sftp.isfile("inbox/b.edi.filepart")
        assert await sftp.isdir("inbox")
        await handle.write(data[10:], 10)
        await handle.close()
        assert sorted(await sftp.listdir("inbox")) == [".", "..", "b.edi.filepart"]
        await sftp.rename("inbox/b.edi.filepart", "inbox/b.edi")  # SSH_FXP_RENAME (v3)
        assert await sftp.listdir("inbox") == [".", ".."]
        assert not await sftp.exists("inbox/a.edi")
        # a removed temporary is never submitted
        async with sftp.open("inbox/c.edi.tmp", "wb") as dropped:
            await dropped.write(data)
        await sftp.remove("inbox/c.edi.tmp")
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await sftp.posix_rename("inbox/c.edi.tmp", "inbox/c.edi")
    assert [name for name, _ in await submitted(gateway)] == ["a.edi", "b.edi"]


async def test_a_temporary_reopened_without_truncation_is_written_on(gateway: Gateway) -> None:
    """Within a session a temporary waiting for its rename is a file like any other: reopened
    for writing without truncation it keeps its bytes (a resumed upload), with truncation it
    starts again, and an exclusive create finds it there."""
    data = declaration("RES1")
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        async with sftp.open("inbox/r.edi.part", "wb") as handle:
            await handle.write(data[:40])
        with pytest.raises(asyncssh.SFTPFailure, match="exists"):
            await sftp.open("inbox/r.edi.part", "xb")
        size = (await sftp.stat("inbox/r.edi.part")).size
        async with sftp.open("inbox/r.edi.part", "r+b") as handle:
            await handle.write(data[size:], size)
        await sftp.posix_rename("inbox/r.edi.part", "inbox/r.edi")
        async with sftp.open("inbox/s.edi.part", "wb") as handle:
            await handle.write(b"garbage" * 100)
        async with sftp.open("inbox/s.edi.part", "wb") as handle:  # truncates
            await handle.write(data)
        await sftp.posix_rename("inbox/s.edi.part", "inbox/s.edi")
    assert await submitted(gateway) == [("r.edi", data), ("s.edi", data)]


@pytest.mark.parametrize("name", [
    b"", b"nul\x00.edi", b"line\nbreak.edi", b"esc\x1b[2J.edi", b"del\x7f.edi",
    b"c1\xc2\x85.edi", b"a" * 256,
])
async def test_a_name_that_is_no_file_name_is_refused_before_any_byte(
        gateway: Gateway, name: bytes) -> None:
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client(path_encoding=None) as sftp:
        with pytest.raises(asyncssh.SFTPError) as refused:
            await sftp.open(b"inbox/" + name, "wb")
        assert refused.value.code in (asyncssh.FX_FAILURE, asyncssh.FX_PERMISSION_DENIED)
        async with sftp.open(b"inbox/ok.edi.part", "wb") as handle:
            await handle.write(declaration("NAME1"))
        with pytest.raises(asyncssh.SFTPError):
            await sftp.posix_rename(b"inbox/ok.edi.part", b"inbox/" + name)
    assert await submitted(gateway) == []


async def test_a_name_that_is_not_utf8_is_kept_byte_for_byte(gateway: Gateway) -> None:
    """A legacy client sends Latin-1 names: the submission is named with every byte kept
    (``\\xNN`` for each byte that is not UTF-8), never with replacement marks that lose them
    and make two names one."""
    data = declaration("LAT1")
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client(path_encoding=None) as sftp:
        async with sftp.open(b"inbox/D\xc9CL \xe9t\xe9.edi.part", "wb") as handle:
            await handle.write(data)
        assert await sftp.listdir(b"inbox") == [b".", b"..", b"D\xc9CL \xe9t\xe9.edi.part"]
        await sftp.posix_rename(b"inbox/D\xc9CL \xe9t\xe9.edi.part", b"inbox/D\xc9CL.edi")
        async with sftp.open(b"inbox/" + b"\xe9" * 2 + b".edi", "wb") as handle:
            await handle.write(data)
    assert await submitted(gateway) == [("D\\xc9CL.edi", data), ("\\xe9\\xe9.edi", data)]


async def test_names_in_any_script_with_spaces_are_welcome(gateway: Gateway) -> None:
    data = declaration("UTF1")
    name = "Déclaration n° 7 — 報関.edi"
    await gateway.upload("van-a", name, data)
    assert await submitted(gateway) == [(name, data)]


async def test_a_write_past_the_size_limit_fails_at_once(gateway: Gateway) -> None:
    """max_submission_bytes is 1,000,000 here.  The write that would cross it fails, the
    staging is dropped, every later write and the close fail too: nothing is accepted."""
    async with gateway.connect("van-a") as connection:
        raw = await RawSftp.start(connection)
        handle = await raw.open(b"inbox/big.edi", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        assert await raw.write(handle, 0, b"x" * 600_000) == FX_OK
        assert await raw.write(handle, 600_000, b"x" * 400_001) != FX_OK
        assert await raw.write(handle, 600_000, b"x" * 10) != FX_OK
        code, message = await raw.close(handle)
        assert code != FX_OK and b"too large" in message, message
        # a far offset, and rewriting one spot again and again, are refused the same way
        for offset, times in ((1_000_000, 1), (0, 3)):
            handle = await raw.open(b"inbox/far.edi", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
            codes = [await raw.write(handle, offset, b"y" * 400_000) for _ in range(times)]
            assert codes[-1] != FX_OK, codes
    assert await submitted(gateway) == []


async def test_just_under_the_size_limit_is_accepted(gateway: Gateway) -> None:
    data = declaration("BIG1")
    data += b"\n" * (1_000_000 - len(data))
    await gateway.upload("van-a", "edge.edi", data)
    assert await submitted(gateway) == [("edge.edi", data)]
