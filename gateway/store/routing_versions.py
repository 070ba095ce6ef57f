"""Routing tables as they were applied or refused, for audit and for "which table routed
this message"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.store.database import translated_errors
from gateway.store.storable import storable_optional, storable_text


async def record(pool: Any, *, sha256: str, body: str, source: str, status: str,
                 error: str | None = None, proposal: int | None = None) -> int:
    """A refused table is stored as it was, with what PostgreSQL cannot hold made visible
    (a NUL in routing.yaml is refused by YAML, and then its record must not fail too).
    ``proposal``: the console proposal (routing_proposals) whose approval wrote the file; an
    applied table marks it applied in the same transaction."""
    async with translated_errors("recording a routing table"), pool.acquire() as connection:
        if proposal is None:
            return await _insert(connection, sha256, body, source, status, error, None)
        async with connection.transaction():
            version = await _insert(connection, sha256, body, source, status, error, proposal)
            if status == "applied":
                await connection.execute(
                    "UPDATE routing_proposals SET state = 'applied', routing_version = $2"
                    " WHERE id = $1 AND state = 'approved'", proposal, version)
            return version


async def _insert(connection: Any, sha256: str, body: str, source: str, status: str,
                  error: str | None, proposal: int | None) -> int:
    values = (sha256, storable_text(body), storable_text(source), status,
              storable_optional(error))
    if proposal is None:
        version: int = await connection.fetchval(
            "INSERT INTO routing_versions (sha256, body, source, status, error)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id", *values)
    else:
        version = await connection.fetchval(
            "INSERT INTO routing_versions (sha256, body, source, status, error, proposal_id)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", *values, proposal)
    return version


async def latest_applied(pool: Any) -> tuple[int, str] | None:
    async with translated_errors("reading routing versions"), pool.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT id, sha256 FROM routing_versions WHERE status = 'applied'"
            " ORDER BY id DESC LIMIT 1")
        return None if row is None else (int(row["id"]), str(row["sha256"]))


async def applied_table(connection: Any) -> tuple[int, str, str] | None:
    """(version, body, source) of the table in force: the last one applied."""
    row = await connection.fetchrow(
        "SELECT id, body, source FROM routing_versions WHERE status = 'applied'"
        " ORDER BY id DESC LIMIT 1")
    return None if row is None else (int(row["id"]), str(row["body"]), str(row["source"]))


@dataclass(frozen=True, slots=True)
class Version:
    """A routing table as it was given (``gateway serve``, a reload, the console)."""

    id: int
    sha256: str
    source: str
    status: str
    error: str | None
    at: Any


async def history(connection: Any, *, limit: int = 50, before: int | None = None
                  ) -> list[Version]:
    """Tables given, newest first, ``limit`` of them before version ``before`` (the console's
    routing history; bodies are read one at a time with ``body``)."""
    rows = await connection.fetch(
        "SELECT id, sha256, source, status, error, at FROM routing_versions"
        " WHERE $2::bigint IS NULL OR id < $2 ORDER BY id DESC LIMIT $1",
        max(1, min(limit, 500)), before)
    return [Version(**dict(r)) for r in rows]


async def body(connection: Any, version: int) -> str | None:
    """The routing.yaml text of one version."""
    text: str | None = await connection.fetchval(
        "SELECT body FROM routing_versions WHERE id = $1", version)
    return text
