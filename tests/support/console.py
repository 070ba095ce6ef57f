"""A console with pages for tests: a real ``start_console`` on a free loopback port, a users
file of low-cost hashes (the cost lowered through the console settings, where it shows), and
a browser-like client that keeps cookies and reads the CSRF token out of the forms."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config.console_users import ConsoleUser, Role, UsersFile, write_users
from gateway.config.settings import ConsoleSettings
from gateway.console.app import Console, ConsoleListener, start_console
from gateway.console.auth import Gatekeeper, cost_of
from gateway.console.health import Readiness
from gateway.security.passwords import hash_password
from tests.support.harness import Gateway, gateway_fixture

#: argon2id at its cheapest, for tests only (the default is RFC 9106's 64 MiB, t=3).
CHEAP_HASHING = {"time_cost": 1, "memory_kib": 64, "parallelism": 1}
PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-2",
             "ada": "admin-password-3"}
ROLES = {"vera": Role.viewer, "otto": Role.operator, "ada": Role.admin}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def settings(**overrides: Any) -> ConsoleSettings:
    return ConsoleSettings.model_validate({"host": "127.0.0.1", "port": 0, "users": "u.yaml",
                                           "password_hashing": CHEAP_HASHING, **overrides})


def users_file(path: Path, console: ConsoleSettings) -> UsersFile:
    users = UsersFile(users=tuple(
        ConsoleUser(name=name, role=ROLES[name],
                    password_hash=hash_password(password, cost_of(console)))
        for name, password in PASSWORDS.items()))
    write_users(path, users)
    return users


#: gateway.yaml's ``console:`` for a gateway of a test: a free port, the users file
#: console-users.yaml beside it, the cheapest hashing.
CONSOLE_SETTING = ("{host: 127.0.0.1, port: 0, users: console-users.yaml, password_hashing: "
                   + json.dumps(CHEAP_HASHING) + "}")


async def console_gateway(tmp_path: Path, users: UsersFile | None = None,
                          **more: object) -> AsyncIterator[Gateway]:
    """``gateway serve`` (tests/support/harness.py) with the console and a users file of the
    test's own: the users above unless ``users``; ``more``: more gateway.yaml settings."""
    path = tmp_path / "console-users.yaml"
    if users is None:
        users_file(path, settings())
    else:
        write_users(path, users)
    async for running in gateway_fixture(tmp_path, settings={"console": CONSOLE_SETTING,
                                                             **more}):
        yield running


async def table_rows(console: RunningConsole, table: str) -> int:
    """Rows in one of the console's tables (a test's own database)."""
    async with console.pool.acquire() as connection:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))


async def _broker_fine() -> str | None:
    return None


@dataclass
class RunningConsole:
    listener: ConsoleListener
    pool: Any
    users_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.listener.port}"

    async def audit_actions(self) -> list[str]:
        async with self.pool.acquire() as connection:
            rows = await connection.fetch("SELECT action FROM console_audit ORDER BY id")
        return [r["action"] for r in rows]


@asynccontextmanager
async def running_console(pool: Any, tmp_path: Path,
                          **overrides: Any) -> AsyncIterator[RunningConsole]:
    console = settings(**overrides)
    path = tmp_path / "u.yaml"
    users = users_file(path, console)
    # /ready asks on a connection of its own, to the pool's database (asyncpg keeps the
    # arguments the pool was made with: the conftest's pool is made from a URL alone)
    readiness = Readiness(pool, pool._connect_args[0], "amqp://127.0.0.1/", _broker_fine,
                          lambda: 1)
    gatekeeper = await Gatekeeper.start(pool, console, users, path)
    listener = await start_console(Console(readiness, None, lambda: (), console, gatekeeper),
                                   host="127.0.0.1", port=0, source=tmp_path / "gateway.yaml")
    try:
        yield RunningConsole(listener, pool, path)
    finally:
        await listener.close()


class Browser:
    """One browser: its own cookies; sends the console's Origin on every change, as a
    browser does on a form post."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str) -> tuple[int, str, Any]:
        async with self.session.get(self.base + path, allow_redirects=False) as response:
            return response.status, await response.text(), response

    async def token(self, path: str = "/") -> str:
        status, text, _ = await self.get(path)
        found = _TOKEN.search(text)
        assert found is not None, (status, text[:500])
        return found.group(1)

    async def post(self, path: str, data: dict[str, str], *, token: str | None = None,
                   origin: str | None = "same") -> tuple[int, str, Any]:
        headers = {} if origin is None else {
            "Origin": self.base if origin == "same" else origin}
        form = dict(data) if token is None else {**data, "csrf_token": token}
        async with self.session.post(self.base + path, data=form, headers=headers,
                                     allow_redirects=False) as response:
            return response.status, await response.text(), response

    async def log_in(self, name: str, password: str | None = None) -> tuple[int, str, Any]:
        token = await self.token("/login")
        return await self.post("/login", {"name": name,
                                          "password": password or PASSWORDS[name]}, token=token)

    def cookie(self, name: str) -> str | None:
        for morsel in self.session.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return None


@asynccontextmanager
async def browser(console: RunningConsole) -> AsyncIterator[Browser]:
    client = Browser(console.base)
    try:
        yield client
    finally:
        await client.close()
