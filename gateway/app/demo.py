"""Demo set-up: the demo partner's SSH key, made on the first ``make run`` and never
committed."""

from __future__ import annotations

from pathlib import Path

import asyncssh

from gateway.transports.sftp import write_private_key


def ensure_key(path: Path) -> bool:
    """Create an Ed25519 key pair at ``path`` / ``path.pub`` unless it exists."""
    if path.exists():
        return False
    key = asyncssh.generate_private_key("ssh-ed25519", comment="demo-van@single-window-gateway")
    if not write_private_key(key, path):  # made meanwhile by another start
        return False
    key.write_public_key(Path(f"{path}.pub"))
    return True
