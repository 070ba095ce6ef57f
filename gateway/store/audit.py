"""The console's audit log (migration 0010): who did what, to what, from where, when.  A row
is written with the connection of the change it records, inside its transaction, so a change
is never without its row nor a row without its change."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.store.database import translated_errors


@dataclass(frozen=True, slots=True)
class AuditEntry:
    user_name: str
    role: str | None
    action: str
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    client: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    entry: AuditEntry


async def record(connection: Any, entry: AuditEntry) -> int:
    async with translated_errors("writing the console audit log"):
        row_id: int = await connection.fetchval(
            "INSERT INTO console_audit (user_name, role, action, target, detail, client)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id",
            entry.user_name, entry.role, entry.action, entry.target,
            json.dumps(entry.detail, ensure_ascii=False), entry.client)
    return row_id


async def page(connection: Any, before: int | None, limit: int) -> list[AuditRow]:
    """The newest ``limit`` rows older than row ``before`` (keyset paging by id: each page
    costs the same however deep)."""
    async with translated_errors("reading the console audit log"):
        records = await connection.fetch(
            "SELECT id, at, user_name, role, action, target, detail::text AS detail, client"
            " FROM console_audit WHERE $1::bigint IS NULL OR id < $1"
            " ORDER BY id DESC LIMIT $2", before, limit)
    return [AuditRow(r["id"], r["at"], AuditEntry(
        r["user_name"], r["role"], r["action"], r["target"], json.loads(r["detail"]),
        r["client"])) for r in records]
