"""What one handle opened for writing holds: its own anonymous staging file.

Every handle opened for writing gets a staging file of its own: an anonymous file (O_TMPFILE
where the file system has it) in the partner's inbox folder, which no other handle, session or
partner can reach, which nothing of a client's file name touches, and which vanishes with the
process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

import asyncssh

from gateway.transports.sftp.names import as_text


class Upload:
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


def write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def read_all(fd: int, size: int) -> bytes:
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def set_attributes(size: int, attrs: asyncssh.SFTPAttrs) -> None:
    """An upload is its bytes: permissions, owner and times are not kept, and setting them
    succeeds (OpenSSH ``put -p`` and WinSCP's preserved timestamps send them); its size
    (``size`` now) changes only by writing."""
    if attrs.size is not None and attrs.size != size:
        raise asyncssh.SFTPOpUnsupported("an upload's size changes only by writing it")

