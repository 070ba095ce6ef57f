"""Interchanges from intake to decision: record, claim for processing, save the outcome.

Every function takes a connection (or the pool, for the one-statement intake) and leaves the
transaction to the caller, so one decision is written in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.store.database import translated_errors
from gateway.store.storable import (
    storable_document,
    storable_json,
    storable_optional,
    storable_text,
    storable_texts,
)

Connection = Any


#: The largest id a bigserial column can hold.
MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class PendingInterchange:
    id: int
    partner_id: str
    transport: str
    file_name: str
    raw: bytes
    sha256: bytes
    received_at: Any
    attempts: int
    #: The trader registry's version when the submission was claimed (migration 0018): read
    #: in the claiming statement, so a suspension committed before the submission arrived is
    #: seen by its decision at no extra round trip.  None where not claimed that way.
    registry_version: int | None = None


#: More a transport records in the transaction that commits a submission (its id given).
AlsoRecord = Callable[[Connection, int], Awaitable[None]]


#: A submission and its "received" event, in one statement.
_RECORD = ("WITH added AS (INSERT INTO interchanges (partner_id, transport, file_name, raw,"
           " sha256) VALUES ($1, $2, $3, $4, $5) RETURNING id),"
           " received AS (INSERT INTO events (interchange_id, kind, detail, at)"
           "   SELECT id, 'received', $6::jsonb, clock_timestamp() FROM added)"
           " SELECT id FROM added")


async def record_submission(pool: Any, partner_id: str, transport: str, file_name: str,
                            raw: bytes, *, also: AlsoRecord | None = None) -> int:
    """Commit the raw bytes (DESIGN rule 1: before the transport acknowledges), and whatever
    ``also`` records with them (AS2: the Message-ID and its MDN).  Returns the submission
    id."""
    digest = hashlib.sha256(raw).digest()
    received = {"transport": transport, "file_name": file_name, "bytes": len(raw),
                "sha256": digest.hex()}
    arguments = (partner_id, transport, storable_text(file_name), raw, digest,
                 storable_document(received))
    async with translated_errors("recording a submission"), pool.acquire() as connection:
        if also is None:  # one statement: atomic on its own, one round trip
            interchange_id: int = await connection.fetchval(_RECORD, *arguments)
        else:
            async with connection.transaction():
                interchange_id = await connection.fetchval(_RECORD, *arguments)
                await also(connection, interchange_id)
    return interchange_id


#: The pause before a submission is taken again: 2, 4, 8 ... seconds, at most this many.
MAX_RETRY_DELAY_SECONDS = 300


async def claim_next(pool: Any, *, max_size: int | None = None,
                     busy: Collection[int] = ()) -> PendingInterchange | None:
    """``claim_batch`` of one."""
    claimed = await claim_batch(pool, 1, max_size=max_size, busy=busy)
    return claimed[0] if claimed else None


async def claim_batch(pool: Any, limit: int, *, max_size: int | None = None,
                      busy: Collection[int] = ()) -> list[PendingInterchange]:
    """Take the oldest submissions waiting for a decision, at most ``limit`` (each at most
    ``max_size`` bytes, none of ``busy``), and count an attempt of each in its own committed
    statement, before any work starts.

    Counting first is what keeps a poison submission from blocking the others: one that
    crashes the process, or whose decision can never be written, runs out of attempts and is
    parked instead of being taken first for ever.  The attempt also moves the submission's next
    turn back (2, 4, 8 ... seconds), so a crash loop slows down by itself."""
    async with translated_errors("claiming submissions"), pool.acquire() as connection:
        rows = await connection.fetch(
            "UPDATE interchanges SET attempts = attempts + 1,"
            " next_attempt_at = now() + make_interval(secs => least($3::float8,"
            "   power(2, least(attempts + 1, 16))))"
            " WHERE id IN (SELECT id FROM interchanges WHERE status = 'received'"
            "   AND next_attempt_at <= now() AND id <> ALL($2::bigint[])"
            "   AND ($1::bigint IS NULL OR octet_length(raw) <= $1)"
            "   ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, partner_id, transport, file_name, raw, sha256, received_at, attempts,"
            "   (SELECT version FROM trader_registry_version) AS registry_version",
            max_size, list(busy), float(MAX_RETRY_DELAY_SECONDS), limit)
    return sorted((PendingInterchange(**dict(row)) for row in rows), key=lambda p: p.id)


async def lock_claimed(connection: Connection, pending: PendingInterchange) -> bool:
    """Lock a claimed submission for its decision; False when it is no longer ours to decide
    (another worker took it after our turn ran out, or it was decided meanwhile).

    It waits for the lock rather than skipping a locked row: another worker's claim_next may
    hold it for an instant while it looks the row over (and passes on it), and skipping then
    would drop a submission just claimed until its next turn.  The attempt count fences off a
    worker whose turn ran out."""
    return pending.id in await lock_claimed_many(connection, [pending])


async def lock_claimed_many(connection: Connection,
                            claimed: Sequence[PendingInterchange]) -> set[int]:
    """``lock_claimed`` for several at once, in id order (two batches never wait on each
    other crosswise); the ids still ours to decide."""
    rows = await connection.fetch(
        "SELECT i.id FROM interchanges i"
        " JOIN unnest($1::bigint[], $2::int[]) AS c(id, attempts)"
        "   ON i.id = c.id AND i.attempts = c.attempts"
        " WHERE i.status = 'received' ORDER BY i.id FOR UPDATE OF i",
        [p.id for p in claimed], [p.attempts for p in claimed])
    return {row["id"] for row in rows}


#: The earlier interchange a submission repeats, in one round trip: one of this partner with
#: the very same bytes that was taken (in whole or in part; a rejected one does not count: the
#: same bytes sent again after ops fixed the cause are decided afresh); else, when the
#: submission names its interchange ($4, $5: UNB sender and control reference), the one that
#: claimed that key first.  The key is claimed only when no original was found.
_EARLIER = (
    "WITH original AS (SELECT id FROM interchanges WHERE partner_id = $1 AND sha256 = $2"
    "   AND id < $3 AND status IN ('accepted', 'partially_accepted')"
    "   AND duplicate_of IS NULL ORDER BY id LIMIT 1),"
    " claimed AS (INSERT INTO interchange_keys (partner_id, sender_id, control_ref,"
    "   interchange_id) SELECT $1, $4::text, $5::text, $3"
    "   WHERE $4::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM original)"
    "   ON CONFLICT DO NOTHING RETURNING interchange_id)"
    " SELECT (SELECT id FROM original) AS original,"
    " (SELECT interchange_id FROM claimed) AS claimed")


@dataclass(frozen=True, slots=True)
class Earlier:
    """The interchange a submission repeats, and how it was told (rule 2)."""

    id: int
    because: str


async def earlier_of(connection: Connection, pending: PendingInterchange,
                     key: tuple[str, str] | None) -> Earlier | None:
    """The interchange ``pending`` repeats: the same bytes taken before, else the first to
    claim ``key`` (UNB sender, control reference), which is claimed for ``pending`` when
    free.  None when it repeats nothing."""
    sender_id, control_ref = (None, None) if key is None else (
        storable_text(key[0]), storable_text(key[1]))
    row = await connection.fetchrow(_EARLIER, pending.partner_id, pending.sha256, pending.id,
                                    sender_id, control_ref)
    if row["original"] is not None:
        return Earlier(row["original"], "same bytes")
    if key is None or row["claimed"] is not None:
        return None
    owner: int = await connection.fetchval(
        "SELECT interchange_id FROM interchange_keys"
        " WHERE partner_id = $1 AND sender_id = $2 AND control_ref = $3",
        pending.partner_id, sender_id, control_ref)
    return Earlier(owner, f"control reference {key[1]}")


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """Whom the answers to an interchange go to (UNB 0004 and 0007), in its syntax version."""

    id: str
    qualifier: str
    syntax_version: str


async def decide(connection: Connection, interchange_id: int, *, status: str, summary: str,
                 sender_id: str | None = None, recipient_id: str | None = None,
                 control_ref: str | None = None, duplicate_of: int | None = None,
                 reply_to: ReplyTo | None = None) -> NewEvent:
    """Record the decision on the submission's row; returns its event, which the caller writes
    in the same transaction (with the decision's other events, store.deferred)."""
    await connection.execute(
        "UPDATE interchanges SET status = $2, summary = $3, sender_id = $4,"
        " recipient_id = $5, control_ref = $6, duplicate_of = $7, processed_at = now(),"
        " last_error = NULL, reply_id = $8, reply_qualifier = $9, syntax_version = $10"
        " WHERE id = $1",
        interchange_id, status, storable_text(summary), storable_optional(sender_id),
        storable_optional(recipient_id), storable_optional(control_ref), duplicate_of,
        *((None, None, None) if reply_to is None else (
            storable_text(reply_to.id), storable_text(reply_to.qualifier),
            storable_text(reply_to.syntax_version))))
    return NewEvent(interchange_id, status, {"summary": summary, **(
        {"duplicate_of": duplicate_of} if duplicate_of else {})})


async def record_failure(pool: Any, pending: PendingInterchange, error: str) -> None:
    """Our side failed while deciding: the submission is tried again when its turn comes back
    (claim_next set it); never blame the partner."""
    async with translated_errors("recording a failed decision"), pool.acquire() as connection, \
            connection.transaction():
        await connection.execute("UPDATE interchanges SET last_error = $2 WHERE id = $1",
                                 pending.id, storable_text(error))
        await add_event(connection, pending.id, "processing_failed",
                        {"error": error, "attempt": pending.attempts})


async def park(pool: Any, pending: PendingInterchange, error: str) -> bool:
    """Give up on a submission after its last attempt: it waits, parked, for ops (``gateway
    replay``) instead of holding back the others.  False when it was decided meanwhile."""
    async with translated_errors("parking a submission"), pool.acquire() as connection, \
            connection.transaction():
        parked = await connection.fetchval(
            "UPDATE interchanges SET status = 'parked', last_error = $2 WHERE id = $1"
            " AND status = 'received' RETURNING id", pending.id, storable_text(error))
        if parked is not None:
            await add_event(connection, pending.id, "parked",
                            {"error": error, "attempts": pending.attempts,
                             "note": "our failure, not the partner's: `gateway replay "
                                     f"{pending.id}` decides it again"})
    return parked is not None


async def insert_message(connection: Connection, interchange_id: int, *, position: int,
                         message_ref: str, message_type: str, release: str, status: str,
                         canonical: str | None, document_ref: str | None,
                         agencies: tuple[str, ...], copies: tuple[str, ...],
                         rules: tuple[str, ...], routing_version: int | None,
                         findings: list[dict[str, Any]], aeo: bool | None = None) -> int:
    """``aeo``: the trusted-trader status its deliveries carry (header ``aeo``), for a routed
    message; kept on the row for the clearance report (migration 0016)."""
    message_id: int = await connection.fetchval(
        "INSERT INTO messages (interchange_id, position, message_ref, message_type, release,"
        " status, canonical, document_ref, agencies, copies, rules, routing_version,"
        " findings, aeo) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12,"
        " $13::jsonb, $14) RETURNING id",
        interchange_id, position, storable_text(message_ref), storable_text(message_type),
        storable_text(release), status, None if canonical is None else storable_json(canonical),
        storable_optional(document_ref), storable_texts(agencies), storable_texts(copies),
        storable_texts(rules), routing_version, storable_document(findings), aeo)
    return message_id


@dataclass(frozen=True, slots=True)
class NewAcknowledgement:
    """The answer (CONTRL, APERAK ...) a decision gave a submission."""

    interchange_id: int
    kind: str
    file_name: str
    body: bytes


async def add_acknowledgements(connection: Connection,
                               acknowledgements: Sequence[NewAcknowledgement]) -> None:
    """Several answers in one statement."""
    if acknowledgements:
        await connection.execute(
            "INSERT INTO acknowledgements (interchange_id, kind, file_name, body)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[])",
            [a.interchange_id for a in acknowledgements], [a.kind for a in acknowledgements],
            [storable_text(a.file_name) for a in acknowledgements],
            [a.body for a in acknowledgements])


@dataclass(frozen=True, slots=True)
class Decided:
    """An interchange already decided, with the answer it got."""

    sender_id: str | None
    recipient_id: str | None
    control_ref: str | None
    ack_kind: str | None
    ack_body: bytes | None


async def decided(connection: Connection, interchange_id: int) -> Decided:
    row = await connection.fetchrow(
        "SELECT i.sender_id, i.recipient_id, i.control_ref, a.kind, a.body"
        " FROM interchanges i LEFT JOIN acknowledgements a ON a.interchange_id = i.id"
        " WHERE i.id = $1", interchange_id)
    body = row["body"]
    return Decided(row["sender_id"], row["recipient_id"], row["control_ref"], row["kind"],
                   None if body is None else bytes(body))


async def answered_submission(connection: Connection, partner_id: str,
                              submission: int | None) -> int | None:
    """The submission of ``partner_id`` whose answer carried UNB reference ``submission``: our
    CONTRLs use the submission id as their interchange control reference (the receipt parsed
    the partner's UCI 0020 into it, None when it is not a number of ours)."""
    if submission is None or submission > MAX_ID:
        return None
    found: int | None = await connection.fetchval(
        "SELECT interchange_id FROM acknowledgements a JOIN interchanges i"
        " ON i.id = a.interchange_id WHERE a.interchange_id = $1 AND i.partner_id = $2"
        " AND a.kind = 'CONTRL'", submission, partner_id)
    return found


@dataclass(frozen=True, slots=True)
class NewEvent:
    interchange_id: int
    kind: str
    detail: dict[str, Any]
    message_id: int | None = None


#: clock_timestamp(), not now(): a relay's batch is one transaction, and each event says when
#: it happened, not when its transaction began.
_INSERT_EVENT = ("INSERT INTO events (interchange_id, message_id, kind, detail, at)"
                 " VALUES ($1, $2, $3, $4::jsonb, clock_timestamp())")


async def canonical_of(connection: Connection, message_id: int) -> str | None:
    """A stored message's canonical JSON (None: it had none)."""
    canonical: str | None = await connection.fetchval(
        "SELECT canonical FROM messages WHERE id = $1", message_id)
    return canonical


async def add_event(connection: Connection, interchange_id: int, kind: str,
                    detail: dict[str, Any], message_id: int | None = None) -> None:
    await add_events(connection, [NewEvent(interchange_id, kind, detail, message_id)])


async def add_events(connection: Connection, events: Sequence[NewEvent]) -> None:
    """Several events in one round trip (asyncpg pipelines ``executemany``)."""
    if len(events) == 1:
        await connection.execute(_INSERT_EVENT, *_event_args(events[0]))
    elif events:
        await connection.executemany(_INSERT_EVENT, [_event_args(e) for e in events])


def _event_args(new: NewEvent) -> tuple[Any, ...]:
    return (new.interchange_id, new.message_id, new.kind, storable_document(new.detail))


#: The interchanges a reference names (a submission id, $2, when it reads as one; a UNB
#: control reference or a declaration number, $1) and their resends.  Each by its index: a
#: comparison of ``id::text`` would read every interchange ever stored (7-13 s at a million).
_RELATED = (
    "WITH named AS ("
    "   SELECT id FROM interchanges WHERE id = $2"
    "   UNION SELECT id FROM interchanges WHERE control_ref = $1"
    "   UNION SELECT interchange_id FROM messages WHERE document_ref = $1),"
    " related AS ("
    "   SELECT id FROM named"
    "   UNION SELECT i.id FROM interchanges i JOIN named n ON i.duplicate_of = n.id)")


def _reference(reference: str) -> tuple[str, int | None]:
    """_RELATED's arguments: the reference as text, and as a submission id when it is one
    (written as ids are: digits, no leading zero, within bigint)."""
    text = storable_text(reference)
    # 19 digits at most before int(): bigint's reach, and Python refuses to convert more than
    # 4,300 digits (ValueError), which a pasted reference of any length must not raise.
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and text[0] != "0"):
        return text, None
    as_id = int(text)
    return text, as_id if as_id <= MAX_ID else None


