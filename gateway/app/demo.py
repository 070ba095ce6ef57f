"""Demo set-up: the demo partner's SSH key, made on the first ``make run`` and never
committed."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh


def ensure_key(path: Path) -> bool:
    """Create an Ed25519 key pair at ``path`` / ``path.pub`` unless it exists."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="demo-van@single-window-gateway")
    key.write_private_key(path)
    os.chmod(path, 0o600)
    key.write_public_key(Path(f"{path}.pub"))
    return True
