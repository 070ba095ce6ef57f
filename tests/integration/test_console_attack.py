"""The console attacked (issue 14) over real HTTP, against a real ``start_console`` and a
PostgreSQL database of the test's own: CSRF bypass attempts, login throttling raced and
dodged, the password hash's cost under a flood of logins, hostile stored partner data on the
Traffic, Timeline and Body pages, hostile search input, the users file broken while people are
logged in, and the database gone while they are.  What must hold: nothing changes without the
session's token from the console's own origin, no guess goes past the throttle, no page runs
partner data as markup, and no request ends in a bare 500."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config.console_users import ConsoleUser, Role, UsersFile, load_users, write_users
from gateway.console import auth
from tests.support.console import (
    PASSWORDS,
    Browser,
    RunningConsole,
    browser,
    running_console,
)

pytestmark = pytest.mark.integration
SESSION = "console_session"


@pytest.fixture
async def console(pool: Any, tmp_path: Path) -> AsyncIterator[RunningConsole]:
    async with running_console(pool, tmp_path) as running:
        yield running


async def rows(console: RunningConsole, table: str) -> int:
    async with console.pool.acquire() as connection:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))


async def _raw_post(client: Browser, path: str, *, headers: dict[str, str],
                    data: Any = None, method: str = "POST") -> tuple[int, str]:
    async with client.session.request(method, client.base + path, data=data,
                                      headers=headers, allow_redirects=False) as response:
        return response.status, await response.text()


# --- CSRF: origins and tokens that are almost right -------------------------------------


@pytest.mark.parametrize("origin", [
    "null",  # a sandboxed iframe or a data: URL
    "http://127.0.0.1",  # no port
    "HTTP://127.0.0.1:{port}",  # scheme in capitals
    "http://127.0.0.1:{port}/",  # a trailing slash
    "http://127.0.0.1:{port}.evil.example",
    "http://localhost:{port}",  # the same listener by another name
    "",
])
async def test_an_origin_that_is_almost_the_consoles_changes_nothing(
        console: RunningConsole, origin: str) -> None:
    async with browser(console) as client:
        await client.log_in("vera")
        token = await client.token()
        status, page = await _raw_post(
            client, "/logout", data={"csrf_token": token},
            headers={"Origin": origin.format(port=console.listener.port)})
        assert status == 403 and "Nothing was changed" in page
        assert (await client.get("/"))[0] == 200  # still logged in: the logout was refused


async def test_the_token_in_the_query_string_or_an_odd_body_is_not_enough(
        console: RunningConsole) -> None:
    """The token is read from the form body or the X-CSRF-Token header only: a URL (which
    leaks through logs and history) or a text/plain body (a cross-site form can send one
    without a preflight) does not carry it."""
    async with browser(console) as client:
        await client.log_in("vera")
        token = await client.token()
        same = {"Origin": client.base}
        attempts = [
            _raw_post(client, f"/logout?csrf_token={token}", headers=same),
            _raw_post(client, "/logout", headers={**same, "Content-Type": "text/plain"},
                      data=f"csrf_token={token}"),
            _raw_post(client, "/logout", headers={**same, "Content-Type": "application/json"},
                      data=f'{{"csrf_token": "{token}"}}'),
        ]
        for attempt in attempts:
            status, page = await attempt
            assert status == 403 and "carried no CSRF token" in page
        assert (await client.get("/"))[0] == 200
    assert await console.audit_actions() == ["login"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "GET"])
async def test_another_method_or_a_method_override_does_not_reach_a_change(
        console: RunningConsole, method: str) -> None:
    async with browser(console) as client:
        await client.log_in("vera")
        token = await client.token()
        status, _ = await _raw_post(client, "/logout", method=method,
                                    data={"csrf_token": token},
                                    headers={"Origin": client.base,
                                             "X-HTTP-Method-Override": "POST"})
        assert status == 405
        assert (await client.get("/"))[0] == 200
    assert await console.audit_actions() == ["login"]


async def test_a_referer_of_the_console_stands_in_for_a_missing_origin_and_only_it(
        console: RunningConsole) -> None:
    async with browser(console) as client:
        await client.log_in("vera")
        token = await client.token()
        for referer in (f"{client.base}@evil.example/", "http://evil.example/?" + client.base,
                        "null"):
            status, _ = await _raw_post(client, "/logout", data={"csrf_token": token},
                                        headers={"Referer": referer})
            assert status == 403, referer
        status, _ = await _raw_post(client, "/logout", data={"csrf_token": token},
                                    headers={"Referer": client.base + "/traffic"})
        assert status == 303
        assert (await client.get("/"))[0] == 303  # logged out


async def test_a_session_token_from_a_logout_or_another_user_is_worthless(
        console: RunningConsole) -> None:
    """The CSRF token belongs to one session: not the next one, not another user's."""
    async with browser(console) as vera, browser(console) as ada:
        await vera.log_in("vera")
        old = await vera.token()
        await vera.post("/logout", {}, token=old)
        await vera.log_in("vera")
        await ada.log_in("ada")
        for token in (old, await ada.token()):
            status, _, _ = await vera.post("/logout", {}, token=token)
            assert status == 403
        assert (await vera.get("/"))[0] == 200


