"""One SFTP session of one partner: what it may open, read, write, rename, list and delete.

An upload is submitted when the client closes its handle (SSH_FXP_CLOSE) or, under a
temporary name, renames it to its final name; that close or rename succeeds only once the
intake has committed the handle's own bytes (DESIGN rule 1), otherwise it fails and nothing is
accepted.  A handle closed by the session's end (a broken connection, a client that died and
left its channel half closed; session.py tells them apart) is never a submission.

A session sees in ``inbox/`` its own uploads: those being written and the temporaries waiting
for their rename (which live as long as the session).  In ``outbox/`` it sees the answers,
which it may read and delete, nothing else: on this node's disk or in the database, which
every node serves alike (``sftp.mailbox_store``, outbox.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import asyncssh
from asyncssh.sftp import MAX_SFTP_READ_LEN

from gateway.config.settings import SftpSettings
from gateway.errors import DeliveryError
from gateway.logs import event
from gateway.transports.mailbox import INBOX, OUTBOX, Mailboxes
from gateway.transports.sftp.names import (
    Place,
    as_text,
    components,
    is_temporary,
    locate,
    upload_name_refusal,
)
from gateway.transports.sftp.outbox import Outboxes, no_such_file
from gateway.transports.sftp.uploads import Upload, read_all, set_attributes, write_all

log = logging.getLogger("gateway.sftp")

#: (partner id, transport, file name, bytes) -> submission id, after the commit.
Submit = Callable[[str, str, str, bytes], Awaitable[int]]


@dataclass(frozen=True)
class PartnerAccess:
    """Who may log in, with which keys, where each partner's mailbox is, and the limits."""

    logins: dict[str, str]  # SFTP user -> partner id
    keys: dict[str, tuple[str, ...]]  # partner id -> OpenSSH public keys
    mailboxes: Mailboxes  # inbox/ staging, per node (and outbox/ with the disk store)
    outboxes: Outboxes  # what each partner's outbox/ holds
    max_submission_bytes: int
    settings: SftpSettings


