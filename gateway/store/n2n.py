"""Certificates of origin between single windows (migration 0021, docs/n2n.md): those sent,
with their delivery status, those received, and the declarations citing them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway.store.storable import storable_text

Connection = Any


@dataclass(frozen=True, slots=True)
class SentCertificate:
    message_id: int
    interchange_id: int
    certificate_number: str
    country: str | None
    partner_id: str | None
    outbox_id: int | None
    status: str
    attempts: int
    last_error: str | None
    disposition: str | None
    as2_message_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


_SENT = ("message_id, interchange_id, certificate_number, country, partner_id, outbox_id,"
         " status, attempts, last_error, disposition, as2_message_id, created_at, updated_at")


async def recorded(connection: Connection, message_id: int) -> bool:
    """Whether the certificate message was queued (or failed) before.  The answer desk holds
    the message's lock (answers.lock_message): two approvals at once queue it once."""
    return bool(await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM n2n_sent WHERE message_id = $1)", message_id))


async def add_sent(connection: Connection, *, message_id: int, interchange_id: int,
                   number: str, country: str | None, partner_id: str | None,
                   outbox_id: int | None, status: str, error: str | None) -> None:
    """A certificate approved and queued (or failed at once)."""
    await connection.execute(
        "INSERT INTO n2n_sent (message_id, interchange_id, certificate_number, country,"
        " partner_id, outbox_id, status, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        message_id, interchange_id, storable_text(number), country, partner_id, outbox_id,
        status, None if error is None else storable_text(error))


async def requeued(connection: Connection, message_id: int, *, partner_id: str | None,
                   country: str | None, outbox_id: int | None, status: str,
                   error: str | None) -> None:
    """A certificate sent again (``gateway n2n resend``): a new outbox row, counts reset."""
    await connection.execute(
        "UPDATE n2n_sent SET partner_id = $2, country = $3, outbox_id = $4, status = $5,"
        " attempts = 0, last_error = $6, disposition = NULL, as2_message_id = NULL,"
        " updated_at = now() WHERE message_id = $1",
        message_id, partner_id, country, outbox_id, status,
        None if error is None else storable_text(error))


async def attempted(connection: Connection, outbox_id: int, *, status: str, attempts: int,
                    error: str | None, disposition: str | None = None,
                    as2_message_id: str | None = None) -> SentCertificate | None:
    """What one send of the outbox row came to; the certificate, or None (no certificate's
    row: an answer, not a certificate).  A send whose MDN is yet to come (``pending`` without
    a disposition) keeps the status an asynchronous MDN already gave: the MDN can arrive
    before the relay's transaction recording the send commits."""
    row = await connection.fetchrow(
        f"UPDATE n2n_sent SET status = CASE WHEN $2 = 'pending' AND $5::text IS NULL"
        f" AND disposition IS NOT NULL THEN status ELSE $2 END,"
        f" attempts = greatest(attempts, $3),"
        f" last_error = $4, disposition = coalesce($5, disposition),"
        f" as2_message_id = coalesce($6, as2_message_id), updated_at = now()"
        f" WHERE outbox_id = $1 RETURNING {_SENT}",
        outbox_id, status, attempts, None if error is None else storable_text(error),
        None if disposition is None else storable_text(disposition),
        None if as2_message_id is None else storable_text(as2_message_id))
    return None if row is None else SentCertificate(**dict(row))


async def sent(connection: Connection, number: str | None = None,
               limit: int = 200) -> list[SentCertificate]:
    """Certificates sent, newest first; those numbered ``number`` only when given."""
    rows = await connection.fetch(
        f"SELECT {_SENT} FROM n2n_sent WHERE $1::text IS NULL OR certificate_number = $1"
        f" ORDER BY created_at DESC, message_id DESC LIMIT $2",
        None if number is None else storable_text(number), limit)
    return [SentCertificate(**dict(r)) for r in rows]


async def lock_numbers(connection: Connection, numbers: list[str]) -> None:
    """``lock_number`` of each, in the order of their lock keys: a batch taking them all
    first never waits for one while holding another out of order (no deadlock)."""
    if numbers:
        await connection.execute(
            "SELECT pg_advisory_xact_lock(72021, k) FROM (SELECT DISTINCT hashtext(n) AS k"
            " FROM unnest($1::text[]) AS n ORDER BY k) AS keys",
            [storable_text(n) for n in numbers])


async def lock_number(connection: Connection, number: str) -> None:
    """One certificate number at a time, to the end of the transaction: a certificate and a
    declaration citing it decided at once still see each other (whichever comes first)."""
    await connection.execute("SELECT pg_advisory_xact_lock(72021, hashtext($1))",
                             storable_text(number))


@dataclass(frozen=True, slots=True)
class Received:
    message_id: int
    interchange_id: int
    certificate_number: str
    country: str
    partner_id: str


async def add_received(connection: Connection, received: Received) -> None:
    await connection.execute(
        "INSERT INTO n2n_received (message_id, interchange_id, certificate_number, country,"
        " partner_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        received.message_id, received.interchange_id,
        storable_text(received.certificate_number), received.country, received.partner_id)


async def received_numbered(connection: Connection, numbers: list[str]) -> list[Received]:
    rows = await connection.fetch(
        "SELECT message_id, interchange_id, certificate_number, country, partner_id"
        " FROM n2n_received WHERE certificate_number = ANY($1::text[])"
        " ORDER BY message_id", [storable_text(n) for n in numbers])
    return [Received(**dict(r)) for r in rows]


async def add_citation(connection: Connection, *, message_id: int, interchange_id: int,
                       number: str, linked_to: int | None) -> None:
    await connection.execute(
        "INSERT INTO n2n_citations (message_id, interchange_id, certificate_number,"
        " linked_to, linked_at) VALUES ($1, $2, $3, $4,"
        " CASE WHEN $4::bigint IS NULL THEN NULL ELSE now() END) ON CONFLICT DO NOTHING",
        message_id, interchange_id, storable_text(number), linked_to)


@dataclass(frozen=True, slots=True)
class Citation:
    message_id: int
    interchange_id: int
    certificate_number: str


async def waiting_citations(connection: Connection, number: str) -> list[tuple[int, str | None]]:
    """The declarations citing ``number`` that no certificate answered yet: (message id,
    stored canonical declaration)."""
    rows = await connection.fetch(
        "SELECT c.message_id, m.canonical::text AS canonical FROM n2n_citations c"
        " JOIN messages m ON m.id = c.message_id"
        " WHERE c.certificate_number = $1 AND c.linked_to IS NULL ORDER BY c.message_id",
        storable_text(number))
    return [(r["message_id"], r["canonical"]) for r in rows]


async def link_waiting(connection: Connection, number: str, received_message_id: int,
                       declarations: list[int]) -> list[Citation]:
    """The citations of ``number`` by ``declarations`` no certificate answered yet, linked
    to this one."""
    rows = await connection.fetch(
        "UPDATE n2n_citations SET linked_to = $2, linked_at = now()"
        " WHERE certificate_number = $1 AND linked_to IS NULL AND message_id = ANY($3::bigint[])"
        " RETURNING message_id, interchange_id, certificate_number",
        storable_text(number), received_message_id, declarations)
    return [Citation(**dict(r)) for r in rows]
