"""Who is at the console: logins checked against the users file, sessions kept in PostgreSQL.

A login answers alike for an unknown name and a wrong password, in about the same time (an
unknown name is verified against a dummy hash of the same cost: OWASP Authentication Cheat
Sheet, "Authentication and Error Messages").  Failed logins are counted per name and per
client address in the database, so the limits hold across console nodes.  A successful login
opens a new session (a new token: the session id is rotated at login, OWASP Session
Management Cheat Sheet, "Renew the Session ID After Any Privilege Level Change") and closes the
one the browser had."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.console_users import ConsoleUser, Role, UsersFile, load_users
from gateway.config.settings import ConsoleSettings
from gateway.console import csrf
from gateway.errors import ConfigError
from gateway.logs import event
from gateway.security.passwords import HashingCost, dummy_hash, needs_rehash, verify_password
from gateway.store import console_sessions as sessions
from gateway.store.audit import AuditEntry, record

log = logging.getLogger("gateway.console")
#: A cookie value longer than this is no token of ours, and is not even hashed.
MAX_TOKEN_CHARS = 128
#: Passwords verified at once by this process: argon2id takes its memory (64 MiB by default)
#: and a thread for each, so a flood of logins waits here rather than taking the memory of
#: dozens and every thread of the loop's executor, which /metrics and others share (OWASP
#: Password Storage Cheat Sheet: a slow hash is a denial-of-service lever).
MAX_HASHING_AT_ONCE = 2


class Outcome(enum.Enum):
    LOGGED_IN = "logged_in"
    WRONG = "wrong"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class Visitor:
    """A logged-in user on this request: role from the users file, as it is now."""

    user: ConsoleUser
    session: sessions.SessionRow
    token_sha256: bytes

    @property
    def role(self) -> Role:
        return self.user.role

    def audit(self, action: str, client: str | None, target: str | None = None,
              **detail: Any) -> AuditEntry:
        return AuditEntry(self.user.name, self.user.role.name, action, target, detail, client)


@dataclass(frozen=True, slots=True)
class Login:
    outcome: Outcome
    #: The new session's cookie value (LOGGED_IN only).
    token: str | None = None


def cost_of(settings: ConsoleSettings) -> HashingCost:
    hashing = settings.password_hashing
    return HashingCost(hashing.time_cost, hashing.memory_kib, hashing.parallelism)


_COST = re.compile(r"\$m=(\d+),t=(\d+),p=(\d+)\$")


def cost_of_hash(encoded: str) -> HashingCost:
    """The cost an argon2id hash was made at (its PHC string says; the users file's pattern
    makes sure it is there)."""
    found = _COST.search(encoded)
    if found is None:
        return HashingCost()
    memory, time, lanes = (int(n) for n in found.groups())
    return HashingCost(time_cost=time, memory_kib=memory, parallelism=lanes)


def token_sha256(token: str) -> bytes | None:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return hashlib.sha256(token.encode()).digest()


def typed_name(name: str) -> str:
    """What someone typed as a name, fit for the audit log (printable, bounded)."""
    return "".join(ch for ch in name[:64] if ch.isprintable())


class Users:
    """The users file as it is now: read again when it changed (a user removed or demoted
    loses the rights at the next request); a file that no longer loads is an alarm, and the
    users last loaded stay in force."""

    def __init__(self, path: Path | None, users: UsersFile) -> None:
        self._path = path
        self._seen = _identity(path)
        self._by_name = _by_name(users)
        #: Names removed or given another password since the last ``take_changes``.
        self._revoked: set[str] = set()
        #: What each reading of the file changed, for the audit log, since ``take_changes``.
        self._changes: list[dict[str, list[str]]] = []

    def take_changes(self) -> tuple[set[str], list[dict[str, list[str]]]]:
        """The names whose sessions must end (lower case), and what the file's changes did
        (``users_changed``), once each."""
        self._refresh()
        revoked, self._revoked = self._revoked, set()
        changes, self._changes = self._changes, []
        return revoked, changes

    def get(self, name: str) -> ConsoleUser | None:
        self._refresh()
        return self._by_name.get(name.lower())

    def usual_cost(self) -> HashingCost | None:
        """The cost most users' hashes were made at (None without users): what an unknown
        name must cost to look like a known one."""
        costs = Counter(cost_of_hash(u.password_hash) for u in self._by_name.values())
        return costs.most_common(1)[0][0] if costs else None

    def _refresh(self) -> None:
        identity = _identity(self._path)
        if identity == self._seen or self._path is None:
            return
        self._seen = identity
        try:
            loaded = _by_name(load_users(self._path))
        except ConfigError as exc:
            event(log, "console_users_refused", level=logging.ERROR, error=str(exc),
                  note="the users last loaded stay in force")
            return
        # A password changed (a reset after a theft) or a user removed: whoever logged in
        # before must not stay (OWASP Session Management Cheat Sheet, "Renew the Session ID
        # After Any Privilege Level Change"; a name given again later revives nothing).
        self._revoked |= {name for name, user in self._by_name.items()
                          if name not in loaded
                          or loaded[name].password_hash != user.password_hash}
        changed = users_changed(self._by_name, loaded)
        if changed:
            self._changes.append(changed)
        self._by_name = loaded
        event(log, "console_users_loaded", users=len(self._by_name))


def users_changed(before: dict[str, ConsoleUser],
                  after: dict[str, ConsoleUser]) -> dict[str, list[str]]:
    """What an edit of the users file did, for the audit log (an escalation made in the file,
    or by ``gateway console user add``, leaves a trace): users added and removed (with their
    role), roles changed, passwords changed.  Empty when nothing that matters changed."""
    changed = {
        "added": [f"{n} ({after[n].role.name})" for n in sorted(after.keys() - before.keys())],
        "removed": [f"{n} ({before[n].role.name})"
                    for n in sorted(before.keys() - after.keys())],
        "roles": [f"{n}: {before[n].role.name} -> {after[n].role.name}"
                  for n in sorted(before.keys() & after.keys())
                  if before[n].role != after[n].role],
        "passwords": [n for n in sorted(before.keys() & after.keys())
                      if before[n].password_hash != after[n].password_hash]}
    return {k: v for k, v in changed.items() if v}


def _by_name(users: UsersFile) -> dict[str, ConsoleUser]:
    return {u.name.lower(): u for u in users.users}


def _identity(path: Path | None) -> tuple[int, int, int, int] | None:
    if path is None:
        return None
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class Gatekeeper:
    def __init__(self, pool: Any, settings: ConsoleSettings, users: Users,
                 dummy: str) -> None:
        self._pool = pool
        self._settings = settings
        self._users = users
        #: A dummy hash for each cost an unknown name was verified at (made once each).
        self._dummies = {cost_of_hash(dummy): dummy}
        self._configured = cost_of_hash(dummy)
        self._hashing = asyncio.Semaphore(MAX_HASHING_AT_ONCE)

    @classmethod
    async def start(cls, pool: Any, settings: ConsoleSettings, users: UsersFile,
                    path: Path | None = None) -> Gatekeeper:
        """``path``: the users file, read again when it changes."""
        cost = cost_of(settings)
        if cost.below_recommended():
            event(log, "console_password_cost_low", level=logging.WARNING,
                  time_cost=cost.time_cost, memory_kib=cost.memory_kib,
                  note="console.password_hashing is below RFC 9106's recommendation")
        return cls(pool, settings, Users(path, users),
                   await asyncio.to_thread(dummy_hash, cost))

    async def visitor(self, token: str) -> Visitor | None:
        """The live session of a cookie's token and its user, or None."""
        digest = token_sha256(token)
        if digest is None:
            return None
        settings = self._settings
        await self._end_revoked()
        async with self._pool.acquire() as connection:
            row = await sessions.touch_session(connection, digest,
                                               settings.session_idle_seconds,
                                               settings.session_absolute_seconds)
            user = None if row is None else self._users.get(row.user_name)
            if row is not None and user is None:  # the user left the users file
                await sessions.close_session(connection, digest)
        if row is None or user is None:
            return None
        return Visitor(user, row, digest)

    async def _dummy(self) -> str:
        """A dummy hash at the cost most users' hashes have (OWASP Authentication Cheat
        Sheet: an unknown name must take as long as a known one; a hash made before the cost
        was raised is cheaper than the configured cost)."""
        cost = self._users.usual_cost() or self._configured
        if cost not in self._dummies:
            self._dummies[cost] = await asyncio.to_thread(dummy_hash, cost)
        return self._dummies[cost]

    async def _end_revoked(self) -> None:
        """Record what an edit of the users file changed (each node that sees the edit
        records it), and end the sessions of users removed or given a new password since the
        last request (the second node to look finds none)."""
        revoked, changes = self._users.take_changes()
        if not revoked and not changes:
            return
        ended: list[int] = []
        async with self._pool.acquire() as connection, connection.transaction():
            for changed in changes:
                await record(connection, AuditEntry(
                    "users file", None, "users_changed", None, dict(changed)))
            if revoked:
                ended = await sessions.end_sessions_of(connection, sorted(revoked))
            if ended:
                await record(connection, AuditEntry(
                    "users file", None, "sessions_revoked", ", ".join(sorted(revoked)),
                    {"sessions": ended, "why": "user removed or password changed"}))
        if changes:
            event(log, "console_users_changed", changes=changes)
        if revoked:
            event(log, "console_sessions_revoked", users=sorted(revoked), sessions=ended)

    async def log_in(self, name: str, password: str, client: str,
                     replacing: str | None) -> Login:
        await self._end_revoked()  # first: a new password's first login must not end too
        attempt = await self._attempt(name, client)
        if attempt is None:
            event(log, "console_login_throttled", level=logging.WARNING,
                  user=typed_name(name), client=client,
                  note="too many failed logins for this name or from this address")
            await self._audit(AuditEntry(typed_name(name), None, "login_throttled",
                                         client=client))
            return Login(Outcome.THROTTLED)
        user = self._users.get(name)
        # An unknown name costs what a wrong password does, and gets the same answer.
        async with self._hashing:
            encoded = user.password_hash if user is not None else await self._dummy()
            good = await asyncio.to_thread(verify_password, encoded, password)
        if user is None or not good:
            await self._audit(AuditEntry(typed_name(name), None, "login_failed",
                                         client=client))
            return Login(Outcome.WRONG)
        token = secrets.token_urlsafe(32)
        digest = token_sha256(token)
        assert digest is not None
        await self._opened(user, digest, client, replacing, attempt)
        if needs_rehash(user.password_hash, cost_of(self._settings)):
            event(log, "console_password_needs_rehash", user=user.name,
                  note="hashed at a lower cost than configured: `gateway console user add` "
                  "sets it again")
        return Login(Outcome.LOGGED_IN, token)

    async def log_out(self, visitor: Visitor, client: str | None) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await sessions.close_session(connection, visitor.token_sha256)
            await record(connection, visitor.audit("logout", client))

    async def _attempt(self, name: str, client: str) -> int | None:
        """Count this attempt as a failure first (committed), then count the failures: of
        attempts sent at once, each sees at least those committed before it, so no more than
        the limit get their password verified (checking first and counting after the
        verification would let every attempt of a burst through).  The attempt's id, or None
        when it is over a limit (and then not counted)."""
        settings = self._settings
        async with self._pool.acquire() as connection:
            await sessions.forget_expired(connection, settings.session_idle_seconds,
                                          settings.session_absolute_seconds,
                                          settings.login_window_seconds)
            attempt = await sessions.record_failure(connection, typed_name(name), client)
            by_user, by_client = await sessions.recent_failures(
                connection, typed_name(name), client, settings.login_window_seconds)
            # The counts include this attempt: over the limit means the limit was reached.
            if (by_user > settings.login_failures_per_user
                    or by_client > settings.login_failures_per_address):
                await sessions.forget_failure(connection, attempt)
                return None
        return attempt

    async def _opened(self, user: ConsoleUser, digest: bytes, client: str,
                      replacing: str | None, attempt: int) -> None:
        old = None if replacing is None else token_sha256(replacing)
        async with self._pool.acquire() as connection:
            await sessions.clear_failures(connection, user.name, attempt)
        async with self._pool.acquire() as connection, connection.transaction():
            if old is not None:
                await sessions.close_session(connection, old)
            session_id = await sessions.open_session(connection, digest, user.name,
                                                     csrf.new_token(), client)
            await record(connection, AuditEntry(user.name, user.role.name, "login",
                                                detail={"session": session_id},
                                                client=client))

    async def _audit(self, entry: AuditEntry) -> None:
        async with self._pool.acquire() as connection:
            await record(connection, entry)
