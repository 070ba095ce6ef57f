"""What a session's ``outbox/`` holds: the partner's answers, which it lists, reads and
deletes, and nothing else (``sftp.mailbox_store``).

- ``DiskOutbox``: the files in ``<mailboxes>/<partner>/outbox`` on this node's disk; the
  relay's files in progress (hidden names) and anything that is not a regular file are not
  shown, and links are never followed.
- ``DatabaseOutbox``: the rows of table mailbox_files (store/mailbox_files.py), which every
  node on the database serves alike: a file deleted through one node is gone on all at once.
  A handle reads the answer from the database by chunks of READ_CHUNK, never the whole
  answer at once; it keeps reading the file it opened even once it is deleted (as a file
  unlinked on disk).

Names are the client's bytes; a name that no answer can have (not UTF-8, a control or NUL
character, too long, hidden: transports.mailbox.name_refusal) is no such file, whichever."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import asyncssh

from gateway.errors import StoreError
from gateway.logs import event
from gateway.store import mailbox_files
from gateway.store.database import translated_errors
from gateway.transports.mailbox import OUTBOX, name_refusal

log = logging.getLogger("gateway.sftp")


def no_such_file() -> asyncssh.SFTPNoSuchFile:
    return asyncssh.SFTPNoSuchFile("no such file")


class OutboxFolder(Protocol):
    """One partner's outbox/ as one session sees it.  ``open`` returns a handle the other
    methods take; every miss is SFTPNoSuchFile."""

    async def listing(self) -> list[tuple[bytes, os.stat_result]]: ...

    async def stat(self, name: bytes) -> os.stat_result: ...

    async def open(self, name: bytes) -> object: ...

    async def read(self, handle: object, offset: int, size: int) -> bytes: ...

    def fstat(self, handle: object) -> os.stat_result: ...

    def close(self, handle: object) -> None: ...

    async def remove(self, name: bytes) -> None: ...


class Outboxes(Protocol):
    """Every partner's outbox, as the sessions' servers get them."""

    def of(self, partner_id: str) -> OutboxFolder: ...


class DiskOutbox:
    def __init__(self, home: Path) -> None:
        self._folder = os.fsencode(home / OUTBOX)

    async def listing(self) -> list[tuple[bytes, os.stat_result]]:
        found = []
        with os.scandir(self._folder) as entries:
            for entry in entries:
                if not entry.name.startswith(b".") and entry.is_file(follow_symlinks=False):
                    found.append((entry.name, entry.stat(follow_symlinks=False)))
        return found

    async def stat(self, name: bytes) -> os.stat_result:
        try:
            found = os.lstat(self._path(name))
        except FileNotFoundError as exc:
            raise no_such_file() from exc
        if not stat.S_ISREG(found.st_mode):
            raise no_such_file()
        return found

    async def open(self, name: bytes) -> object:
        # O_NOFOLLOW: never through a link; O_NONBLOCK: a FIFO cannot hold the event loop.
        try:
            fd = os.open(self._path(name),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise no_such_file() from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise no_such_file()
        return _Descriptor(fd)

    async def read(self, handle: object, offset: int, size: int) -> bytes:
        return os.pread(cast(_Descriptor, handle).fd, size, offset)

    def fstat(self, handle: object) -> os.stat_result:
        return os.fstat(cast(_Descriptor, handle).fd)

    def close(self, handle: object) -> None:
        os.close(cast(_Descriptor, handle).fd)

    async def remove(self, name: bytes) -> None:
        await self.stat(name)  # a visible answer, or no such file
        os.remove(self._path(name))

    def _path(self, name: bytes) -> bytes:
        if name.startswith(b"."):  # the relay's answers being written (mailbox.py)
            raise no_such_file()
        return os.path.join(self._folder, name)


@dataclass(frozen=True)
class _Descriptor:
    """A handle on a file of the disk: its open descriptor (closed by ``close``)."""

    fd: int


class DiskOutboxes:
    def __init__(self, root: Path) -> None:
        self._root = root

    def of(self, partner_id: str) -> OutboxFolder:
        return DiskOutbox(self._root / partner_id)


#: What one statement reads of an answer for an open handle: a client's READs (16 to 256 KiB
#: each) are served from it, one round trip to the database per chunk, not per READ, and a
#: handle holds at most this much (or one READ's length, MAX_SFTP_READ_LEN at most).
READ_CHUNK = 256 * 1024


@dataclass
class _Opened:
    """A handle on a file of the database: its row, and the chunk of it read last."""

    file: mailbox_files.MailboxFile
    reading: asyncio.Lock = field(default_factory=asyncio.Lock)
    start: int = 0
    chunk: bytes = b""


class DatabaseOutbox:
    def __init__(self, pool: Any, partner_id: str) -> None:
        self._pool = pool
        self._partner_id = partner_id

    async def listing(self) -> list[tuple[bytes, os.stat_result]]:
        async with self._connection() as connection:
            files = await mailbox_files.listing(connection, self._partner_id)
        return [(found.name.encode(), _stat_of(found)) for found in files]

    async def stat(self, name: bytes) -> os.stat_result:
        return _stat_of(await self._present(name))

    async def open(self, name: bytes) -> object:
        return _Opened(await self._present(name))

    async def read(self, handle: object, offset: int, size: int) -> bytes:
        opened = cast(_Opened, handle)
        if offset >= opened.file.size:
            return b""
        end = min(offset + size, opened.file.size)
        # asyncssh serves a session's requests one at a time; the lock keeps the chunk whole
        # should that change (READs in flight together: the first reads, the rest wait).
        async with opened.reading:
            if not opened.start <= offset or end > opened.start + len(opened.chunk):
                async with self._connection() as connection:
                    opened.chunk = await mailbox_files.read(
                        connection, opened.file.id, offset, max(size, READ_CHUNK))
                opened.start = offset
            return opened.chunk[offset - opened.start:end - opened.start]

    def fstat(self, handle: object) -> os.stat_result:
        return _stat_of(cast(_Opened, handle).file)

    def close(self, handle: object) -> None:
        """No connection is held open (each read is one statement); the chunk goes."""
        cast(_Opened, handle).chunk = b""

    async def remove(self, name: bytes) -> None:
        text = _answer_name(name)
        async with self._connection() as connection:
            if not await mailbox_files.remove(connection, self._partner_id, text):
                raise no_such_file()

    async def _present(self, name: bytes) -> mailbox_files.MailboxFile:
        text = _answer_name(name)
        async with self._connection() as connection:
            found = await mailbox_files.present(connection, self._partner_id, text)
        if found is None:
            raise no_such_file()
        return found

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection for one statement; the store failing is an SFTP failure the
        client reads ("try again"), not a session torn down."""
        try:
            async with translated_errors("sftp outbox"), self._pool.acquire() as connection:
                yield connection
        except StoreError as exc:
            event(log, "outbox_unavailable", level=logging.ERROR, partner=self._partner_id,
                  error=str(exc))
            raise asyncssh.SFTPFailure("the gateway cannot read its outboxes at the moment; "
                                       "try again shortly") from exc


class DatabaseOutboxes:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    def of(self, partner_id: str) -> OutboxFolder:
        return DatabaseOutbox(self._pool, partner_id)


def _answer_name(name: bytes) -> str:
    """The answer's name a client's bytes give, or no such file: no answer has any other."""
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise no_such_file() from exc
    if name_refusal(text) is not None:
        raise no_such_file()
    return text


_UID, _GID = os.getuid(), os.getgid()


def _stat_of(found: mailbox_files.MailboxFile) -> os.stat_result:
    """What the partner sees of a file of the database: a regular file of its size (the mode
    of an answer on disk), modified when it was written."""
    when = found.created_at.timestamp()
    seconds, nanoseconds = int(when), int(when * 1_000_000) * 1000
    return os.stat_result((stat.S_IFREG | 0o644, found.id, 0, 1, _UID, _GID, found.size,
                           seconds, seconds, seconds, when, when, when,
                           nanoseconds, nanoseconds, nanoseconds))