async def history(connection: Connection, reference: str) -> list[dict[str, Any]]:
    """Events of the interchanges a reference names and of their resends, oldest first."""
    rows = await connection.fetch(
        f"{_RELATED} SELECT e.interchange_id, e.message_id, e.kind, e.detail::text AS detail,"
        " e.at FROM events e JOIN related r ON r.id = e.interchange_id ORDER BY e.id",
        *_reference(reference))
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


async def related_interchanges(connection: Connection, reference: str) -> list[dict[str, Any]]:
    """id, partner, file name, status, sha256 (hex) and time of each related interchange."""
    rows = await connection.fetch(
        f"{_RELATED} SELECT i.id, i.partner_id, i.file_name, i.status,"
        " encode(i.sha256, 'hex') AS sha256, i.received_at FROM interchanges i"
        " JOIN related r ON r.id = i.id ORDER BY i.id", *_reference(reference))
    return [dict(r) for r in rows]


async def clearances(connection: Connection, reference: str) -> list[dict[str, Any]]:
    """Per routed message of the related interchanges: each agency's state and the overall."""
    rows = await connection.fetch(
        f"{_RELATED} SELECT m.id AS message_id, m.document_ref, m.clearance, s.agency,"
        " s.state, s.overdue_at FROM messages m JOIN related r ON r.id = m.interchange_id"
        " JOIN agency_states s ON s.message_id = m.id ORDER BY m.id, s.agency",
        *_reference(reference))
    return [dict(r) for r in rows]


