"""Private keys: the SFTP host key (made once and kept, so partners can pin it) and the
writing of a private key that is never readable by others, not even for a moment."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import asyncssh

from gateway import alarms
from gateway.logs import event
from gateway.transports.durable import make_folder, write_file

log = logging.getLogger("gateway.sftp")


def write_private_key(key: asyncssh.SSHKey, path: Path) -> bool:
    """Write ``key`` to ``path`` unless a file is there (False then): created 0600 (never
    readable by others, whatever the umask), synced with its folder, and linked into place,
    so it is never seen half written, survives a power cut (partners pin it), and never
    replaces another key (two starts at once keep the first one's)."""
    make_folder(path.parent)
    return write_file(path, key.export_private_key(), mode=0o600, keep_existing=True)


def create_key_pair(path: Path, public: Path, comment: str | None = None
                    ) -> asyncssh.SSHKey | None:
    """A new Ed25519 key written private at ``path`` (``write_private_key``) and its public
    half at ``public``; None when a key is there already, or another start made it meanwhile
    (that one is kept)."""
    if path.exists():
        return None
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    if not write_private_key(key, path):
        return None
    key.write_public_key(public)
    return key


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The host key is generated once and kept (DESIGN rule 5), so partners can pin it."""
    key = create_key_pair(path, path.with_suffix(".pub"))
    if key is not None:
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
        event(log, "host_key_was_readable", level=logging.ERROR,
              code=alarms.HOST_KEY_WAS_READABLE, path=str(path),
              mode=f"{mode:04o}", advice="if others could read it, make a new host key "
              "(delete it and restart) and give partners the new fingerprint")

