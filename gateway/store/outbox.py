"""The transactional outbox: rows written with the decision, dispatched by the relays."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.store.storable import storable_document

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


async def add(connection: Connection, *, interchange_id: int, message_id: int | None,
              channel: str, destination: str, dispatch_key: str, body: bytes,
              properties: dict[str, Any]) -> None:
    await connection.execute(
        "INSERT INTO outbox (interchange_id, message_id, channel, destination, dispatch_key,"
        " body, properties) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        interchange_id, message_id, channel, destination, dispatch_key, body,
        storable_document(properties))


async def claim_pending(connection: Connection, channel: str, limit: int) -> list[OutboxRow]:
    rows = await connection.fetch(
        "SELECT id, interchange_id, message_id, channel, destination, dispatch_key, body,"
        " properties, attempts FROM outbox"
        " WHERE channel = $1 AND dispatched_at IS NULL AND next_attempt_at <= now()"
        " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED", channel, limit)
    return [
        OutboxRow(**{**dict(r), "body": bytes(r["body"]),
                     "properties": json.loads(r["properties"])})
        for r in rows
    ]


async def mark_dispatched(connection: Connection, row_id: int) -> None:
    await connection.execute("UPDATE outbox SET dispatched_at = now() WHERE id = $1", row_id)


async def mark_failed(connection: Connection, row_id: int, error: str,
                      delay_seconds: float) -> None:
    await connection.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2,"
        " next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
        row_id, error, delay_seconds)


async def exists(connection: Connection, dispatch_key: str) -> bool:
    """Whether a row with this dispatch key was ever written (dispatched or not)."""
    found = await connection.fetchval("SELECT 1 FROM outbox WHERE dispatch_key = $1",
                                      dispatch_key)
    return found is not None
