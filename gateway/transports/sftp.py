"""The SFTP endpoint (asyncssh, SFTP version 3): public-key login per partner, each partner
confined to its own mailbox, ``inbox/`` to upload and ``outbox/`` to collect answers.

Every handle opened for writing gets a staging file of its own: an anonymous file (O_TMPFILE
where the file system has it) in the partner's inbox folder, which no other handle, session or
partner can reach, which nothing of a client's file name touches, and which vanishes with the
process.  The upload is submitted when the client closes the handle (SSH_FXP_CLOSE) or, under a
temporary name, renames it to its final name; that close or rename succeeds only once the
intake has committed the handle's own bytes (DESIGN rule 1), otherwise it fails and nothing is
accepted.  A handle closed by the session's end (a broken connection, a client that died and
left its channel half closed) is never a submission.

A session sees in ``inbox/`` its own uploads: those being written and the temporaries waiting
for their rename (which live as long as the session).  In ``outbox/`` it sees the answers,
which it may read and delete, nothing else; the gateway's own files in progress there (hidden
names) and anything that is not a regular file are not shown, and links are never followed.

Limits (``SftpSettings``): connections logging in (per address, and over all with random early
drop of the newest from the address holding the most, see ``Startups``), connections and
sessions per partner, files open per session, the time to send the SSH banner and to log in,
keepalives, and ``max_submission_bytes`` checked at every write.  Beyond one the request is
refused with a message naming it and an event is logged."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import os
import posixpath
import secrets
import stat
import tempfile
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, NoReturn, TypeVar, cast

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.constants import FXP_OPEN, FXP_OPENDIR
from asyncssh.packet import SSHPacket
from asyncssh.sftp import (
    MAX_SFTP_PACKET_LEN,
    MAX_SFTP_READ_LEN,
    MAX_SFTP_WRITE_LEN,
    MIN_SFTP_VERSION,
    SFTPServerHandler,
)
from asyncssh.stream import SSHServerStreamSession

from gateway.config.settings import SftpSettings
from gateway.errors import DeliveryError
from gateway.logs import event
from gateway.transports.mailbox import INBOX, NAME_MAX_BYTES, OUTBOX, Mailboxes

log = logging.getLogger("gateway.sftp")

#: (partner id, transport, file name, bytes) -> submission id, after the commit.
Submit = Callable[[str, str, str, bytes], Awaitable[int]]

#: Names clients upload under before renaming to the final name (WinSCP, FileZilla, scripts).
TEMPORARY_SUFFIXES = (".part", ".filepart", ".tmp", ".temp", ".partial", ".upload",
                      ".inprogress")

#: Keepalives a client may leave unanswered before its connection is closed.
KEEPALIVE_COUNT_MAX = 3


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


def as_text(raw: bytes) -> str:
    """A client's name or path as text, an upload's name as the intake gets it.  SFTP v3
    names are bytes; v4 and later say UTF-8 (draft-ietf-secsh-filexfer-13 section 6), which
    OpenSSH and WinSCP send, but a legacy client may send Latin-1 or cp1252: each byte that is
    not UTF-8 is kept as ``\\xNN``, so the name stays exact and readable, never a replacement
    mark (U+FFFD) that loses the byte and makes two names one."""
    return raw.decode("utf-8", errors="backslashreplace")


def upload_name_refusal(raw: bytes) -> str | None:
    """Why ``raw`` cannot name an upload, or None: a name is 1 to NAME_MAX_BYTES bytes (what
    a file system holds) without control characters (Unicode Cc, NUL included: no tool makes
    them, and they would corrupt logs, terminals and the answer's name)."""
    if not raw:
        return "it is empty"
    if len(raw) > NAME_MAX_BYTES:
        return f"it is longer than {NAME_MAX_BYTES} bytes"
    control = next((ch for ch in as_text(raw) if unicodedata.category(ch) == "Cc"), None)
    if control is not None:
        return f"it holds the control character U+{ord(control):04X}"
    return None


@dataclass(frozen=True)
class PartnerAccess:
    """Who may log in, with which keys, where each partner's mailbox is, and the limits."""

    logins: dict[str, str]  # SFTP user -> partner id
    keys: dict[str, tuple[str, ...]]  # partner id -> OpenSSH public keys
    mailboxes: Mailboxes
    max_submission_bytes: int
    settings: SftpSettings


# --- where a client path points --------------------------------------------------------------

_FOLDERS = {INBOX.encode(): INBOX, OUTBOX.encode(): OUTBOX}


@dataclass(frozen=True)
class _Place:
    """A place in a mailbox: a folder ('' for the mailbox itself) and a name in it (b'' for
    the folder itself)."""

    folder: str
    name: bytes


def _parts(path: bytes) -> list[bytes]:
    """The components of ``path`` from the mailbox, read lexically as asyncssh's chroot does:
    '..' stops at the mailbox, and no link is ever consulted."""
    return [part for part in posixpath.normpath(b"/" + path).split(b"/") if part]


def _place(path: bytes) -> _Place | None:
    """Where ``path`` points, or None: nothing else exists in a mailbox."""
    parts = _parts(path)
    if not parts:
        return _Place("", b"")
    folder = _FOLDERS.get(parts[0])
    if folder is None or len(parts) > 2:
        return None
    return _Place(folder, parts[1] if len(parts) == 2 else b"")


# --- uploads ---------------------------------------------------------------------------------


class _Upload:
    """What one handle opened for writing writes: its own anonymous staging file."""

    def __init__(self, raw: bytes, folder: Path) -> None:
        self.raw = raw  # the client's name for it
        self.name = as_text(raw)
        self._file: IO[bytes] | None = tempfile.TemporaryFile(  # noqa: SIM115 - see drop()
            dir=folder, buffering=0)
        self.append = False
        self.size = 0
        self.written = 0  # bytes written through it, rewrites counted
        self.refusal: str | None = None  # why its bytes can no longer be submitted

    @property
    def fd(self) -> int:
        if self._file is None:
            raise asyncssh.SFTPFailure(self.refusal or "this upload was dropped")
        return self._file.fileno()

    def drop(self) -> None:
        """Free the staging file (its space is returned at once: it has no name)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _read_all(fd: int, size: int) -> bytes:
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class MailboxSFTPServer(asyncssh.SFTPServer):
    """One SFTP session of one partner (see the module's docstring for what it sees)."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], partner_id: str,
                 access: PartnerAccess, submit: Submit) -> None:
        self._partner_id = partner_id
        self._home = access.mailboxes.home(partner_id)
        super().__init__(chan, chroot=os.fsencode(self._home))
        self._submit = submit
        self._max_bytes = access.max_submission_bytes
        self.max_open = access.settings.max_open_files
        self._writing: list[_Upload] = []  # handles open for writing, oldest first
        self._waiting: dict[bytes, _Upload] = {}  # closed temporaries, by the client's name
        self._submitted: dict[bytes, int] = {}  # its last submissions' names: sizes
        self._ended = False

    # --- the session's life (told by _SessionHandler) ----------------------------------------

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

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        # Any flag but READ writes (TRUNC and EXCL too, whatever asyncssh's open makes of them).
        if pflags & ~asyncssh.FXF_READ:
            return self._open_upload(_place(path), pflags)
        return self._open_answer(_place(path))

    def _open_upload(self, place: _Place | None, pflags: int) -> _Upload:
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
            upload = _Upload(raw, self._home / INBOX)
        upload.append = bool(pflags & asyncssh.FXF_APPEND)
        self._writing.append(upload)
        return upload

    def _open_answer(self, place: _Place | None) -> IO[bytes]:
        if place is not None and place.folder == INBOX and place.name:
            raise asyncssh.SFTPPermissionDenied("inbox/ is for uploads: they cannot be read")
        if place is None or place.folder != OUTBOX or not place.name:
            raise asyncssh.SFTPNoSuchFile("no such file")
        # O_NOFOLLOW: never through a link; O_NONBLOCK: a FIFO cannot hold the event loop.
        try:
            fd = os.open(self._answer_path(place.name),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise asyncssh.SFTPNoSuchFile("no such file") from exc
        answer = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            answer.close()
            raise asyncssh.SFTPNoSuchFile("no such file")
        return answer

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        # The length is the client's number (up to 4 GiB): never allocate more than a packet.
        return os.pread(self._fd(file_obj), min(size, MAX_SFTP_READ_LEN), offset)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if not isinstance(file_obj, _Upload):
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
            _write_all(upload.fd, data, at)
        except OSError as exc:
            self._refuse(upload, "upload_failed", logging.ERROR,
                         f"the gateway could not write this file ({exc.strerror}); nothing "
                         "was accepted - send it again")
        upload.size, upload.written = max(end, upload.size), upload.written + len(data)
        return len(data)

    async def close(self, file_obj: object) -> None:
        if not isinstance(file_obj, _Upload):
            cast(IO[bytes], file_obj).close()
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
        old = self._inbox_file(_place(oldpath), "renaming")
        new = self._inbox_file(_place(newpath), "renaming")
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

    def remove(self, path: bytes) -> None:
        place = _place(path)
        if place is not None and place.folder == OUTBOX and place.name:
            self._regular_answer(place.name)  # a visible answer, or no such file
            os.remove(self._answer_path(place.name))
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

    def _inbox_file(self, place: _Place | None, action: str) -> bytes:
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

    def _visible(self, raw: bytes) -> _Upload | None:
        """The upload ``inbox/<raw>`` shows: waiting for its rename, else the latest open."""
        writing = [u for u in self._writing if u.raw == raw and u.refusal is None]
        return self._waiting.get(raw) or (writing[-1] if writing else None)

    # --- attributes and listings ---------------------------------------------------------------

    def stat(self, path: bytes) -> os.stat_result:
        place = _place(path)
        if place is None:
            raise asyncssh.SFTPNoSuchFile("no such file")
        if not place.name:
            return os.stat(self._folder_path(place.folder))
        if place.folder == OUTBOX:
            return self._regular_answer(place.name)
        upload = self._visible(place.name)
        if upload is None:
            raise asyncssh.SFTPNoSuchFile(f"no such file: {as_text(path)}")
        return os.fstat(upload.fd)

    def lstat(self, path: bytes) -> os.stat_result:
        return self.stat(path)  # a mailbox holds no links

    def fstat(self, file_obj: object) -> os.stat_result:
        return os.fstat(self._fd(file_obj))

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """An upload's attributes, by name: one being written or waiting for its rename, or
        one this session has just submitted.  Clients set a file's times after they close or
        rename it (asyncssh's ``put(preserve=True)``, WinSCP's preserved timestamps): the close
        submitted it, and failing the setstat would report a stored upload as failed, which a
        script sends again (a duplicate)."""
        place = _place(path)
        if place is None or place.folder != INBOX or not place.name:
            raise asyncssh.SFTPPermissionDenied("only an upload's attributes may be set")
        upload = self._visible(place.name)
        size = upload.size if upload is not None else self._submitted.get(place.name)
        if size is None:
            raise asyncssh.SFTPNoSuchFile(f"no such file: {as_text(path)}")
        _set_attributes(size, attrs)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        if not isinstance(file_obj, _Upload):
            raise asyncssh.SFTPPermissionDenied("only an upload's attributes may be set")
        _set_attributes(file_obj.size, attrs)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        place = _place(path)
        if place is None or place.name:
            raise asyncssh.SFTPNoSuchFile(f"no such folder: {as_text(path)}")
        here = os.stat(self._folder_path(place.folder))
        for dot in (b".", b".."):
            yield asyncssh.SFTPName(dot, attrs=asyncssh.SFTPAttrs.from_local(here))
        for name, found in self._listing(place.folder):
            yield asyncssh.SFTPName(name, attrs=asyncssh.SFTPAttrs.from_local(found))

    def _listing(self, folder: str) -> Iterator[tuple[bytes, os.stat_result]]:
        if folder == "":
            for sub in (INBOX, OUTBOX):
                yield sub.encode(), os.stat(self._folder_path(sub))
        elif folder == INBOX:
            for raw in dict.fromkeys([*self._waiting, *(u.raw for u in self._writing)]):
                upload = self._visible(raw)
                if upload is not None:
                    yield raw, os.fstat(upload.fd)
        else:
            with os.scandir(self._folder_path(OUTBOX)) as entries:
                for entry in entries:
                    if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                        yield os.fsencode(entry.name), entry.stat(follow_symlinks=False)

    def realpath(self, path: bytes) -> bytes:
        return b"/" + b"/".join(_parts(path))

    def readlink(self, path: bytes) -> bytes:
        raise asyncssh.SFTPFailure("a mailbox holds no links")

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

    def _answer_path(self, name: bytes) -> bytes:
        if name.startswith(b"."):  # the relay's answers being written (mailbox.py)
            raise asyncssh.SFTPNoSuchFile("no such file")
        return os.path.join(os.fsencode(self._home / OUTBOX), name)

    def _regular_answer(self, name: bytes) -> os.stat_result:
        try:
            found = os.lstat(self._answer_path(name))
        except FileNotFoundError as exc:
            raise asyncssh.SFTPNoSuchFile("no such file") from exc
        if not stat.S_ISREG(found.st_mode):
            raise asyncssh.SFTPNoSuchFile("no such file")
        return found

    @staticmethod
    def _fd(file_obj: object) -> int:
        if isinstance(file_obj, _Upload):
            return file_obj.fd
        return cast(IO[bytes], file_obj).fileno()

    def _refuse(self, upload: _Upload, name: str, level: int, message: str) -> NoReturn:
        """The upload can no longer be submitted: free its staging now, fail what follows."""
        upload.refusal = message
        upload.drop()
        event(log, name, level=level, partner=self._partner_id, file_name=upload.name,
              error=message)
        raise asyncssh.SFTPFailure(message)

    def _abandon(self, upload: _Upload, reason: str) -> None:
        upload.drop()
        event(log, "upload_abandoned", level=logging.WARNING, partner=self._partner_id,
              file_name=upload.name, reason=reason)

    async def _accept(self, upload: _Upload, raw: bytes) -> None:
        """Hand the upload's bytes to the intake as ``inbox/<raw>``; return only after the
        commit, or fail with nothing accepted."""
        name = as_text(raw)
        data = await asyncio.to_thread(_read_all, upload.fd, upload.size)
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


def _set_attributes(size: int, attrs: asyncssh.SFTPAttrs) -> None:
    """An upload is its bytes: permissions, owner and times are not kept, and setting them
    succeeds (OpenSSH ``put -p`` and WinSCP's preserved timestamps send them); its size
    (``size`` now) changes only by writing."""
    if attrs.size is not None and attrs.size != size:
        raise asyncssh.SFTPOpUnsupported("an upload's size changes only by writing it")


# --- the SFTP session --------------------------------------------------------------------------


class _SessionHandler(SFTPServerHandler):
    """asyncssh's SFTP server loop for one session, at version 3 (the v4-v6 opens and renames
    reach other methods than ``open`` and ``rename``; VAN clients speak v3), telling the
    mailbox what asyncssh's SFTPServer interface does not: how many handles the session holds,
    and that the session is over, so that the closes asyncssh then makes of every handle left
    open are never taken for the client's SSH_FXP_CLOSE (a half-closed channel, a client that
    died, a broken connection).

    SFTPServer.close() is called alike for both, and no channel state tells them apart (a
    client may send its close and its EOF together), hence this subclass of an asyncssh
    internal (asyncssh 2.14 to 2.24: ``_cleanup``, ``_process_*``, ``_packet_handlers``);
    tests/integration/test_sftp_uploads.py fails if a new asyncssh changes them."""

    def __init__(self, server: MailboxSFTPServer, reader: asyncssh.SSHReader[bytes],
                 writer: asyncssh.SSHWriter[bytes]) -> None:
        super().__init__(server, reader, writer, MIN_SFTP_VERSION)
        self._mailbox = server

    async def _cleanup(self, exc: Exception | None) -> None:
        self._mailbox.end_session()
        await super()._cleanup(exc)

    async def _process_open(self, packet: SSHPacket) -> bytes:
        self._mailbox.make_room(self._handles())
        return await super()._process_open(packet)

    async def _process_opendir(self, packet: SSHPacket) -> bytes:
        self._mailbox.make_room(self._handles())
        return await super()._process_opendir(packet)

    async def _process_limits(self, packet: SSHPacket) -> asyncssh.SFTPLimits:
        packet.check_end()
        return asyncssh.SFTPLimits(MAX_SFTP_PACKET_LEN, MAX_SFTP_READ_LEN, MAX_SFTP_WRITE_LEN,
                                   self._mailbox.max_open)

    def _handles(self) -> int:
        return len(self._file_handles) + len(self._dir_handles)

    _packet_handlers = {
        **SFTPServerHandler._packet_handlers,
        FXP_OPEN: cast(Any, _process_open),
        FXP_OPENDIR: cast(Any, _process_opendir),
        b"limits@openssh.com": cast(Any, _process_limits),
    }


class _SftpSession(SSHServerStreamSession[bytes]):
    """A session channel that runs SFTP and nothing else (no shell, command or scp), with
    _SessionHandler: asyncssh's own stream session runs its stock handler for "sftp"."""

    def __init__(self, run: Callable[[asyncssh.SSHServerChannel[bytes],
                                      asyncssh.SSHReader[bytes],
                                      asyncssh.SSHWriter[bytes]], Awaitable[None]]) -> None:
        super().__init__(None)
        self._run = run
        self._channel: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: SSHChannel[bytes]) -> None:
        super().connection_made(chan)
        self._channel = cast(asyncssh.SSHServerChannel[bytes], chan)

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp"

    def session_started(self) -> None:
        assert self._channel is not None
        reader = asyncssh.SSHReader[bytes](self, self._channel)
        writer = asyncssh.SSHWriter[bytes](self, self._channel)
        self._channel.get_connection().create_task(
            self._run(self._channel, reader, writer), reader.logger)


# --- the SSH server: logins and what each may hold ---------------------------------------------


T = TypeVar("T")


def source_block(peer: object, settings: SftpSettings) -> str:
    """The address block a connection comes from, as the per-source limit counts it: an IPv4
    address (``per_source_prefix_ipv4``, /32), an IPv6 /64 (``per_source_prefix_ipv6``: one
    host may hold all of it and pick any address in it, RFC 8981), an IPv4-mapped IPv6
    address as its IPv4 address (a dual-stack listener sees IPv4 peers so)."""
    host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = settings.per_source_prefix_ipv4 if address.version == 4 \
        else settings.per_source_prefix_ipv6
    return str(ipaddress.ip_network((address, prefix), strict=False))


class Startups(Generic[T]):
    """Connections that have not logged in yet, by source: OpenSSH's PerSourceMaxStartups and
    MaxStartups start:rate:full, with one change.  When a connection has to go (beyond
    ``max_unauthenticated``, or at random beyond ``unauthenticated_drop_start``), it is the
    newest of the source that holds the most, not always the newcomer: one host that holds
    every slot (idle sockets cost it nothing) loses its newest to each partner that comes from
    elsewhere, and its own newcomers are refused.  Only many sources holding one slot each can
    still crowd partners out, as with sshd, each slot for ``banner_timeout_seconds`` (or
    ``login_timeout_seconds`` once it sent a banner).  Connections already logged in are not
    counted here: a partner's sessions are never touched by a flood."""

    def __init__(self, settings: SftpSettings,
                 chance: Callable[[int], int] = secrets.randbelow) -> None:
        self._full = settings.max_unauthenticated
        self._start = min(settings.unauthenticated_drop_start, self._full)
        self._rate = settings.unauthenticated_drop_rate
        self._per_source = settings.max_unauthenticated_per_source
        self._chance = chance  # n -> a number in [0, n), uniformly (tests fix it)
        self._arrivals = itertools.count()
        self._held: dict[str, list[tuple[int, T]]] = {}  # source -> (arrival, connection)
        self.count = 0

    def held(self, source: str) -> int:
        return len(self._held.get(source, ()))

    def arrive(self, source: str, newcomer: T) -> tuple[T, str] | None:
        """Count ``newcomer`` from ``source``: the connection to drop now (the newcomer or
        another, no longer counted) and the limit that drops it, or None."""
        if self.held(source) >= self._per_source:
            return newcomer, "max_unauthenticated_per_source"
        existing = self.count
        self._held.setdefault(source, []).append((next(self._arrivals), newcomer))
        self.count += 1
        if not self._drops(existing):
            return None
        return self._drop_newest_of_largest(), "max_unauthenticated"

    def leave(self, source: str, connection: T) -> None:
        """``connection`` logged in or is gone (again: nothing happens)."""
        held = self._held.get(source, [])
        for index, (_, counted) in enumerate(held):
            if counted is connection:
                del held[index]
                self.count -= 1
                break
        if not held:
            self._held.pop(source, None)

    def _drops(self, existing: int) -> bool:
        """Whether one more beside ``existing`` makes one go: never below start, at random
        from start (rate percent) rising linearly to always at full (sshd's drop_connection)."""
        if existing >= self._full:
            return True
        if existing < self._start:
            return False
        percent = self._rate + (100 - self._rate) * (existing - self._start) \
            // (self._full - self._start)
        return self._chance(100) < percent

    def _drop_newest_of_largest(self) -> T:
        """The newest connection of the source holding the most (of those, the one whose
        newest came last: the newcomer's own source when it is one of them)."""
        source = max(self._held, key=lambda held: (len(self._held[held]),
                                                   self._held[held][-1][0]))
        _, connection = self._held[source][-1]
        self.leave(source, connection)
        return connection


class _Census:
    """What the listener holds now over all its connections."""

    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings
        self.startups: Startups[_SSHServer] = Startups(settings)
        self.connections: Counter[str] = Counter()
        self.sessions: Counter[str] = Counter()
        self._watching: set[asyncio.Task[None]] = set()

    def hold_session(self, partner_id: str, channel: asyncssh.SSHServerChannel[bytes]) -> None:
        """Count a session of ``partner_id`` until its channel is closed, however that comes
        (asyncssh closes a channel in every case, even one whose opening never completed,
        while its session object may never hear of it)."""
        self.sessions[partner_id] += 1
        watch = asyncio.get_running_loop().create_task(self._until_closed(partner_id, channel))
        self._watching.add(watch)
        watch.add_done_callback(self._watching.discard)

    async def _until_closed(self, partner_id: str,
                            channel: asyncssh.SSHServerChannel[bytes]) -> None:
        try:
            await channel.wait_closed()
        finally:
            _release(self.sessions, partner_id)


def _release(counter: Counter[str], partner_id: str) -> None:
    counter[partner_id] -= 1
    if counter[partner_id] <= 0:
        del counter[partner_id]


class _SSHServer(asyncssh.SSHServer):
    """Public keys only (DESIGN rule 5): no passwords, no keyboard-interactive.  Counts the
    connection while it logs in (``Startups``) and, once logged in, against its partner."""

    def __init__(self, access: PartnerAccess, census: _Census, submit: Submit) -> None:
        self._access = access
        self._census = census
        self._submit = submit
        self._connection: Any = None
        self._source = ""
        self._banner_timer: asyncio.TimerHandle | None = None
        self._partner_id: str | None = None  # once logged in, counted against it
        self._refusal: str | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn
        settings = self._census.settings
        self._source = source_block(conn.get_extra_info("peername"), settings)
        self._banner_timer = asyncio.get_running_loop().call_later(
            settings.banner_timeout_seconds, self._banner_due)
        dropped = self._census.startups.arrive(self._source, self)
        if dropped is None:
            return
        connection, limit = dropped
        if limit == "max_unauthenticated_per_source":
            connection._refuse("too many connections from your address are logging in (at "
                               f"most {settings.max_unauthenticated_per_source} at once); try "
                               "again later", None, limit)
        else:
            connection._refuse("too many connections are logging in (at most "
                               f"{settings.max_unauthenticated} at once); try again later",
                               None, limit)

    def _banner_due(self) -> None:
        """RFC 4253 section 4.2: a client sends its identification string as soon as it is
        connected; one that has not after ``banner_timeout_seconds`` only holds a slot."""
        self._banner_timer = None
        if self._connection.get_extra_info("client_version") is None:
            self._refuse("no SSH identification string received in time (RFC 4253 section "
                         "4.2)", None, "banner_timeout_seconds", asyncssh.DISC_PROTOCOL_ERROR)

    def connection_lost(self, exc: Exception | None) -> None:
        self._logged_in()
        if self._partner_id is not None:
            _release(self._census.connections, self._partner_id)
            self._partner_id = None

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

    def auth_completed(self) -> None:
        self._logged_in()
        partner_id = self._access.logins[self._connection.get_extra_info("username")]
        self._partner_id = partner_id
        self._census.connections[partner_id] += 1
        limit = self._census.settings.max_connections_per_partner
        if self._census.connections[partner_id] > limit:
            self._refuse(f"too many SSH connections: partner {partner_id} may have {limit} "
                         "at once", partner_id, "max_connections_per_partner")

    def session_requested(self) -> tuple[asyncssh.SSHServerChannel[bytes], _SftpSession]:
        partner_id = self._partner_id
        if partner_id is None or self._refusal is not None:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            self._refusal or "not logged in")
        limit = self._census.settings.max_sessions_per_partner
        if self._census.sessions[partner_id] >= limit:
            event(log, "sftp_limit", level=logging.WARNING, partner=partner_id,
                  limit="max_sessions_per_partner", value=limit)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"too many SFTP sessions: partner {partner_id} may have {limit} open at once")
        channel = self._connection.create_server_channel(encoding=None)
        self._census.hold_session(partner_id, channel)
        return channel, _SftpSession(
            lambda chan, reader, writer: self._serve(partner_id, chan, reader, writer))

    async def _serve(self, partner_id: str, chan: asyncssh.SSHServerChannel[bytes],
                     reader: asyncssh.SSHReader[bytes],
                     writer: asyncssh.SSHWriter[bytes]) -> None:
        server = MailboxSFTPServer(chan, partner_id, self._access, self._submit)
        await _SessionHandler(server, reader, writer).run()

    def _logged_in(self) -> None:
        """The connection no longer counts as logging in (it did, or it is gone)."""
        self._census.startups.leave(self._source, self)
        if self._banner_timer is not None:
            self._banner_timer.cancel()
            self._banner_timer = None

    def _refuse(self, message: str, partner_id: str | None, limit: str,
                code: int = asyncssh.DISC_TOO_MANY_CONNECTIONS) -> None:
        """Disconnect with ``message`` (by default SSH disconnect reason 12, RFC 4253 section
        11.1); from now on it holds no slot and opens nothing."""
        self._refusal = message
        self._logged_in()
        event(log, "sftp_refused", level=logging.WARNING, reason=message, partner=partner_id,
              limit=limit, peer=self._connection.get_extra_info("peername"))
        asyncio.get_running_loop().call_soon(self._connection.disconnect, code, message)


