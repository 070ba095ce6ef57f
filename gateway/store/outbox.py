"""The transactional outbox: rows written with the decision, dispatched by the relays.

Rows to one destination (an agency's queue, a partner's mailbox) go out in id order, the order
they were decided in: a row that waits for its retry holds back the later rows of its own
destination and no other (DESIGN rule 6), even with several relays taking rows at once.
The order is per destination, not per (destination, declaration): what one message depends on
is not only an earlier message with its document reference (a declaration refers to a
manifest, a gate-out follows a release), and an agency that reads its queue in the order the
gateway decided never has to know which.  What that costs, one row holding back its
destination, is bounded: a row that can never go is parked at once, one failing on its own
after MAX_ROW_FAILURES (app/relay.py); only a failing destination waits as long as it fails.
A row that fails on its own is parked after a bounded number of failures (``parked_at``): it
stops holding back its destination, waits for ops, and ``requeue_parked`` puts it back."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.security.signing import Signature
from gateway.store.storable import storable_document, storable_text

Connection = Any


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    interchange_id: int
    message_id: int | None
    channel: str
    destination: str
    dispatch_key: str
    body: bytes
    properties: dict[str, Any]
    attempts: int
    #: Failures of the row itself (not of its broker or destination): parked at a bound.
    row_failures: int


class Scope(enum.Enum):
    """Whom a failed dispatch is about, which decides what waits for the retry."""

    #: This row alone (a bug, an error nobody can place): retried with backoff, holding back
    #: only the later rows of its destination, and parked after a bounded number of failures.
    ROW = "row"
    #: This row can never go as it is (too big for the broker, a name no file system takes):
    #: parked at once, with an alarm.
    UNDELIVERABLE = "undeliverable"
    #: Its destination (an agency's queue missing or full, a partner's mailbox unwritable):
    #: that destination waits with backoff, for as long as it takes; never parked.
    DESTINATION = "destination"
    #: Every row of the channel (the broker unreachable, the disk full): the relay pauses.
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a dispatch failed, as its dispatcher (which knows its library) classifies it."""

    scope: Scope
    error: str


@dataclass(frozen=True, slots=True)
class ParkedRow:
    id: int
    interchange_id: int
    channel: str
    destination: str
    dispatch_key: str


_COLUMNS = ("id, interchange_id, message_id, channel, destination, dispatch_key, body,"
            " properties, attempts, row_failures")
_PENDING = "dispatched_at IS NULL AND parked_at IS NULL"
#: Above any row id (bigint): the bound of a destination no row in backoff holds back.
_NO_ID = "9223372036854775807"


async def add(connection: Connection, *, interchange_id: int, message_id: int | None,
              channel: str, destination: str, dispatch_key: str, body: bytes,
              properties: dict[str, Any]) -> int:
    """One row (``add_many`` of one: the rows are written one way); its id."""
    (row_id,) = await add_many(connection, [NewRow(
        interchange_id=interchange_id, message_id=message_id, channel=channel,
        destination=destination, dispatch_key=dispatch_key, body=body, properties=properties)])
    return row_id


async def existing_keys(connection: Connection, keys: list[str]) -> set[str]:
    """Those of ``keys`` some outbox row was written under (each is written once)."""
    rows = await connection.fetch(
        "SELECT dispatch_key FROM outbox WHERE dispatch_key = ANY($1::text[])", keys)
    return {r["dispatch_key"] for r in rows}


