"""What a hostile SFTP client may try on the mailbox beyond uploading: changing or forging the
gateway's answers, following links, huge reads, protocol versions that bypass the rules."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.support.edifact import cusdec
from tests.support.harness import FXF_READ, FXF_TRUNC, FXP_DATA, Gateway, RawSftp


async def answered(gateway: Gateway, partner: str = "van-a") -> str:
    """Upload a declaration as ``partner`` and return the name of its answer in the outbox."""
    sender = {"van-a": "VANA", "van-b": "VANB"}[partner]
    await gateway.upload(partner, "d.edi", cusdec(("0303",), sender=sender))
    await gateway.answers(partner, "d.edi")
    outbox = os.listdir(gateway.files.mailbox(partner) / "outbox")
    (name,) = [n for n in outbox if not n.endswith(".p7s")]
    assert f"{name}.p7s" in outbox  # its signature beside it
    return name


async def test_the_outbox_cannot_be_changed_only_read_and_emptied(gateway: Gateway) -> None:
    name = await answered(gateway)
    path = gateway.files.mailbox("van-a") / "outbox" / name
    body, mode = path.read_bytes(), path.stat().st_mode
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        target = f"outbox/{name}"
        for attrs in (asyncssh.SFTPAttrs(permissions=0o666), asyncssh.SFTPAttrs(size=0),
                      asyncssh.SFTPAttrs(atime=0, mtime=0)):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.setstat(target, attrs)
            async with sftp.open(target, "rb") as handle:
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await handle.setstat(attrs)
        for folder in ("outbox", "inbox", "/"):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.chmod(folder, 0o777)
        # opened "for reading" with a truncation flag, and every writing mode
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open(target, FXF_READ | FXF_TRUNC)
        for mode_text in ("r+b", "ab", "wb", "xb"):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.open(target, mode_text)
        for rename in (sftp.rename, sftp.posix_rename):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await rename(target, "outbox/forged.contrl.edi")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await rename(target, "inbox/resubmitted.edi")
        assert path.read_bytes() == body and path.stat().st_mode == mode
        async with sftp.open(target, "rb") as handle:
            assert await handle.read() == body
        await sftp.remove(target)  # collecting an answer: read, then delete
    assert not path.exists()
    assert len(await gateway.fetch("SELECT id FROM interchanges")) == 1


async def test_the_gateways_files_in_progress_are_invisible(gateway: Gateway) -> None:
    """The relay writes an answer under a hidden name before renaming it into place."""
    outbox = gateway.files.mailbox("van-a") / "outbox"
    (outbox / ".0123456789abcdef.part").write_bytes(b"half an answer")
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        assert await sftp.listdir("outbox") == [".", ".."]
        for action in (sftp.stat, sftp.remove, lambda p: sftp.open(p, "rb")):
            with pytest.raises(asyncssh.SFTPNoSuchFile):
                await action("outbox/.0123456789abcdef.part")
    assert (outbox / ".0123456789abcdef.part").exists()


async def test_a_link_in_a_mailbox_is_never_followed(gateway: Gateway) -> None:
    """Links cannot be made over SFTP; one made on the server (by mistake, or by someone with a
    shell) must not lead a partner to another partner's answers or out of the mailboxes."""
    theirs = await answered(gateway, "van-b")
    outbox_a = gateway.files.mailbox("van-a") / "outbox"
    os.symlink(gateway.files.mailbox("van-b") / "outbox" / theirs, outbox_a / "theirs.edi")
    os.symlink("/etc", outbox_a / "etc")
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        assert await sftp.listdir("outbox") == [".", ".."]
        for name in ("outbox/theirs.edi", "outbox/etc/passwd", "outbox/etc"):
            with pytest.raises(asyncssh.SFTPError):
                await sftp.open(name, "rb")
            with pytest.raises(asyncssh.SFTPNoSuchFile):
                await sftp.stat(name)
        with pytest.raises(asyncssh.SFTPError):
            await sftp.readlink("outbox/theirs.edi")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.symlink("/", "inbox/root")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.link("outbox/theirs.edi", "inbox/theirs.edi")
        assert await sftp.realpath("inbox/../../../van-b/outbox") == "/van-b/outbox"
        assert not await sftp.exists("/van-b/outbox")


async def test_a_huge_read_request_gets_at_most_a_packet(gateway: Gateway) -> None:
    """A read length is the client's number (up to 4 GiB): the server answers with what it
    has, never allocating what was asked.  The address space is bounded while the request is
    served (the gateway runs in this process), as a host with strict overcommit would."""
    name = await answered(gateway)
    body = (gateway.files.mailbox("van-a") / "outbox" / name).read_bytes()
    async with gateway.connect("van-a") as connection:
        raw = await RawSftp.start(connection)
        handle = await raw.open(f"outbox/{name}".encode(), FXF_READ)
        with bounded_address_space(extra=1 << 30):
            reply = await raw.read(handle, 0, 0xFFFFFFFF)
        assert reply == (FXP_DATA, body)


@contextlib.contextmanager
def bounded_address_space(extra: int) -> Iterator[None]:
    """RLIMIT_AS at what this process maps now plus ``extra`` bytes, for the block."""
    mapped = next(int(line.split()[1]) * 1024 for line in
                  Path("/proc/self/status").read_text().splitlines()
                  if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


async def test_a_newer_protocol_version_is_answered_with_version_3(gateway: Gateway) -> None:
    """SFTP v4-v6 have opens and renames that asyncssh hands to other methods; the server
    speaks v3 only, so every request goes through the mailbox rules."""
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client(sftp_version=6) as sftp:
        assert sftp.version == 3
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open("outbox/x.edi", "wb")


async def test_the_file_system_is_not_described(gateway: Gateway) -> None:
    """statvfs tells free space, which only helps someone filling the disk."""
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        with pytest.raises(asyncssh.SFTPOpUnsupported):
            await sftp.statvfs("inbox")
