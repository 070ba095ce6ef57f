"""Reading an operator's file whole, or not at all.

Operators and their tools write files in ways the gateway cannot choose: in place with several
writes (``cat > f``, ``cp``, an editor keeping the inode), or into a temporary file renamed over
the old one (``mv``, rsync, most editors, configuration management).  A read must never take a
file half way through such a write, so ``read_snapshot`` reads through one descriptor and keeps
the text only when the file's identity (device, inode, size, modification and change times in
ns) is the same before and after the read and the path still names that file.  Whether a
complete read is also a *finished* edit (a tool may pause between two writes) is the reloader's
question: app/routing_reload.py waits until the file has been quiet for a settle time.

Only a regular file of at most MAX_CONFIG_BYTES of UTF-8 is read at all: a FIFO would block the
reader for ever, a device such as /dev/zero never ends, and YAML is parsed by pure Python (about
5 s per MiB here), so anything larger is refused before it is read.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError

#: The largest configuration file read: the shipped ones are a few KiB.
MAX_CONFIG_BYTES = 1024 * 1024
#: How often a file found changing while it is read is read again before giving up.
STABLE_READ_ATTEMPTS = 5
_RETRY_PAUSE_SECONDS = 0.05
_CHUNK = 64 * 1024

#: (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): equal before and after a read when
#: nothing wrote, truncated, replaced or re-timed the file meanwhile (ctime also catches a
#: tool that writes and then sets an old mtime back, as ``cp -p`` and ``tar`` do).
Identity = tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One complete read of a file that held still while it was read."""

    path: Path
    data: bytes
    identity: Identity
    #: st_mtime (wall clock): how long the file has been quiet, as the file system saw it.
    modified: float

    @property
    def text(self) -> str:
        """The file as UTF-8 (decoded when asked: a write that stops inside a character is
        not an error until the file has been quiet long enough to be judged)."""
        return decoded(self.data, str(self.path))


def read_text(path: Path) -> str:
    """The whole text of ``path``; a file that keeps changing while it is read is an error
    (start-up and commands: nobody should be writing the file then)."""
    for attempt in range(STABLE_READ_ATTEMPTS):
        snapshot = read_snapshot(path)
        if snapshot is not None:
            return snapshot.text
        time.sleep(_RETRY_PAUSE_SECONDS * (attempt + 1))
    raise ConfigError(f"{path}: the file kept changing while it was read; "
                      "read it again once it is written")


def read_snapshot(path: Path) -> Snapshot | None:
    """The text and identity of ``path``, or None when it changed while it was read."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer for ever.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        before = os.fstat(descriptor)
        _check_kind(path, before)
        data = _read_bounded(path, descriptor)
        after = os.fstat(descriptor)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    finally:
        os.close(descriptor)
    if identity(before) != identity(after) or len(data) != after.st_size \
            or not _still_named(path, after):
        return None
    return Snapshot(path, data, identity(after), after.st_mtime)


def identity(status: os.stat_result) -> Identity:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns,
            status.st_ctime_ns)


def decoded(data: bytes, name: str) -> str:
    """``data`` as UTF-8, or a ConfigError naming the line and column of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError(f"{name}:{line}:{column}: not UTF-8 (byte 0x{data[exc.start]:02x}); "
                          "save the file as UTF-8") from exc


def _check_kind(path: Path, status: os.stat_result) -> None:
    if not stat.S_ISREG(status.st_mode):
        kind = "a directory" if stat.S_ISDIR(status.st_mode) else "not a regular file"
        raise ConfigError(f"{path}: cannot read: {kind} (a configuration file must be a "
                          "regular file)")
    check_size(str(path), status.st_size)


def check_size(name: str, size: int) -> None:
    """Refuse a configuration larger than MAX_CONFIG_BYTES (bytes, or characters of a text
    that did not come from a file)."""
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{name}: {size} bytes is larger than a configuration file may be "
                          f"({MAX_CONFIG_BYTES} bytes)")


def _read_bounded(path: Path, descriptor: int) -> bytes:
    """At most MAX_CONFIG_BYTES: a file that grows while it is read is refused, not followed."""
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(descriptor, _CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        check_size(str(path), size)
    return b"".join(chunks)


def _still_named(path: Path, status: os.stat_result) -> bool:
    """The path still names the file read: not renamed over, moved away or deleted since."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (status.st_dev, status.st_ino)
