"""Files that survive a power cut once written: the answers in partners' outboxes and the
gateway's private keys.

A file is written under a short, unique hidden name in its folder (created exclusively, with
its final mode: never readable by others half way), synced, then put in place in one step and
the folder synced too (fsync(2): the new directory entry is not durable until its directory
is).  It is never seen half written, and two writers of one name never share a staging file."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_file(target: Path, body: bytes, *, mode: int = 0o644,
               keep_existing: bool = False, sync: bool = True) -> bool:
    """``body`` under ``target``, all or nothing.  ``keep_existing``: an existing ``target``
    is kept and False returned (a private key made by another start wins); otherwise it is
    replaced.  ``target``'s folder must exist (``make_folder``).  ``sync=False`` leaves the
    folder's fsync (what makes the name durable) to the caller, who writes several files
    and syncs their folder once."""
    folder = target.parent
    hidden = folder / f".{secrets.token_hex(8)}.part"
    descriptor = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, mode)
    try:
        with open(descriptor, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_existing:
            try:
                os.link(hidden, target)
            except FileExistsError:
                return False
        else:
            os.replace(hidden, target)
    finally:
        with contextlib.suppress(OSError):  # gone once in place; a full disk keeps no half
            os.unlink(hidden)
    if sync:
        sync_folder(folder)
    return True


def make_folder(path: Path) -> None:
    """``path`` and its missing parents, each new entry synced in the folder holding it."""
    if path.is_dir():
        return
    make_folder(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return  # made meanwhile by another writer, which syncs it
    sync_folder(path.parent)


def sync_folder(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