async def pending_work(pool: Any) -> int:
    """Submissions not yet decided plus outbox rows due and not yet sent."""
    async with translated_errors("counting pending work"), pool.acquire() as connection:
        count: int = await connection.fetchval(
            "SELECT (SELECT count(*) FROM interchanges WHERE status = 'received')"
            " + (SELECT count(*) FROM outbox WHERE dispatched_at IS NULL"
            "    AND next_attempt_at <= now())")
        return count


async def recent_canonical(connection: Connection, days: float,
                           limit: int) -> list[tuple[str, str]]:
    """(partner id, canonical JSON) of the messages accepted in the last ``days``, newest
    first: what ``gateway routes diff`` replays."""
    rows = await connection.fetch(
        "SELECT i.partner_id, m.canonical::text AS canonical FROM messages m"
        " JOIN interchanges i ON i.id = m.interchange_id"
        " WHERE m.canonical IS NOT NULL"
        " AND i.received_at > now() - make_interval(secs => $1)"
        " ORDER BY m.id DESC LIMIT $2", days * 86400.0, limit)
    return [(str(r["partner_id"]), str(r["canonical"])) for r in rows]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A decided message as ``gateway release`` and ``gateway replay`` take it up again."""

    id: int
    interchange_id: int
    position: int
    message_type: str
    release: str
    canonical: str
    agencies: tuple[str, ...]
    copies: tuple[str, ...]
    partner_id: str


async def messages_in(connection: Connection, status: str, reference: str | None
                      ) -> list[StoredMessage]:
    """Messages in ``status`` ('held', 'unroutable'), named by submission id, UNB reference or
    document reference (every one when ``reference`` is None); locked, so two operators acting
    at once act once."""
    rows = await connection.fetch(
        "SELECT m.id, m.interchange_id, m.position, m.message_type, m.release,"
        " m.canonical::text AS canonical, m.agencies, m.copies, i.partner_id"
        " FROM messages m JOIN interchanges i ON i.id = m.interchange_id"
        " WHERE m.status = $1 AND m.canonical IS NOT NULL AND ($2::text IS NULL"
        " OR i.id::text = $2 OR i.control_ref = $2 OR m.document_ref = $2)"
        " ORDER BY m.id FOR UPDATE OF m", status, reference)
    return [StoredMessage(r["id"], r["interchange_id"], r["position"], r["message_type"],
                          r["release"], r["canonical"], tuple(r["agencies"]),
                          tuple(r["copies"]), r["partner_id"]) for r in rows]


async def set_route(connection: Connection, message_id: int, *, status: str,
                    agencies: tuple[str, ...], copies: tuple[str, ...],
                    rules: tuple[str, ...] | None = None,
                    routing_version: int | None = None, aeo: bool | None = None) -> None:
    """A message routed again (``gateway replay``) or sent on (``gateway release``); the rules,
    table version and trusted-trader status (``aeo``: what its new deliveries say) stay as
    they were unless given."""
    await connection.execute(
        "UPDATE messages SET status = $2, agencies = $3, copies = $4,"
        " rules = coalesce($5, rules), routing_version = coalesce($6, routing_version),"
        " aeo = coalesce($7, aeo) WHERE id = $1",
        message_id, status, storable_texts(agencies), storable_texts(copies),
        None if rules is None else storable_texts(rules), routing_version, aeo)


async def requeue_parked(connection: Connection, reference: str | None) -> list[int]:
    """Parked submissions (by id, or every one when ``reference`` is None) go back to be
    decided with a fresh count of attempts; returns their ids."""
    rows = await connection.fetch(
        "UPDATE interchanges SET status = 'received', attempts = 0, next_attempt_at = now()"
        " WHERE status = 'parked' AND ($1::text IS NULL OR id::text = $1) RETURNING id",
        reference)
    return sorted(int(r["id"]) for r in rows)


async def original_route(connection: Connection, partner_id: str, document_ref: str,
                         before: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Where the partner's latest earlier message with this document reference went."""
    document_ref = storable_text(document_ref)
    row = await connection.fetchrow(
        "SELECT m.agencies, m.copies FROM messages m JOIN interchanges i"
        " ON i.id = m.interchange_id WHERE i.partner_id = $1 AND m.document_ref = $2"
        " AND m.status = 'routed' AND m.interchange_id < $3 ORDER BY m.id DESC LIMIT 1",
        partner_id, document_ref, before)
    return None if row is None else (tuple(row["agencies"]), tuple(row["copies"]))
