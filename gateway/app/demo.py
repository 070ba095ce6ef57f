"""Demo set-up: the demo partner's SSH key, made on the first ``make run`` and never
committed."""

from __future__ import annotations

from pathlib import Path

from gateway.transports.sftp import create_key_pair


def ensure_key(path: Path) -> bool:
    """Create an Ed25519 key pair at ``path`` / ``path.pub`` unless it exists."""
    return create_key_pair(path, Path(f"{path}.pub"),
                           comment="demo-van@single-window-gateway") is not None
