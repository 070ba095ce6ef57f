"""Agencies' answers: what each agency was asked to decide, the answers taken (each once),
the answers refused, where each agency and each declaration stands, and the non-repudiation
record of everything the gateway signed and sent.

Like the rest of the store, every function takes a connection and leaves the transaction to
the caller: an answer is taken, its state changed and its rendered answer queued in one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.pipeline.route import CANCELLATION
from gateway.store.interchanges import ReplyTo
from gateway.store.outbox import SignedRecord
from gateway.store.storable import storable_document, storable_optional, storable_text

Connection = Any


async def await_answers(connection: Connection, awaited: Sequence[tuple[int, str]]) -> None:
    """Each (message id, agency): the agency is to decide on the message (a delivery with role
    "deliver" was queued).  One statement for all."""
    if awaited:
        await connection.execute(
            "INSERT INTO agency_states (message_id, agency)"
            " SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING",
            [m for m, _ in awaited], [storable_text(a) for _, a in awaited])


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message as it was delivered to one agency: what an answer to it is tied to."""

    message_id: int
    interchange_id: int
    position: int
    partner_id: str
    role: str
    message_type: str
    release: str
    document_ref: str | None
    file_name: str
    reply_to: ReplyTo | None
    #: The references an answer to it carries (UNB 0020 of its interchange, UNH 0062).
    interchange_ref: str | None = None
    message_ref: str | None = None
    #: The syntax of the document it came in (its canonical source.syntax): an answer to an
    #: XML document is written in XML.
    syntax: str = "EDIFACT"


async def delivered(connection: Connection, delivery_id: str, agency: str) -> Delivered | None:
    """The message the gateway queued for ``agency`` under the AMQP message id
    ``delivery_id`` (an answer's correlation id), or None: never delivered to that agency."""
    row = await connection.fetchrow(
        "SELECT m.id, m.interchange_id, m.position, i.partner_id,"
        " o.properties -> 'headers' ->> 'role' AS role, m.message_type, m.release,"
        " m.document_ref, i.file_name, i.reply_id, i.reply_qualifier, i.syntax_version,"
        " i.control_ref, m.message_ref,"
        " COALESCE(m.canonical -> 'source' ->> 'syntax', 'EDIFACT') AS syntax"
        " FROM outbox o JOIN messages m ON m.id = o.message_id"
        " JOIN interchanges i ON i.id = o.interchange_id"
        " WHERE o.channel = 'amqp' AND o.dispatch_key = $1 AND o.destination = $2",
        storable_text(delivery_id), storable_text(agency))
    if row is None:
        return None
    reply = None if row["reply_id"] is None else ReplyTo(
        row["reply_id"], row["reply_qualifier"] or "", row["syntax_version"] or "3")
    return Delivered(row["id"], row["interchange_id"], row["position"], row["partner_id"],
                     row["role"] or "deliver", row["message_type"], row["release"],
                     row["document_ref"], row["file_name"], reply, row["control_ref"],
                     row["message_ref"], row["syntax"])


async def lock_message(connection: Connection, message_id: int) -> None:
    """Take the answers to one message one at a time, from the first statement on.  Each
    answer's inserts lock the message row FOR KEY SHARE (their foreign keys) and its
    clearance update then needs FOR UPDATE: two answers at once would each wait for the other
    (a deadlock), and each would judge the clearance without the other's decision."""
    await connection.execute("SELECT 1 FROM messages WHERE id = $1 FOR UPDATE", message_id)


async def take_answer(connection: Connection, *, agency: str, answer_id: str, message_id: int,
                      kind: str, decision: str | None, body: dict[str, Any]) -> int | None:
    """Record an answer; its row id, or None when this agency's answer with this id was taken
    before (a redelivery or a republish: never decided twice)."""
    row_id: int | None = await connection.fetchval(
        "INSERT INTO agency_answers (agency, answer_id, message_id, kind, decision, body)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (agency, answer_id) DO NOTHING"
        " RETURNING id", storable_text(agency), storable_text(answer_id), message_id,
        storable_text(kind), storable_optional(decision), storable_document(body))
    return row_id


async def same_answer(connection: Connection, *, agency: str, answer_id: str,
                      message_id: int, kind: str, decision: str | None) -> bool:
    """Whether the answer ``agency`` gave under ``answer_id`` before says the same about the
    same message (redelivered, or published again, even decided again after a crash), rather
    than being another answer under an id already used."""
    same: bool | None = await connection.fetchval(
        "SELECT message_id = $3 AND kind = $4 AND decision IS NOT DISTINCT FROM $5"
        " FROM agency_answers WHERE agency = $1 AND answer_id = $2", storable_text(agency),
        storable_text(answer_id), message_id, storable_text(kind), storable_optional(decision))
    return bool(same)


async def answers_taken(connection: Connection, message_id: int, agency: str) -> int:
    """How many answers ``agency`` gave on the message so far."""
    count: int = await connection.fetchval(
        "SELECT count(*) FROM agency_answers WHERE message_id = $1 AND agency = $2",
        message_id, storable_text(agency))
    return count


async def set_state(connection: Connection, message_id: int, agency: str, state: str,
                    final: bool) -> None:
    await connection.execute(
        "INSERT INTO agency_states (message_id, agency, state, final, decided_at)"
        " VALUES ($1, $2, $3, $4, now()) ON CONFLICT (message_id, agency) DO UPDATE"
        " SET state = $3, final = $4, decided_at = now()",
        message_id, storable_text(agency), storable_text(state), final)


