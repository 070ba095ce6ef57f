"""``sftp.mailbox_store: database``: the files partners deleted stay in mailbox_files (a
handle open on one reads on) until ``sftp.mailbox_retention_days`` later, when this loop
deletes them: hourly, in bounded batches, on whichever nodes run it (the deletes of two nodes
never clash: each row goes once)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.app.workers import poll_forever
from gateway.logs import event
from gateway.store import mailbox_files
from gateway.store.database import translated_errors

log = logging.getLogger("gateway.mailbox")
#: How often removed files are looked for once none are left to purge.
PURGE_EVERY_SECONDS = 3600.0
#: Rows deleted in one statement: a backlog goes in short transactions.
PURGE_BATCH = 500


class MailboxPurge:
    def __init__(self, pool: Any, retention_days: float,
                 every: float = PURGE_EVERY_SECONDS) -> None:
        self._pool = pool
        self._retention_days = retention_days
        self._every = every

    async def run(self) -> None:
        await poll_forever("mailbox-purge", self.purge, asyncio.Event(), self._every)

    async def purge(self) -> bool:
        """One batch; True: it was full, so more may be due at once."""
        async with translated_errors("mailbox purge"), self._pool.acquire() as connection:
            purged = await mailbox_files.purge_removed(connection, self._retention_days,
                                                       PURGE_BATCH)
        if purged:
            event(log, "mailbox_files_purged", files=purged,
                  retention_days=self._retention_days)
        return purged == PURGE_BATCH