async def claim_pending(connection: Connection, channel: str, limit: int) -> list[OutboxRow]:
    """Lock and return, in id order, the due rows that may go now: those with no earlier row
    of their destination still waiting, except earlier rows claimed here too (the caller sends
    them first, and stops a destination at its first failure).

    An earlier row in backoff keeps its destination's later rows out of the claim, so they
    never fill it and starve the other destinations.  An earlier row another relay has locked
    (skipped by SKIP LOCKED) is still pending in this statement's snapshot, so the later rows
    are left to that relay's turn: order holds across relays and processes.

    Its cost does not grow with the backlog, nor with the rows held back: the destinations in
    backoff come from the rows in backoff alone (a range of outbox_pending, now() to
    'infinity' exclusive: parked rows wait at 'infinity' and are not read at all), the
    destinations with rows waiting from one probe of outbox_waiting per destination (a loose
    index scan), and each one not held back gives at most ``limit`` of its first rows, so that
    the rows of a destination in backoff are never read (walking every due row in id order read
    each held-back row on every claim of every relay: 40,000 rows a claim behind an agency in
    backoff with 20,000 rows waiting, or behind 20,000 parked rows).  The candidates are locked
    by id (SKIP LOCKED); then each claimed destination's first waiting row not claimed here
    is one walk along outbox_waiting per destination, not per row (the CTEs are MATERIALIZED
    so that the planner cannot inline them per row: with per-row anti-joins a backlog of 5,000
    rows made one claim take 0.4 to 0.8 s).  Two spellings steer a planner that may have no
    statistics: the bound of a destination's rows is a row comparison, which only
    outbox_waiting can use (with ``id < bound`` it walked the primary key and filtered every
    other destination's rows), and the rows to lock test ``coalesce(dispatched_at, parked_at)
    IS NULL``, which is not outbox_next's predicate, so that they are fetched by id."""
    rows = await connection.fetch(
        f"WITH RECURSIVE blocked AS MATERIALIZED ("
        f"  SELECT destination, min(id) AS first_id FROM ("
        f"    SELECT destination, id, parked_at FROM outbox WHERE channel = $1"
        f"    AND dispatched_at IS NULL AND next_attempt_at > now()"
        f"    AND next_attempt_at < 'infinity' OFFSET 0) backoff"
        f"  WHERE parked_at IS NULL GROUP BY destination),"
        f" destinations (destination) AS ("
        f"  (SELECT destination FROM outbox WHERE channel = $1 AND {_PENDING}"
        f"   ORDER BY destination LIMIT 1)"
        f"  UNION ALL"
        f"  SELECT (SELECT o.destination FROM outbox o WHERE o.channel = $1"
        f"      AND o.dispatched_at IS NULL AND o.parked_at IS NULL"
        f"      AND o.destination > d.destination ORDER BY o.destination LIMIT 1)"
        f"  FROM destinations d WHERE d.destination IS NOT NULL),"
        f" candidates AS MATERIALIZED ("
        f"  SELECT f.id FROM destinations d LEFT JOIN blocked b USING (destination)"
        f"  CROSS JOIN LATERAL (SELECT o.id FROM outbox o WHERE o.channel = $1"
        f"      AND o.destination = d.destination"
        f"      AND o.dispatched_at IS NULL AND o.parked_at IS NULL"
        f"      AND o.next_attempt_at <= now()"
        f"      AND (o.destination, o.id) < (d.destination, coalesce(b.first_id, {_NO_ID}))"
        f"      ORDER BY o.id LIMIT $2) f"
        f"  WHERE d.destination IS NOT NULL),"
        f" claimed AS ("
        f"  SELECT {_COLUMNS} FROM outbox"
        f"  WHERE id = ANY (ARRAY(SELECT id FROM candidates))"
        f"  AND channel = $1 AND coalesce(dispatched_at, parked_at) IS NULL"
        f"  AND next_attempt_at <= now()"
        f"  ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED),"
        f" gaps AS MATERIALIZED ("
        f"  SELECT d.destination, (SELECT e.id FROM outbox e WHERE e.channel = $1"
        f"      AND e.destination = d.destination"
        f"      AND e.dispatched_at IS NULL AND e.parked_at IS NULL"
        f"      AND e.id <> ALL (d.ids) ORDER BY e.id LIMIT 1) AS gap"
        f"  FROM (SELECT destination, array_agg(id) AS ids FROM claimed"
        f"        GROUP BY destination) d)"
        f" SELECT c.* FROM claimed c JOIN gaps g USING (destination)"
        f" WHERE g.gap IS NULL OR c.id < g.gap"
        f" ORDER BY c.id", channel, limit)
    return [_outbox_row(r) for r in rows]


def _outbox_row(record: Any) -> OutboxRow:
    return OutboxRow(**{**dict(record), "body": bytes(record["body"]),
                        "properties": json.loads(record["properties"])})


