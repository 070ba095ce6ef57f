"""The agency's own record of what it decided, by delivery ``message_id``: written (and synced)
before any answer is published, so a redelivery of the same message (the adapter died before
its acknowledgement reached RabbitMQ) republishes the same answers under the same message ids
instead of deciding again.

SQLite from the standard library, on one thread of its own (a connection belongs to the thread
that made it; the event loop never waits on the disk).  The first decision recorded for a
delivery wins: two consumers sharing one journal file that decide the same delivery at once
both publish the first one's answers."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.agency.answers import Outgoing
from gateway.transports.durable import make_folder

Result = TypeVar("Result")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decided (
    delivery_id TEXT PRIMARY KEY,
    decided_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    answers     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    delivery_id TEXT NOT NULL REFERENCES decided (delivery_id),
    position    INTEGER NOT NULL,
    message_id  TEXT NOT NULL,
    type        TEXT NOT NULL,
    body        BLOB NOT NULL,
    PRIMARY KEY (delivery_id, position)
);
"""


def default_journal_path(code: str) -> Path:
    """``var/agency/<code>.journal.sqlite``, from the working directory."""
    return Path("var") / "agency" / f"{code}.journal.sqlite"


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agency-journal")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path) -> Journal:
        journal = cls(path)
        try:
            await journal._run(journal._open)
        except BaseException:
            journal._thread.shutdown(wait=False)
            raise
        return journal

    async def recorded(self, delivery_id: str) -> tuple[Outgoing, ...] | None:
        """The answers decided for ``delivery_id`` (possibly none), or None when it was never
        decided."""
        return await self._run(self._recorded, delivery_id)

    async def record(self, delivery_id: str,
                     answers: Sequence[Outgoing]) -> tuple[Outgoing, ...]:
        """Keep ``answers`` as the decision on ``delivery_id``, durably, unless one is kept
        already; returns the decision kept (the earlier one, if any)."""
        return await self._run(self._record, delivery_id, tuple(answers))

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._close)
        self._thread.shutdown(wait=True)

    async def _run(self, function: Callable[..., Result], *args: object) -> Result:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, function, *args)

    def _open(self) -> None:
        make_folder(self.path.parent)
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            # WAL with synchronous=FULL: a committed decision survives a power cut.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")  # another process sharing the file
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _connection(self) -> sqlite3.Connection:
        assert self._db is not None, "the journal is closed"
        return self._db

    def _recorded(self, delivery_id: str) -> tuple[Outgoing, ...] | None:
        db = self._connection()
        if db.execute("SELECT 1 FROM decided WHERE delivery_id = ?",
                      (delivery_id,)).fetchone() is None:
            return None
        rows = db.execute("SELECT message_id, type, body FROM answers WHERE delivery_id = ?"
                          " ORDER BY position", (delivery_id,)).fetchall()
        return tuple(Outgoing(m, t, bytes(b)) for m, t, b in rows)

    def _record(self, delivery_id: str, answers: tuple[Outgoing, ...]) -> tuple[Outgoing, ...]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            taken = db.execute("INSERT INTO decided (delivery_id, answers) VALUES (?, ?)"
                               " ON CONFLICT DO NOTHING", (delivery_id, len(answers)))
            if taken.rowcount == 1:
                db.executemany(
                    "INSERT INTO answers (delivery_id, position, message_id, type, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(delivery_id, n, a.message_id, a.type, a.body)
                     for n, a in enumerate(answers, start=1)])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if taken.rowcount == 1:
            return answers
        kept = self._recorded(delivery_id)
        assert kept is not None
        return kept

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