class MailboxSFTPServer(asyncssh.SFTPServer):
    """One SFTP session of one partner (see the module's docstring for what it sees)."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], partner_id: str,
                 access: PartnerAccess, submit: Submit) -> None:
        self._partner_id = partner_id
        self._home = access.mailboxes.home(partner_id)
        super().__init__(chan, chroot=os.fsencode(self._home))
        self._outbox = access.outboxes.of(partner_id)
        self._submit = submit
        self._max_bytes = access.max_submission_bytes
        self.max_open = access.settings.max_open_files
        self._writing: list[Upload] = []  # handles open for writing, oldest first
        self._waiting: dict[bytes, Upload] = {}  # closed temporaries, by the client's name
        self._submitted: dict[bytes, int] = {}  # its last submissions' names: sizes
        self._ended = False

    # --- the session's life (told by SessionHandler) ----------------------------------------

    def end_session(self) -> None:
        """From now on asyncssh closes what is left open: no close is the client's."""
        self._ended = True

    def make_room(self, handles: int) -> None:
        """Refuse one more handle when the session holds ``max_open_files`` already."""
        if handles + len(self._waiting) < self.max_open:
            return
        event(log, "sftp_limit", level=logging.WARNING, partner=self._partner_id,
              limit="max_open_files", value=self.max_open)
        raise asyncssh.SFTPFailure(
            f"too many open files: a session may hold {self.max_open} files and folders open "
            "and temporaries waiting for their rename at once; close or rename some first")

    def exit(self) -> None:
        for upload in [*self._writing, *self._waiting.values()]:
            self._abandon(upload, "the session ended before the file was closed and renamed")
        self._writing.clear()
        self._waiting.clear()

    # --- opening, reading, writing, closing ----------------------------------------------------

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        # Any flag but READ writes (TRUNC and EXCL too, whatever asyncssh's open makes of them).
        if pflags & ~asyncssh.FXF_READ:
            return self._open_upload(locate(path), pflags)
        return await self._open_answer(locate(path))

    def _open_upload(self, place: Place | None, pflags: int) -> Upload:
        raw = self._inbox_file(place, "uploading")
        waiting = self._waiting.get(raw)
        if pflags & asyncssh.FXF_EXCL and self._visible(raw) is not None:
            raise asyncssh.SFTPFileAlreadyExists(f"inbox/{as_text(raw)} exists in this "
                                                 "session")
        if waiting is not None and not pflags & asyncssh.FXF_TRUNC:
            upload = self._waiting.pop(raw)  # written on: a resumed upload
        elif waiting is None and not pflags & asyncssh.FXF_CREAT:
            raise asyncssh.SFTPNoSuchFile(f"no such file: inbox/{as_text(raw)}")
        else:
            if waiting is not None:
                self._waiting.pop(raw).drop()
            upload = Upload(raw, self._home / INBOX)
        upload.append = bool(pflags & asyncssh.FXF_APPEND)
        self._writing.append(upload)
        return upload

    async def _open_answer(self, place: Place | None) -> object:
        if place is not None and place.folder == INBOX and place.name:
            raise asyncssh.SFTPPermissionDenied("inbox/ is for uploads: they cannot be read")
        if place is None or place.folder != OUTBOX or not place.name:
            raise no_such_file()
        return await self._outbox.open(place.name)

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        # The length is the client's number (up to 4 GiB): never allocate more than a packet.
        size = min(size, MAX_SFTP_READ_LEN)
        if isinstance(file_obj, Upload):
            return os.pread(file_obj.fd, size, offset)
        return await self._outbox.read(file_obj, offset, size)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if not isinstance(file_obj, Upload):
            raise asyncssh.SFTPPermissionDenied("this file was opened for reading")
        upload = file_obj
        if upload.refusal is not None:
            raise asyncssh.SFTPFailure(upload.refusal)
        at = upload.size if upload.append else offset
        end = at + len(data)
        if max(end, upload.size) > self._max_bytes or \
                upload.written + len(data) > self._max_bytes:
            self._refuse(upload, "upload_too_large", logging.WARNING,
                         f"file too large: this gateway accepts at most {self._max_bytes} "
                         "bytes per submission; nothing was accepted")
        try:
            write_all(upload.fd, data, at)
        except OSError as exc:
            self._refuse(upload, "upload_failed", logging.ERROR,
                         f"the gateway could not write this file ({exc.strerror}); nothing "
                         "was accepted - send it again")
        upload.size, upload.written = max(end, upload.size), upload.written + len(data)
        return len(data)

    async def close(self, file_obj: object) -> None:
        if not isinstance(file_obj, Upload):
            self._outbox.close(file_obj)
            return
        upload = file_obj
        self._writing.remove(upload)
        if self._ended:
            self._abandon(upload, "the session ended before the client closed the file")
        elif upload.refusal is not None:
            upload.drop()
            raise asyncssh.SFTPFailure(upload.refusal)
        elif is_temporary(upload.name):
            with contextlib.suppress(KeyError):
                self._waiting.pop(upload.raw).drop()
            self._waiting[upload.raw] = upload
        else:
            try:
                await self._accept(upload, upload.raw)
            finally:
                upload.drop()

    def fsync(self, file_obj: object) -> None:
        """Nothing to do: an upload is durable once its close succeeds, not before."""

    # --- names ---------------------------------------------------------------------------------

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        # SSH_FXP_RENAME refuses an existing target, posix-rename replaces it: no upload of
        # the session may be the target here, so both mean the same.
        await self.posix_rename(oldpath, newpath)

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        old = self._inbox_file(locate(oldpath), "renaming")
        new = self._inbox_file(locate(newpath), "renaming")
        old_name, new_name = as_text(old), as_text(new)
        if is_temporary(new_name):
            raise asyncssh.SFTPPermissionDenied("rename to the final file name to submit")
        upload = self._waiting.get(old)
        if upload is None and self._open_as(old):
            raise asyncssh.SFTPFailure(f"inbox/{old_name} is still open: close it before "
                                       "renaming it")
        if upload is None:
            raise asyncssh.SFTPNoSuchFile(f"no such file: inbox/{old_name}")
        if self._open_as(new):
            raise asyncssh.SFTPFileAlreadyExists(f"inbox/{new_name} is open for writing in "
                                                 "this session: close it first")
        await self._accept(upload, new)  # failing, it stays: the rename may be retried
        del self._waiting[old]
        upload.drop()

    async def remove(self, path: bytes) -> None:
        place = locate(path)
        if place is not None and place.folder == OUTBOX and place.name:
            await self._outbox.remove(place.name)
        elif place is not None and place.folder == INBOX and place.name:
            self._remove_upload(place.name)
        else:
            raise asyncssh.SFTPPermissionDenied("only files in inbox/ and outbox/ are deleted")

    def _remove_upload(self, raw: bytes) -> None:
        waiting = self._waiting.pop(raw, None)
        if waiting is not None:
            waiting.drop()
            return
        writing = [u for u in self._writing if u.raw == raw]
        if not writing:
            raise asyncssh.SFTPNoSuchFile(f"no such file: inbox/{as_text(raw)}")
        for upload in writing:  # its close now fails: a close that succeeds stored its bytes
            upload.refusal = (f"inbox/{upload.name} was deleted before it was closed: nothing "
                              "was accepted")
            upload.drop()

    def _inbox_file(self, place: Place | None, action: str) -> bytes:
        """The name a path gives a file in inbox/, or the SFTP error telling why it cannot."""
        if place is None or place.folder != INBOX:
            raise asyncssh.SFTPPermissionDenied(f"{action} is allowed only in inbox/")
        if not place.name:
            raise asyncssh.SFTPFileIsADirectory("inbox/ is a folder: name the file in it, "
                                                "inbox/<name>")
        refusal = upload_name_refusal(place.name)
        if refusal is not None:
            raise asyncssh.SFTPInvalidFilename(f"not a file name for an upload: {refusal}")
        return place.name

    def _open_as(self, raw: bytes) -> bool:
        return any(upload.raw == raw for upload in self._writing)

    def _visible(self, raw: bytes) -> Upload | None:
        """The upload ``inbox/<raw>`` shows: waiting for its rename, else the latest open."""
        writing = [u for u in self._writing if u.raw == raw and u.refusal is None]
        return self._waiting.get(raw) or (writing[-1] if writing else None)

    # --- attributes and listings ---------------------------------------------------------------

    async def stat(self, path: bytes) -> os.stat_result:
        place = locate(path)
        if place is None:
            raise no_such_file()
        if not place.name:
            return os.stat(self._folder_path(place.folder))
        if place.folder == OUTBOX:
            return await self._outbox.stat(place.name)
        upload = self._visible(place.name)
        if upload is None:
            raise asyncssh.SFTPNoSuchFile(f"no such file: {as_text(path)}")
        return os.fstat(upload.fd)

    async def lstat(self, path: bytes) -> os.stat_result:
        return await self.stat(path)  # a mailbox holds no links

    def fstat(self, file_obj: object) -> os.stat_result:
        if isinstance(file_obj, Upload):
            return os.fstat(file_obj.fd)
        return self._outbox.fstat(file_obj)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """An upload's attributes, by name: one being written or waiting for its rename, or
        one this session has just submitted.  Clients set a file's times after they close or
        rename it (asyncssh's ``put(preserve=True)``, WinSCP's preserved timestamps): the close
        submitted it, and failing the setstat would report a stored upload as failed, which a
        script sends again (a duplicate)."""
        place = locate(path)
        if place is None or place.folder != INBOX or not place.name:
            raise asyncssh.SFTPPermissionDenied("only an upload's attributes may be set")
        upload = self._visible(place.name)
        size = upload.size if upload is not None else self._submitted.get(place.name)
        if size is None:
            raise asyncssh.SFTPNoSuchFile(f"no such file: {as_text(path)}")
        set_attributes(size, attrs)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        if not isinstance(file_obj, Upload):
            raise asyncssh.SFTPPermissionDenied("only an upload's attributes may be set")
        set_attributes(file_obj.size, attrs)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        place = locate(path)
        if place is None or place.name:
            raise asyncssh.SFTPNoSuchFile(f"no such folder: {as_text(path)}")
        here = os.stat(self._folder_path(place.folder))
        for dot in (b".", b".."):
            yield asyncssh.SFTPName(dot, attrs=asyncssh.SFTPAttrs.from_local(here))
        listing = await self._outbox.listing() if place.folder == OUTBOX else \
            self._listing(place.folder)
        for name, found in listing:
            yield asyncssh.SFTPName(name, attrs=asyncssh.SFTPAttrs.from_local(found))

    def _listing(self, folder: str) -> Iterator[tuple[bytes, os.stat_result]]:
        if folder == "":
            for sub in (INBOX, OUTBOX):
                yield sub.encode(), os.stat(self._folder_path(sub))
        else:
            for raw in dict.fromkeys([*self._waiting, *(u.raw for u in self._writing)]):
                upload = self._visible(raw)
                if upload is not None:
                    yield raw, os.fstat(upload.fd)

    def realpath(self, path: bytes) -> bytes:
        return b"/" + b"/".join(components(path))

    def readlink(self, path: bytes) -> bytes:
        raise asyncssh.SFTPFailure("a mailbox holds no links")

    def format_user(self, uid: int | None) -> str:
        """The owner ``ls -l`` shows: the partner itself, never the gateway's Unix account
        (asyncssh would look it up with pwd, on the event loop, and tell it to every
        partner)."""
        return self._partner_id

    def format_group(self, gid: int | None) -> str:
        return self._partner_id

    def statvfs(self, path: bytes) -> NoReturn:
        raise asyncssh.SFTPOpUnsupported("this server does not describe its file system")

    def fstatvfs(self, file_obj: object) -> NoReturn:
        raise asyncssh.SFTPOpUnsupported("this server does not describe its file system")

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied("the mailbox layout is fixed")

    def rmdir(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("the mailbox layout is fixed")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed")

    # --- helpers -------------------------------------------------------------------------------

    def _folder_path(self, folder: str) -> Path:
        return self._home / folder if folder else self._home

    def _refuse(self, upload: Upload, name: str, level: int, message: str) -> NoReturn:
        """The upload can no longer be submitted: free its staging now, fail what follows."""
        upload.refusal = message
        upload.drop()
        event(log, name, level=level, partner=self._partner_id, file_name=upload.name,
              error=message)
        raise asyncssh.SFTPFailure(message)

    def _abandon(self, upload: Upload, reason: str) -> None:
        upload.drop()
        event(log, "upload_abandoned", level=logging.WARNING, partner=self._partner_id,
              file_name=upload.name, reason=reason)

    async def _accept(self, upload: Upload, raw: bytes) -> None:
        """Hand the upload's bytes to the intake as ``inbox/<raw>``; return only after the
        commit, or fail with nothing accepted."""
        name = as_text(raw)
        data = await asyncio.to_thread(read_all, upload.fd, upload.size)
        try:
            submission = await self._submit(self._partner_id, "sftp", name, data)
        except DeliveryError as exc:
            event(log, "upload_refused", level=logging.ERROR, partner=self._partner_id,
                  file_name=name, error=str(exc))
            raise asyncssh.SFTPFailure(
                "the gateway could not store this file; nothing was accepted - send it again"
            ) from exc
        event(log, "upload_accepted", partner=self._partner_id, file_name=name,
              submission=submission)
        self._remember_submitted(raw, upload.size)

    def _remember_submitted(self, raw: bytes, size: int) -> None:
        """Keep the names of the session's last ``max_open`` submissions for ``setstat``: a
        client sets a file's times right after its close or rename, and even one that first
        closes every file it may hold open finds them all; older names are forgotten, so a
        long session keeps no growing list."""
        self._submitted.pop(raw, None)
        self._submitted[raw] = size
        if len(self._submitted) > self.max_open:
            del self._submitted[next(iter(self._submitted))]

