"""What /metrics reads from the store at scrape time: backlogs and their age.

Every query here walks a partial index whose rows are only the waiting (or parked) ones, so a
scrape costs what is waiting, never what is stored: with a million dispatched rows and an empty
backlog each one reads a handful of index pages.  A statement timeout bounds a scrape behind a
huge backlog all the same (the scrape then says the store did not answer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.store.database import translated_errors

#: A scrape waits at most this long for each query (asyncpg cancels it on the server too).
QUERY_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Waiting:
    """One destination's rows not yet dispatched nor parked."""

    channel: str
    destination: str
    rows: int
    #: Seconds since the oldest of them was queued.
    oldest_age_seconds: float


@dataclass(frozen=True, slots=True)
class Backlog:
    outbox: tuple[Waiting, ...]
    #: Submissions received and not yet decided, and the age of the oldest (0 when none).
    undecided: int
    undecided_oldest_age_seconds: float
    parked_submissions: int
    parked_outbox_rows: int
    #: Messages waiting for ops: held (a licence, a rule's hold) and unroutable (no rule).
    held_messages: int = 0
    unroutable_messages: int = 0


async def ping(connection: Any, seconds: float) -> None:
    """``SELECT 1``: raises StoreUnavailable/StoreRefused (or TimeoutError) when the database
    does not answer."""
    async with translated_errors("checking the database"):
        await connection.fetchval("SELECT 1", timeout=seconds)


async def backlog(connection: Any, seconds: float = QUERY_TIMEOUT_SECONDS) -> Backlog:
    async with translated_errors("reading the backlog for /metrics"):
        # outbox_waiting (channel, destination, id) WHERE dispatched_at IS NULL AND parked_at
        # IS NULL: an index-only count per destination, then the oldest row by primary key.
        outbox = await connection.fetch(
            "SELECT w.channel, w.destination, w.rows,"
            " extract(epoch FROM now() - o.created_at)::float8 AS age"
            " FROM (SELECT channel, destination, count(*) AS rows, min(id) AS first_id"
            "       FROM outbox WHERE dispatched_at IS NULL AND parked_at IS NULL"
            "       GROUP BY channel, destination) w"
            " JOIN outbox o ON o.id = w.first_id"
            " ORDER BY w.channel, w.destination", timeout=seconds)
        # interchanges_waiting (id) WHERE status = 'received'; interchanges_parked (id) WHERE
        # status = 'parked'; outbox_parked (interchange_id) WHERE parked_at IS NOT NULL;
        # messages_waiting (status, id) WHERE status IN ('held', 'unroutable').
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM interchanges WHERE status = 'received') AS undecided,"
            " (SELECT extract(epoch FROM now() - received_at)::float8 FROM interchanges"
            "   WHERE status = 'received' ORDER BY id LIMIT 1) AS oldest,"
            " (SELECT count(*) FROM interchanges WHERE status = 'parked') AS parked,"
            " (SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL) AS parked_rows,"
            " (SELECT count(*) FROM messages WHERE status = 'held') AS held,"
            " (SELECT count(*) FROM messages WHERE status = 'unroutable') AS unroutable",
            timeout=seconds)
    return Backlog(
        outbox=tuple(Waiting(r["channel"], r["destination"], int(r["rows"]),
                             max(0.0, float(r["age"]))) for r in outbox),
        undecided=int(row["undecided"]),
        undecided_oldest_age_seconds=max(0.0, float(row["oldest"] or 0.0)),
        parked_submissions=int(row["parked"]), parked_outbox_rows=int(row["parked_rows"]),
        held_messages=int(row["held"]), unroutable_messages=int(row["unroutable"]))
