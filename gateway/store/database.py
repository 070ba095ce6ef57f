"""Connections and migrations.  Library errors become StoreError at this boundary."""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway.errors import StoreRefused, StoreUnavailable
from gateway.logs import redact

#: What asyncpg and the OS raise when the server is unreachable or drops us.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # A URL listing a primary and a standby (target_session_attrs=read-write) while none of
    # them is the primary: during a failover, until the standby is promoted.
    asyncpg.exceptions.TargetServerAttributeNotMatched,
    TimeoutError,
)
#: A value asyncpg cannot send (its DataError is an InterfaceError, like a dropped connection,
#: but it is about the value) or a string that cannot be encoded.
VALUE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions._base.DataError,
    UnicodeEncodeError,
)

Pool = asyncpg.Pool


async def create_pool(url: str, *, size: int = 10) -> Any:
    try:
        return await asyncpg.create_pool(url, min_size=1, max_size=size, timeout=10,
                                         command_timeout=60, reset=_keep_session)
    except CONNECTION_ERRORS as exc:
        raise StoreUnavailable(f"PostgreSQL at {redact(url)} is unreachable: {exc}") from exc


async def connect(url: str, seconds: float) -> Any:
    """One connection of its own, outside any pool (the console's /ready asks on one)."""
    async with translated_errors(f"connecting to PostgreSQL at {redact(url)}"):
        return await asyncpg.connect(url, timeout=seconds)


async def connections_allowed(pool: Any) -> int:
    """How many connections PostgreSQL lets ordinary roles open at once: max_connections
    less the slots it keeps for superusers (and, from PostgreSQL 16, for pg_use_reserved_
    connections; runtime-config-connection.html)."""
    async with translated_errors("reading max_connections"), pool.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT current_setting('max_connections')::int AS allowed,"
            " current_setting('superuser_reserved_connections')::int"
            " + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved")
    return int(row["allowed"]) - int(row["reserved"])


async def _keep_session(connection: Any) -> None:
    """What a connection goes back to the pool with: asyncpg still rolls back a transaction
    left open, and this skips its default reset query (RESET ALL, UNLISTEN *, CLOSE ALL,
    pg_advisory_unlock_all()), one more round trip on every release.  The gateway keeps no
    session state: no SET, LISTEN, cursor or session-level advisory lock (the migrations'
    lock is per transaction, on a connection of their own)."""


@contextlib.asynccontextmanager
async def translated_errors(what: str) -> AsyncIterator[None]:
    """Turn asyncpg and socket failures into StoreUnavailable, and a statement PostgreSQL
    refuses into StoreRefused (both ours, both retried: the first by everyone alike, the second
    on its own)."""
    try:
        yield
    except VALUE_ERRORS as exc:
        raise StoreRefused(f"{what}: PostgreSQL refused a value: {exc}") from exc
    except CONNECTION_ERRORS as exc:
        raise StoreUnavailable(f"{what}: PostgreSQL failed: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreRefused(f"{what}: PostgreSQL refused: {exc}") from exc


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) for every file in store/migrations, in order."""
    folder = importlib.resources.files("gateway.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def upgrade(url: str) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their names."""
    async with translated_errors("db upgrade"):
        connection = await asyncpg.connect(url, timeout=10)
        try:
            return await _apply(connection)
        finally:
            await connection.close()


async def _apply(connection: Any) -> list[str]:
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied_now = []
    for version, name, sql in migrations():
        async with connection.transaction():
            # Serialise concurrent upgraders on one advisory lock.
            await connection.execute("SELECT pg_advisory_xact_lock(72001)")
            done = await connection.fetchval(
                "SELECT 1 FROM schema_migrations WHERE version = $1", version)
            if done:
                continue
            await connection.execute(sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied_now.append(name)
    return applied_now


async def create_database(url: str) -> bool:
    """Create the database named in ``url`` when it does not exist (connecting to the
    ``postgres`` maintenance database).  Returns True when it was created."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    async with translated_errors("db create"):
        connection = await asyncpg.connect(admin, timeout=10)
        try:
            exists = await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists:
                return False
            await connection.execute(f'CREATE DATABASE "{name.replace(chr(34), "")}"')
            return True
        finally:
            await connection.close()


#: Query parameters that carry a secret in a libpq or AMQP URL.