# --- keys and the listener ---------------------------------------------------------------------


def write_private_key(key: asyncssh.SSHKey, path: Path) -> bool:
    """Write ``key`` to ``path`` unless a file is there (False then).  The key is written
    under a unique name created 0600 (never readable by others, whatever the umask), synced,
    and linked into place, so it is never seen half written and never replaces another key
    (two starts at once keep the first one's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        with open(fd, "wb") as handle:
            handle.write(key.export_private_key())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staging, path)
        except FileExistsError:
            return False
    finally:
        os.unlink(staging)
    return True


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The host key is generated once and kept (DESIGN rule 5), so partners can pin it."""
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519")
        if write_private_key(key, path):
            key.write_public_key(path.with_suffix(".pub"))
            return key
    _keep_private(path)
    return asyncssh.read_private_key(path)


def _keep_private(path: Path) -> None:
    """A host key others may read (an earlier version wrote it 0644 before its chmod, and a
    crash in between left it so) is made private again, with an alarm: sshd refuses such a
    key; here it may already have been copied, which only a new key and new pins undo."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)
        event(log, "host_key_was_readable", level=logging.ERROR, path=str(path),
              mode=f"{mode:04o}", advice="if others could read it, make a new host key "
              "(delete it and restart) and give partners the new fingerprint")


async def start_server(host: str, port: int, host_key: asyncssh.SSHKey, access: PartnerAccess,
                       submit: Submit) -> asyncssh.SSHAcceptor:
    census = _Census(access.settings)
    return await asyncssh.create_server(
        lambda: _SSHServer(access, census, submit), host, port, server_host_keys=[host_key],
        login_timeout=access.settings.login_timeout_seconds,
        keepalive_interval=access.settings.keepalive_seconds,
        keepalive_count_max=KEEPALIVE_COUNT_MAX, agent_forwarding=False, allow_pty=False)
