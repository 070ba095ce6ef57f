"""AS2 bookkeeping (migration 0008): the messages taken in, with the MDN each was answered
with, and the messages sent, with the MDN that confirmed each."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.store.storable import storable_text

Connection = Any
#: HTTP headers as sent, in order.
HeaderPairs = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """An AS2 message taken in earlier, and what it was answered with."""

    interchange_id: int
    disposition: str
    mdn_headers: tuple[tuple[str, str], ...] | None
    mdn_body: bytes | None


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: str
    outbox_id: int
    interchange_id: int
    partner_id: str
    mic: str


async def lookup(connection: Connection, partner_id: str, message_id: str,
                 payload_sha256: bytes) -> tuple[ReceivedMessage | None, bool]:
    """The message this partner sent under ``message_id`` before, if it was taken; and
    whether it sent the very same payload before (under any Message-ID)."""
    row = await connection.fetchrow(
        "SELECT r.interchange_id, r.disposition, r.mdn_headers, r.mdn_body,"
        " EXISTS (SELECT 1 FROM as2_received WHERE partner_id = $1 AND payload_sha256 = $3)"
        " AS seen FROM (SELECT 1) AS one LEFT JOIN as2_received r"
        " ON r.partner_id = $1 AND r.message_id = $2",
        partner_id, storable_text(message_id), payload_sha256)
    if row["interchange_id"] is None:
        return None, bool(row["seen"])
    headers = row["mdn_headers"]
    return ReceivedMessage(
        interchange_id=row["interchange_id"], disposition=row["disposition"],
        mdn_headers=None if headers is None else tuple(
            (str(name), str(value)) for name, value in json.loads(headers)),
        mdn_body=None if row["mdn_body"] is None else bytes(row["mdn_body"])), True


async def record_received(connection: Connection, *, partner_id: str, message_id: str,
                          interchange_id: int, payload_sha256: bytes, disposition: str,
                          mdn_headers: HeaderPairs | None, mdn_body: bytes | None) -> bool:
    """Record a message taken in (in the transaction that committed its payload); False when
    the partner's Message-ID was taken meanwhile (the caller rolls back and answers with
    the MDN recorded first)."""
    inserted = await connection.fetchval(
        "INSERT INTO as2_received (partner_id, message_id, interchange_id, payload_sha256,"
        " disposition, mdn_headers, mdn_body) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        partner_id, storable_text(message_id), interchange_id, payload_sha256, disposition,
        None if mdn_headers is None else json.dumps([list(h) for h in mdn_headers]),
        mdn_body)
    return inserted is not None


async def record_sent(connection: Connection, sent: SentMessage) -> None:
    """A message POSTed (a retry of the same outbox row sends the same Message-ID again)."""
    await connection.execute(
        "INSERT INTO as2_sent (message_id, outbox_id, interchange_id, partner_id, mic)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (message_id) DO UPDATE SET sent_at = now(), mic = EXCLUDED.mic",
        sent.message_id, sent.outbox_id, sent.interchange_id, sent.partner_id, sent.mic)


async def sent_message(connection: Connection, message_id: str) -> SentMessage | None:
    """One of our messages, by its Message-ID (what an asynchronous MDN names)."""
    row = await connection.fetchrow(
        "SELECT message_id, outbox_id, interchange_id, partner_id, mic FROM as2_sent"
        " WHERE message_id = $1", storable_text(message_id))
    return None if row is None else SentMessage(**dict(row))


async def record_mdn(connection: Connection, *, message_id: str, disposition: str,
                     mic_matched: bool | None, signed: bool) -> SentMessage | None:
    """The MDN that answered one of our messages; the message, or None when we sent none
    with that Message-ID (an MDN nobody asked for)."""
    row = await connection.fetchrow(
        "UPDATE as2_sent SET mdn_at = now(), disposition = $2, mic_matched = $3,"
        " mdn_signed = $4 WHERE message_id = $1"
        " RETURNING message_id, outbox_id, interchange_id, partner_id, mic",
        storable_text(message_id), storable_text(disposition), mic_matched, signed)
    return None if row is None else SentMessage(**dict(row))


async def unconfirmed(connection: Connection, older_than_seconds: float) -> list[SentMessage]:
    """Messages sent that long ago with no MDN yet, not alarmed before; marks them alarmed."""
    rows = await connection.fetch(
        "UPDATE as2_sent SET alarmed_at = now() WHERE mdn_at IS NULL AND alarmed_at IS NULL"
        " AND sent_at < now() - make_interval(secs => $1)"
        " RETURNING message_id, outbox_id, interchange_id, partner_id, mic",
        older_than_seconds)
    return [SentMessage(**dict(r)) for r in rows]