async def published(connection: Connection, channel: str, destination: str,
                    dispatch_key: str) -> OutboxRow | None:
    """The row this gateway wrote for ``dispatch_key`` to ``destination`` (a key an agency
    hands back, e.g. a dead letter's message id, is only looked up, never trusted)."""
    record = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM outbox WHERE channel = $1 AND destination = $2"
        " AND dispatch_key = $3", channel, storable_text(destination),
        storable_text(dispatch_key))
    return None if record is None else _outbox_row(record)


async def mark_dispatched(connection: Connection, row_ids: Sequence[int]) -> None:
    """The rows are out; an agency's delivery (an AMQP row to an agency whose answer is
    awaited) also dates its agency state, the first time only (migration 0016: the clearance
    report reads it there, not from these wide rows).  One statement, one time: both are
    now(), the transaction's."""
    await connection.execute(
        "WITH sent AS (UPDATE outbox SET dispatched_at = now() WHERE id = ANY($1)"
        "   RETURNING channel, message_id, destination)"
        " UPDATE agency_states s SET delivered_at = now() FROM sent"
        " WHERE sent.channel = 'amqp' AND s.message_id = sent.message_id"
        " AND s.agency = sent.destination AND s.delivered_at IS NULL", list(row_ids))


async def mark_failed(connection: Connection, row_id: int, error: str, delay_seconds: float,
                      *, own: bool) -> None:
    """One more failed attempt; ``own``: a failure of the row itself (counted for parking)."""
    await connection.execute(
        "UPDATE outbox SET attempts = attempts + 1, row_failures = row_failures + $4,"
        " last_error = $2, next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
        row_id, storable_text(error), delay_seconds, int(own))


async def lease(connection: Connection, row_ids: list[int], seconds: float) -> None:
    """Rows being sent outside a transaction (app.relay.LeasingRelay): not due again, and
    holding back their destinations' later rows, for ``seconds``."""
    if row_ids:
        await connection.execute(
            "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2)"
            " WHERE id = ANY($1)", row_ids, seconds)


async def still_leased(connection: Connection, row: OutboxRow) -> bool:
    """Lock a leased row for its outcome; False when it is no longer ours to settle (sent or
    settled meanwhile by whoever took it after its lease ran out)."""
    found = await connection.fetchval(
        f"SELECT 1 FROM outbox WHERE id = $1 AND {_PENDING} AND attempts = $2 FOR UPDATE",
        row.id, row.attempts)
    return found is not None


async def park(connection: Connection, row_id: int, error: str) -> None:
    """Stop trying a row (its last failure was its own): it no longer holds back its
    destination, and waits for ops (``requeue_parked``)."""
    await connection.execute(
        "UPDATE outbox SET attempts = attempts + 1, row_failures = row_failures + 1,"
        " last_error = $2, parked_at = now(), next_attempt_at = 'infinity' WHERE id = $1",
        row_id, storable_text(error))


async def note_waiting(connection: Connection, row_ids: list[int], reason: str) -> None:
    """Say why rows claimed in a batch were not tried (an earlier row of their destination
    failed, or their channel did)."""
    if row_ids:
        await connection.execute("UPDATE outbox SET last_error = $2 WHERE id = ANY($1)",
                                 row_ids, storable_text(reason))


async def requeue_parked(connection: Connection, reference: str | None) -> list[ParkedRow]:
    """Parked rows (of one submission, by its id, or every one when ``reference`` is None) go
    back to be dispatched with a fresh count of failures; returns them."""
    rows = await connection.fetch(
        "UPDATE outbox SET parked_at = NULL, attempts = 0, row_failures = 0,"
        " next_attempt_at = now() WHERE parked_at IS NOT NULL"
        " AND ($1::text IS NULL OR interchange_id::text = $1)"
        " RETURNING id, interchange_id, channel, destination, dispatch_key", reference)
    return sorted((ParkedRow(**dict(r)) for r in rows), key=lambda p: p.id)


async def exists(connection: Connection, dispatch_key: str) -> bool:
    """Whether a row with this dispatch key was ever written (dispatched or not)."""
    found = await connection.fetchval("SELECT 1 FROM outbox WHERE dispatch_key = $1",
                                      storable_text(dispatch_key))
    return found is not None