# --- logins: throttling, cost, names ----------------------------------------------------


async def test_parallel_guesses_do_not_go_past_the_throttle(pool: Any, tmp_path: Path) -> None:
    """Guesses sent all at once: each one is counted before its password is verified, so no
    more than the limit are ever verified (a check-then-count login would verify them all)."""
    async with running_console(pool, tmp_path, login_failures_per_user=3,
                               login_failures_per_address=1000) as console:
        clients = [Browser(console.base) for _ in range(24)]
        try:
            tokens = await asyncio.gather(*(c.token("/login") for c in clients))
            answers = await asyncio.gather(*(
                c.post("/login", {"name": "ada", "password": f"guess-{n}"}, token=t)
                for n, (c, t) in enumerate(zip(clients, tokens, strict=True))))
        finally:
            await asyncio.gather(*(c.close() for c in clients))
        statuses = sorted(a[0] for a in answers)
        assert statuses.count(401) <= 3 and statuses.count(429) >= 21, statuses
        actions = await console.audit_actions()
        assert actions.count("login_failed") <= 3
        assert actions.count("login_failed") + actions.count("login_throttled") == 24


class _Counting:
    """verify_password wrapped: how many run at once (threads of the console's event loop)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, encoded: str, password: str) -> bool:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            threading.Event().wait(0.05)  # a hash's time, so that the logins overlap
            return bool(self.real(encoded, password))
        finally:
            with self.lock:
                self.now -= 1


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Counting]:
    wrapped = _Counting(auth.verify_password)
    monkeypatch.setattr(auth, "verify_password", wrapped)
    yield wrapped


async def test_a_flood_of_logins_hashes_a_bounded_number_at_once(
        pool: Any, tmp_path: Path, counting: _Counting) -> None:
    """argon2id at 64 MiB a hash: 40 logins at once must not take 40 x 64 MiB nor every
    thread of the event loop's executor (which /metrics and file writes share)."""
    async with running_console(pool, tmp_path, login_failures_per_user=1000,
                               login_failures_per_address=1000) as console:
        clients = [Browser(console.base) for _ in range(40)]
        try:
            tokens = await asyncio.gather(*(c.token("/login") for c in clients))
            answers = await asyncio.gather(*(
                c.post("/login", {"name": "vera", "password": PASSWORDS["vera"]}, token=t)
                for c, t in zip(clients, tokens, strict=True)))
        finally:
            await asyncio.gather(*(c.close() for c in clients))
    assert [a[0] for a in answers] == [303] * 40
    assert 1 <= counting.most <= auth.MAX_HASHING_AT_ONCE


async def test_a_name_that_lowercases_to_a_users_is_that_users_name(
        pool: Any, tmp_path: Path) -> None:
    """The KELVIN SIGN (U+212A) lower-cases to "k" in Python, not in PostgreSQL: "Kim" with it
    must neither log in as "kim" nor count failures apart from "kim"'s (a throttle bypass)."""
    async with running_console(pool, tmp_path, login_failures_per_user=2,
                               login_failures_per_address=1000) as console, \
            browser(console) as client:
        users = load_users(console.users_path)
        kim = ConsoleUser(name="kim", role=Role.admin,
                          password_hash=users.users[0].password_hash)
        write_users(console.users_path, UsersFile(users=(*users.users, kim)))
        kelvin = "\u212aim"
        assert (await client.log_in("kim", "guess"))[0] == 401
        assert (await client.log_in(kelvin, "guess"))[0] == 401
        assert (await client.log_in(kelvin.upper(), "guess"))[0] == 429
        assert (await client.log_in(kelvin, PASSWORDS["vera"]))[0] == 429


async def test_a_huge_login_form_is_refused_before_it_is_read(
        console: RunningConsole) -> None:
    async with browser(console) as client:
        token = await client.token("/login")
        status, _, _ = await client.post("/login", {"name": "ada",
                                                    "password": "x" * (2 * 1024 * 1024)},
                                         token=token)
        assert status == 413
        long_password = await client.post("/login", {"name": "ada", "password": "x" * 5000},
                                          token=token)
        assert long_password[0] == 401
        status, _, _ = await client.get("/login?" + "a=b&" * 3000)
        assert status in {200, 400, 414}
    async with aiohttp.ClientSession() as session, \
            session.get(console.base + "/", headers={"X-Big": "y" * 20000}) as response:
        assert response.status in {400, 431}


async def test_hostile_cookies_are_no_session(console: RunningConsole) -> None:
    for value in ("", "x" * 4000, "\u00e9t\u00e9", "' OR 1=1 --"):
        async with aiohttp.ClientSession(cookies={SESSION: value}) as session, \
                session.get(console.base + "/", allow_redirects=False) as response:
            assert response.status == 303, value
