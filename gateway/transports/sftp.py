"""The SFTP endpoint (asyncssh): public-key login per partner, each partner chrooted to its own
mailbox.  An upload into ``inbox/`` is submitted when its handle is closed on a live channel
(or, for a temporary name, when it is renamed to its final name); the close (or rename)
succeeds only once the intake has committed the bytes, otherwise the client sees a failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from gateway.errors import DeliveryError
from gateway.logs import event
from gateway.transports.mailbox import INBOX, OUTBOX, Mailboxes

log = logging.getLogger("gateway.sftp")

#: (partner id, transport, file name, bytes) -> submission id, after the commit.
Submit = Callable[[str, str, str, bytes], Awaitable[int]]

#: Names clients upload under before renaming to the final name (WinSCP, FileZilla, scripts).
TEMPORARY_SUFFIXES = (".part", ".filepart", ".tmp", ".partial", ".upload")


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


@dataclass(frozen=True)
class PartnerAccess:
    """Who may log in, with which keys, and where each partner's mailbox is."""

    logins: dict[str, str]  # SFTP user -> partner id
    keys: dict[str, tuple[str, ...]]  # partner id -> OpenSSH public keys
    mailboxes: Mailboxes
    max_submission_bytes: int


class _SSHServer(asyncssh.SSHServer):
    """Public keys only (DESIGN rule 5): no passwords, no keyboard-interactive."""

    def __init__(self, access: PartnerAccess) -> None:
        self._access = access
        self._connection: Any = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn

    def begin_auth(self, username: str) -> bool:
        partner_id = self._access.logins.get(username)
        keys = self._access.keys.get(partner_id, ()) if partner_id else ()
        # An unknown user gets an empty key list: login fails the same way as a wrong key.
        self._connection.set_authorized_keys(asyncssh.import_authorized_keys("\n".join(keys)))
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False


class MailboxSFTPServer(asyncssh.SFTPServer):
    """One SFTP session of one partner, confined to ``<mailboxes>/<partner>``."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], access: PartnerAccess,
                 submit: Submit) -> None:
        username = chan.get_extra_info("username")
        self._partner_id = access.logins[username]
        home = access.mailboxes.home(self._partner_id)
        super().__init__(chan, chroot=os.fsencode(home))
        self._submit = submit
        self._max_bytes = access.max_submission_bytes
        self._uploads: dict[int, tuple[bytes, str]] = {}

    # --- what a partner may do where -------------------------------------------------------

    def _folder(self, path: bytes) -> str:
        """The top folder a client path is in ('' for the mailbox root)."""
        normal = posixpath.normpath(posixpath.join("/", os.fsdecode(path)))
        return normal.strip("/").split("/", 1)[0] if normal != "/" else ""

    def _require(self, path: bytes, allowed: tuple[str, ...], action: str) -> None:
        if self._folder(path) not in allowed:
            raise asyncssh.SFTPPermissionDenied(
                f"{action} is allowed only in {' and '.join(f'{a}/' for a in allowed)}")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        writing = bool(pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT))
        if writing:
            self._require(path, (INBOX,), "uploading")
        else:
            self._require(path, (INBOX, OUTBOX), "reading")
        file_obj = super().open(path, pflags, attrs)
        if writing:
            self._uploads[id(file_obj)] = (self.map_path(path), _client_name(path))
        return file_obj

    def open56(self, path: bytes, desired_access: int, flags: int,
               attrs: asyncssh.SFTPAttrs) -> object:
        # SFTP v5/v6 opens bypass open() and its mailbox rules; OpenSSH and every VAN
        # client speak v3.
        raise asyncssh.SFTPOpUnsupported("this server supports SFTP version 3 opens only")

    async def close(self, file_obj: object) -> None:
        upload = self._uploads.pop(id(file_obj), None)
        super().close(file_obj)
        if upload is None:
            return
        local, name = upload
        if self.channel.is_closing():
            # The session broke before the client closed the file: the upload is not
            # complete, so it is not a submission (and is not left half-accepted).
            _remove(local)
            event(log, "upload_abandoned", level=logging.WARNING, partner=self._partner_id,
                  file_name=name)
            return
        if not is_temporary(name):
            await self._accept(local, name)

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self.posix_rename(oldpath, newpath)

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._require(oldpath, (INBOX,), "renaming")
        self._require(newpath, (INBOX,), "renaming")
        new_name = _client_name(newpath)
        if is_temporary(new_name):
            raise asyncssh.SFTPPermissionDenied("rename to the final file name to submit")
        await self._accept(self.map_path(oldpath), new_name)

    def remove(self, path: bytes) -> None:
        self._require(path, (INBOX, OUTBOX), "deleting")
        super().remove(path)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied("the mailbox layout is fixed")

    def rmdir(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("the mailbox layout is fixed")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed")

    # --- submission ------------------------------------------------------------------------

    async def _accept(self, local: bytes, name: str) -> None:
        """Hand the file to the intake; succeed only after the commit, then consume it."""
        try:
            data = await asyncio.to_thread(_read_at_most, local, self._max_bytes)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise asyncssh.SFTPNoSuchFile("no such file in inbox/") from exc
        if data is None:
            _remove(local)
            event(log, "upload_too_large", level=logging.WARNING, partner=self._partner_id,
                  file_name=name, limit=self._max_bytes)
            raise asyncssh.SFTPFailure(
                f"file too large: this gateway accepts at most {self._max_bytes} bytes per "
                "submission; nothing was accepted")
        try:
            submission = await self._submit(self._partner_id, "sftp", name, data)
        except DeliveryError as exc:
            _remove(local)
            event(log, "upload_refused", level=logging.ERROR, partner=self._partner_id,
                  file_name=name, error=str(exc))
            raise asyncssh.SFTPFailure(
                "the gateway could not store this file; nothing was accepted - send it again"
            ) from exc
        _remove(local)
        event(log, "upload_accepted", partner=self._partner_id, file_name=name,
              submission=submission)


def _client_name(path: bytes) -> str:
    """The uploaded file's name as text (a name that is not UTF-8 keeps replacement marks)."""
    return posixpath.basename(path).decode("utf-8", errors="replace")


def _read_at_most(local: bytes, limit: int) -> bytes | None:
    """The file's bytes, or None when it is larger than ``limit``."""
    with open(local, "rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def _remove(local: bytes) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(local)


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The host key is generated once and kept (DESIGN rule 5), so partners can pin it."""
    if path.exists():
        return asyncssh.read_private_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(path)
    os.chmod(path, 0o600)
    key.write_public_key(path.with_suffix(".pub"))
    return key


async def start_server(host: str, port: int, host_key: asyncssh.SSHKey, access: PartnerAccess,
                       submit: Submit) -> asyncssh.SSHAcceptor:
    def sftp_factory(chan: asyncssh.SSHServerChannel[bytes]) -> MailboxSFTPServer:
        return MailboxSFTPServer(chan, access, submit)

    return await asyncssh.create_server(
        lambda: _SSHServer(access), host, port, server_host_keys=[host_key],
        sftp_factory=sftp_factory, allow_scp=False)