# --- several rows at once ---------------------------------------------------------------------
# One statement for any number of rows (``unnest`` of one array per column): a round trip to
# the database costs far more than a row, for answers in a batch as for one.  The rows are the
# same ``add`` (and ``answers.record_signed``) write, added in the order given, so that their
# ids ascend with it: a destination's rows go out in id order.


@dataclass(frozen=True, slots=True)
class NewRow:
    """An outbox row to add: what ``add`` takes."""

    interchange_id: int
    message_id: int | None
    channel: str
    destination: str
    dispatch_key: str
    body: bytes
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """The non-repudiation record of a row sent signed (table signed_answers), less what the
    row gives (its id, submission and message)."""

    kind: str
    file_name: str
    answer_sha256: str
    signature_sha256: str
    certificate_sha256: str
    signed_at: dt.datetime

    @classmethod
    def of(cls, kind: str, file_name: str, signature: Signature) -> SignedRecord:
        return cls(kind=kind, file_name=file_name, answer_sha256=signature.content_digest,
                   signature_sha256=signature.signature_digest,
                   certificate_sha256=signature.certificate_fingerprint,
                   signed_at=signature.signed_at)


_ROWS = ("unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[],"
         " $7::text[]{more}) WITH ORDINALITY AS r(interchange_id, message_id, channel,"
         " destination, dispatch_key, body, properties{names}, n)")
_INSERT_ROWS = ("INSERT INTO outbox (interchange_id, message_id, channel, destination,"
                " dispatch_key, body, properties) SELECT interchange_id, message_id, channel,"
                " destination, dispatch_key, body, properties::jsonb FROM r ORDER BY n"
                " RETURNING id, dispatch_key")


async def add_many(connection: Connection, rows: Sequence[NewRow]) -> list[int]:
    """``add`` of each row, in one statement; their ids, in the order of ``rows``."""
    if not rows:
        return []
    added = await connection.fetch(
        f"WITH r AS (SELECT * FROM {_ROWS.format(more='', names='')}),"
        f" added AS ({_INSERT_ROWS})"
        " SELECT added.id FROM added JOIN r USING (dispatch_key) ORDER BY r.n",
        *_columns(rows))
    return [record["id"] for record in added]


async def add_signed(connection: Connection,
                     rows: Sequence[tuple[NewRow, SignedRecord]]) -> list[int]:
    """Rows signed before they are stored, each with its non-repudiation record (the row of
    ``store.answers.record_signed``), in one statement; the rows' ids, in the given order."""
    if not rows:
        return []
    records = [record for _, record in rows]
    added = await connection.fetch(
        "WITH r AS (SELECT * FROM "
        + _ROWS.format(more=", $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],"
                            " $13::timestamptz[]",
                       names=", kind, file_name, answer_sha256, signature_sha256,"
                             " certificate_sha256, signed_at")
        + f"), added AS ({_INSERT_ROWS}),"
        " recorded AS (INSERT INTO signed_answers (interchange_id, message_id, outbox_id, kind,"
        "   file_name, answer_sha256, signature_sha256, certificate_sha256, signed_at)"
        "   SELECT r.interchange_id, r.message_id, added.id, r.kind, r.file_name,"
        "   r.answer_sha256, r.signature_sha256, r.certificate_sha256, r.signed_at"
        "   FROM added JOIN r USING (dispatch_key) ORDER BY r.n)"
        " SELECT added.id FROM added JOIN r USING (dispatch_key) ORDER BY r.n",
        *_columns([row for row, _ in rows]),
        [storable_text(r.kind) for r in records], [storable_text(r.file_name) for r in records],
        [r.answer_sha256 for r in records], [r.signature_sha256 for r in records],
        [r.certificate_sha256 for r in records], [r.signed_at for r in records])
    return [record["id"] for record in added]


def _columns(rows: Sequence[NewRow]) -> list[list[Any]]:
    """The rows' values column by column, as ``add`` stores each."""
    return [[r.interchange_id for r in rows], [r.message_id for r in rows],
            [r.channel for r in rows], [r.destination for r in rows],
            [r.dispatch_key for r in rows], [r.body for r in rows],
            [storable_document(r.properties) for r in rows]]
