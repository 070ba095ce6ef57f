"""Partner mailboxes on disk: ``<root>/<partner>/inbox`` (they upload) and ``outbox`` (we
answer).  Files appear in an outbox atomically: written under a hidden name, synced, renamed."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.errors import TransportError

INBOX = "inbox"
OUTBOX = "outbox"


class Mailboxes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def home(self, partner_id: str) -> Path:
        return self.root / partner_id

    def prepare(self, partner_ids: tuple[str, ...]) -> None:
        """Create every partner's inbox and outbox (idempotent)."""
        for partner_id in partner_ids:
            for folder in (INBOX, OUTBOX):
                (self.home(partner_id) / folder).mkdir(parents=True, exist_ok=True)

    def deliver(self, partner_id: str, file_name: str, body: bytes) -> Path:
        """Write a file into a partner's outbox; the same name twice leaves one file."""
        if "/" in file_name or file_name.startswith("."):
            raise TransportError(f"refusing outbox file name {file_name!r}")
        outbox = self.home(partner_id) / OUTBOX
        target = outbox / file_name
        hidden = outbox / f".{file_name}.part"
        try:
            outbox.mkdir(parents=True, exist_ok=True)
            with open(hidden, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(hidden, target)
        except OSError as exc:
            raise TransportError(f"cannot write {target}: {exc.strerror}") from exc
        return target
