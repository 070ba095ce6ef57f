"""The console's sessions and failed logins (migration 0010).  A session row is found by the
SHA-256 of the cookie's token only; expiry (idle and absolute) is decided by the database's
clock, the same for every node."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.store.database import translated_errors


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    user_name: str
    csrf_token: str
    client: str | None
    created_at: datetime
    last_seen_at: datetime


_COLUMNS = "id, user_name, csrf_token, client, created_at, last_seen_at"


def _alive(idle: str, absolute: str) -> str:
    """The condition of a session not expired; ``idle`` and ``absolute``: the parameters."""
    return (f"last_seen_at > now() - make_interval(secs => {idle})"
            f" AND created_at > now() - make_interval(secs => {absolute})")


def _row(record: Any) -> SessionRow:
    return SessionRow(record["id"], record["user_name"], record["csrf_token"],
                      record["client"], record["created_at"], record["last_seen_at"])


async def open_session(connection: Any, token_sha256: bytes, user_name: str,
                       csrf_token: str, client: str | None) -> int:
    async with translated_errors("opening a console session"):
        session_id: int = await connection.fetchval(
            "INSERT INTO console_sessions (token_sha256, user_name, csrf_token, client)"
            " VALUES ($1, $2, $3, $4) RETURNING id", token_sha256, user_name, csrf_token,
            client)
    return session_id


async def touch_session(connection: Any, token_sha256: bytes, idle_seconds: float,
                        absolute_seconds: float) -> SessionRow | None:
    """The live session of this token, its idle clock restarted; None when there is none or
    it expired (idle or absolute)."""
    async with translated_errors("reading a console session"):
        record = await connection.fetchrow(
            f"UPDATE console_sessions SET last_seen_at = now()"
            f" WHERE token_sha256 = $1 AND {_alive('$2', '$3')} RETURNING {_COLUMNS}",
            token_sha256, idle_seconds, absolute_seconds)
    return None if record is None else _row(record)


async def close_session(connection: Any, token_sha256: bytes) -> SessionRow | None:
    """Delete the session of this token (logout, or a login replacing it)."""
    async with translated_errors("closing a console session"):
        record = await connection.fetchrow(
            f"DELETE FROM console_sessions WHERE token_sha256 = $1 RETURNING {_COLUMNS}",
            token_sha256)
    return None if record is None else _row(record)


async def end_session(connection: Any, session_id: int) -> SessionRow | None:
    """Delete a session by id (an admin ends someone's session)."""
    async with translated_errors("ending a console session"):
        record = await connection.fetchrow(
            f"DELETE FROM console_sessions WHERE id = $1 RETURNING {_COLUMNS}", session_id)
    return None if record is None else _row(record)


async def end_sessions_of(connection: Any, user_names: list[str]) -> list[int]:
    """Delete every session of these users (names compared without case); their ids."""
    async with translated_errors("ending a user's console sessions"):
        records = await connection.fetch(
            "DELETE FROM console_sessions WHERE lower(user_name) = ANY($1::text[])"
            " RETURNING id", [name.lower() for name in user_names])
    return sorted(int(r["id"]) for r in records)


async def live_sessions(connection: Any, idle_seconds: float,
                        absolute_seconds: float, limit: int = 500) -> list[SessionRow]:
    async with translated_errors("listing console sessions"):
        records = await connection.fetch(
            f"SELECT {_COLUMNS} FROM console_sessions WHERE {_alive('$1', '$2')}"
            " ORDER BY last_seen_at DESC LIMIT $3", idle_seconds, absolute_seconds, limit)
    return [_row(r) for r in records]


async def forget_expired(connection: Any, idle_seconds: float, absolute_seconds: float,
                         window_seconds: float) -> None:
    """Delete expired sessions and failures older than the throttling window (at each
    login: the tables stay as small as the console's use)."""
    async with translated_errors("forgetting expired console sessions"):
        await connection.execute(
            "DELETE FROM console_sessions WHERE last_seen_at <= now() - make_interval(secs => $1)"
            " OR created_at <= now() - make_interval(secs => $2)", idle_seconds,
            absolute_seconds)
        await connection.execute(
            "DELETE FROM console_login_failures WHERE at <= now() - make_interval(secs => $1)",
            window_seconds)


async def recent_failures(connection: Any, user_name: str, client: str,
                          window_seconds: float) -> tuple[int, int]:
    """Failed logins within the window: (for this user name, from this client address)."""
    async with translated_errors("counting failed console logins"):
        record = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM console_login_failures WHERE lower(user_name) ="
            " lower($1) AND at > now() - make_interval(secs => $3)) AS by_user,"
            " (SELECT count(*) FROM console_login_failures WHERE client = $2"
            " AND at > now() - make_interval(secs => $3)) AS by_client",
            user_name, client, window_seconds)
    return int(record["by_user"]), int(record["by_client"])


async def record_failure(connection: Any, user_name: str, client: str) -> int:
    """Count a login attempt as failed, before its password is verified (so that attempts
    sent at once all see each other: console.auth); its id, to forget it if it succeeds."""
    async with translated_errors("recording a failed console login"):
        failure_id: int = await connection.fetchval(
            "INSERT INTO console_login_failures (user_name, client) VALUES ($1, $2)"
            " RETURNING id", user_name, client)
    return failure_id


async def forget_failure(connection: Any, failure_id: int) -> None:
    """An attempt counted in advance that turned out a success, or that was throttled."""
    async with translated_errors("forgetting a console login attempt"):
        await connection.execute("DELETE FROM console_login_failures WHERE id = $1",
                                 failure_id)


async def clear_failures(connection: Any, user_name: str, attempt: int) -> None:
    """A successful login forgives the user name's failures (not the address's) and is no
    failure itself (``attempt``, counted in advance).  One statement, outside any other
    transaction: concurrent logins of one user delete the same rows, and would deadlock
    holding some of them across statements."""
    async with translated_errors("clearing failed console logins"):
        await connection.execute(
            "DELETE FROM console_login_failures WHERE lower(user_name) = lower($1)"
            " OR id = $2", user_name, attempt)