async def states(connection: Connection, message_id: int) -> dict[str, str]:
    """agency -> its state ('awaiting' or its latest decision), for every agency asked."""
    rows = await connection.fetch(
        "SELECT agency, state FROM agency_states WHERE message_id = $1 ORDER BY agency",
        message_id)
    return {r["agency"]: r["state"] for r in rows}


async def set_clearance(connection: Connection, message_id: int, clearance: str) -> str | None:
    """The declaration's overall state; returns the one it had."""
    before: str | None = await connection.fetchval(
        "UPDATE messages m SET clearance = $2 FROM (SELECT clearance FROM messages"
        " WHERE id = $1 FOR UPDATE) old WHERE m.id = $1 RETURNING old.clearance",
        message_id, clearance)
    return before


@dataclass(frozen=True, slots=True)
class Refusal:
    broker_user: str | None
    routing_key: str | None
    answer_id: str | None
    correlation_id: str | None
    reason: str
    body: bytes
    interchange_id: int | None = None


#: What is kept of a refused answer's body: the whole of any answer the contract allows (at
#: most 1 MiB); of a longer one, refused for its size, only its start.  RabbitMQ takes up to
#: 128 MiB a message, and a flood of those must not fill the database (DESIGN rule 6).
KEPT_BODY_BYTES = 1024 * 1024


async def refuse(connection: Connection, refusal: Refusal) -> int:
    row_id: int = await connection.fetchval(
        "INSERT INTO refused_answers (broker_user, routing_key, answer_id, correlation_id,"
        " reason, body, interchange_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        storable_optional(refusal.broker_user), storable_optional(refusal.routing_key),
        storable_optional(refusal.answer_id), storable_optional(refusal.correlation_id),
        storable_text(refusal.reason), refusal.body[:KEPT_BODY_BYTES], refusal.interchange_id)
    return row_id


@dataclass(frozen=True, slots=True)
class Overdue:
    message_id: int
    interchange_id: int
    agency: str
    delivered_at: dt.datetime


async def mark_overdue(connection: Connection, deadlines: dict[str, float]) -> list[Overdue]:
    """Agencies still awaited on a message longer than their deadline after it was delivered
    to them, each marked (and returned) once; not on a declaration the partner cancelled since
    (its cancellation is awaited in its place)."""
    if not deadlines:
        return []
    rows = await connection.fetch(
        "UPDATE agency_states s SET overdue_at = now()"
        " FROM (SELECT DISTINCT ON (s2.message_id, s2.agency) s2.message_id, s2.agency,"
        "         o.interchange_id, o.dispatched_at"
        "       FROM agency_states s2"
        "       JOIN unnest($1::text[], $2::float8[]) AS d(agency, seconds)"
        "         ON d.agency = s2.agency"
        "       JOIN outbox o ON o.channel = 'amqp' AND o.message_id = s2.message_id"
        "         AND o.destination = s2.agency AND o.dispatched_at IS NOT NULL"
        "       JOIN messages m ON m.id = s2.message_id"
        "       JOIN interchanges i ON i.id = m.interchange_id"
        "       WHERE s2.state = 'awaiting' AND s2.overdue_at IS NULL"
        "         AND o.dispatched_at + make_interval(secs => d.seconds) < now()"
        # The trader cancelled it since: the agency has the cancellation to decide, not this.
        "         AND NOT EXISTS (SELECT 1 FROM messages c"
        "             JOIN interchanges ci ON ci.id = c.interchange_id"
        "             WHERE c.document_ref = m.document_ref AND ci.partner_id = i.partner_id"
        "             AND c.id > m.id AND c.status = 'routed'"
        "             AND c.canonical ->> 'function' = $3)"
        "       ORDER BY s2.message_id, s2.agency, o.dispatched_at) due"
        " WHERE s.message_id = due.message_id AND s.agency = due.agency"
        " RETURNING s.message_id, due.interchange_id, s.agency, due.dispatched_at",
        list(deadlines), list(deadlines.values()), CANCELLATION)
    return [Overdue(r["message_id"], r["interchange_id"], r["agency"], r["dispatched_at"])
            for r in rows]


async def record_signed(connection: Connection, *, interchange_id: int, message_id: int | None,
                        outbox_id: int, record: SignedRecord) -> None:
    """The non-repudiation record of one answer sent (interchanges.sha256 is the other half)."""
    await record_signed_many(connection, [(interchange_id, message_id, outbox_id, record)])


async def record_signed_many(connection: Connection,
                             sent: Sequence[tuple[int, int | None, int, SignedRecord]]) -> None:
    """``record_signed`` of each (submission, message, outbox row, record), in one round trip
    (asyncpg pipelines ``executemany``)."""
    if sent:
        await connection.executemany(
            "INSERT INTO signed_answers (interchange_id, message_id, outbox_id, kind,"
            " file_name, answer_sha256, signature_sha256, certificate_sha256, signed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [(interchange_id, message_id, outbox_id, storable_text(record.kind),
              storable_text(record.file_name), record.answer_sha256, record.signature_sha256,
              record.certificate_sha256, record.signed_at)
             for interchange_id, message_id, outbox_id, record in sent])
