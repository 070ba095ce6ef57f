"""The console's logins, sessions, CSRF defences, roles and audit log over real HTTP against a
real ``start_console`` and a PostgreSQL database of the test's own (issue 14)."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.console_users import ConsoleUser, Role, UsersFile, load_users, write_users
from gateway.console.routes import ROUTES, Route
from tests.support.console import (
    PASSWORDS,
    ROLES,
    Browser,
    RunningConsole,
    browser,
    console_gateway,
    running_console,
    table_rows,
)
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import Gateway

pytestmark = pytest.mark.integration
SESSION = "console_session"


count = table_rows


async def test_a_good_login_opens_a_session_with_safe_cookie_flags(
        console: RunningConsole) -> None:
    async with browser(console) as client:
        status, _, response = await client.log_in("ada")
        assert status == 303 and response.headers["Location"] == "/"
        (cookie,) = [c for c in response.headers.getall("Set-Cookie")
                     if c.startswith(SESSION + "=")]
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=strict"} <= flags
        assert "secure" not in flags  # plain HTTP on loopback (docs/console.md)
        token = client.cookie(SESSION)
        assert token is not None and len(token) >= 43  # 256 bits
        status, page, response = await client.get("/")
        assert status == 200 and "ada (admin)" in page and "ready" in page
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "script-src" not in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
    async with console.pool.acquire() as connection:
        stored = await connection.fetchval("SELECT token_sha256 FROM console_sessions")
    assert len(stored) == 32 and token.encode() not in stored  # only its hash is kept
    assert await console.audit_actions() == ["login"]


async def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(
        console: RunningConsole) -> None:
    async with browser(console) as client:
        wrong = await client.log_in("ada", "not-the-password")
        unknown = await client.log_in("nobody", "not-the-password")
        assert wrong[0] == unknown[0] == 401
        assert "Wrong name or password." in wrong[1] and "Wrong name or password." in unknown[1]
        assert wrong[1].replace("ada", "nobody") == unknown[1].replace(
            _token(unknown[1]), _token(wrong[1]))
        assert client.cookie(SESSION) is None
        assert (await client.get("/"))[0] == 303
    assert await count(console, "console_sessions") == 0
    assert await console.audit_actions() == ["login_failed", "login_failed"]


def _token(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


async def test_logins_are_throttled_per_name_and_per_address(pool: Any,
                                                             tmp_path: Path) -> None:
    async with running_console(pool, tmp_path, login_failures_per_user=3,
                               login_failures_per_address=5) as console, \
            browser(console) as client:
        for _ in range(3):
            assert (await client.log_in("ada", "guess"))[0] == 401
        status, page, _ = await client.log_in("ada")  # the right password, too late
        assert status == 429 and "Too many failed logins" in page
        assert client.cookie(SESSION) is None
        assert (await client.log_in("vera"))[0] == 303  # another name: its own count
        assert (await client.log_in("otto", "guess"))[0] == 401
        assert (await client.log_in("vera", "guess"))[0] == 401  # 5 from this address now
        status, _, _ = await client.log_in("otto")
        assert status == 429
        actions = await console.audit_actions()
        assert actions.count("login_throttled") == 2 and actions.count("login_failed") == 5


async def test_login_rotates_the_session(console: RunningConsole) -> None:
    async with browser(console) as client:
        await client.log_in("vera")
        first = client.cookie(SESSION)
        await client.log_in("ada")
        second = client.cookie(SESSION)
        assert first and second and first != second
        assert await count(console, "console_sessions") == 1  # the old one is gone
        assert "ada (admin)" in (await client.get("/"))[1]


@pytest.mark.parametrize("column", ["last_seen_at", "created_at"])
async def test_an_expired_session_sends_back_to_the_login(console: RunningConsole,
                                                          column: str) -> None:
    """Idle (last seen 31 minutes ago) and absolute (opened 13 hours ago) expiry."""
    ago = "31 minutes" if column == "last_seen_at" else "13 hours"
    async with browser(console) as client:
        await client.log_in("vera")
        assert (await client.get("/"))[0] == 200
        async with console.pool.acquire() as connection:
            await connection.execute(f"UPDATE console_sessions SET {column} = now() - "
                                     f"interval '{ago}'")
        status, _, response = await client.get("/")
        assert status == 303 and response.headers["Location"] == "/login"


async def test_logout_ends_the_session_for_good(console: RunningConsole) -> None:
    async with browser(console) as client:
        await client.log_in("vera")
        token = client.cookie(SESSION)
        status, _, response = await client.post("/logout", {}, token=await client.token())
        assert status == 303 and response.headers["Location"] == "/login"
        assert client.cookie(SESSION) in (None, "")
        assert await count(console, "console_sessions") == 0
    async with browser(console) as replay:  # the old cookie, kept by an attacker
        assert token is not None
        replay.session.cookie_jar.update_cookies({SESSION: token})
        assert (await replay.get("/"))[0] == 303
    assert await console.audit_actions() == ["login", "logout"]


async def test_a_removed_or_demoted_user_loses_the_rights_at_once(
        console: RunningConsole) -> None:
    async with browser(console) as client:
        await client.log_in("ada")
        assert (await client.get("/audit"))[0] == 200
        users = load_users(console.users_path)
        write_users(console.users_path, UsersFile(users=tuple(
            ConsoleUser(name=u.name, role=Role.viewer if u.name == "ada" else u.role,
                        password_hash=u.password_hash) for u in users.users)))
        status, page, _ = await client.get("/audit")
        assert status == 403 and "takes the admin role" in page
        write_users(console.users_path, UsersFile(users=tuple(
            u for u in users.users if u.name != "ada")))
        assert (await client.get("/"))[0] == 303


# CSRF: every change refused without the token or from elsewhere, and nothing changed


@pytest.mark.parametrize(("case", "why"), [
    ("no token", "carried no CSRF token"),
    ("wrong token", "not this session's"),
    ("other origin", "not from the console"),
    ("other referer", "not of the console"),
    ("no origin", "neither where it came from"),
])
@pytest.mark.parametrize("route", [r for r in ROUTES if r.changes and r.minimum is not None],
                         ids=lambda r: r.path)
async def test_a_change_without_a_valid_csrf_token_or_origin_changes_nothing(
        console: RunningConsole, route: Route, case: str, why: str) -> None:
    async with browser(console) as admin, browser(console) as victim:
        await victim.log_in("vera")
        await admin.log_in("ada")
        token = await admin.token()
        sessions_before = await count(console, "console_sessions")
        audit_before = await count(console, "console_audit")
        data = _form_for(route, victim_session=await _session_id(console, "vera"))
        post = {
            "no token": lambda: admin.post(route.path, data),
            "wrong token": lambda: admin.post(route.path, data, token=token[::-1]),
            "other origin": lambda: admin.post(route.path, data, token=token,
                                               origin="http://evil.example"),
            "other referer": lambda: _post_with_referer(admin, route.path, data, token),
            "no origin": lambda: admin.post(route.path, data, token=token, origin=None),
        }[case]
        status, page, _ = await post()
        page = html.unescape(page)
        assert status == 403 and "Refused" in page and why in page, page
        assert "Nothing was changed" in page
        assert await count(console, "console_sessions") == sessions_before
        assert await count(console, "console_audit") == audit_before
        assert (await admin.get("/"))[0] == 200  # still logged in


async def _post_with_referer(client: Browser, path: str, data: dict[str, str],
                             token: str) -> tuple[int, str, Any]:
    async with client.session.post(client.base + path, data={**data, "csrf_token": token},
                                   headers={"Referer": "http://evil.example/page"},
                                   allow_redirects=False) as response:
        return response.status, await response.text(), response


async def test_logging_in_needs_the_login_forms_token(console: RunningConsole) -> None:
    """Login CSRF: a form posted from elsewhere cannot log a browser in as someone else."""
    async with browser(console) as client:
        status, page, _ = await client.post("/login", {"name": "ada",
                                                       "password": PASSWORDS["ada"]})
        assert status == 403 and "no CSRF token was issued" in page
        await client.token("/login")
        status, _, _ = await client.post("/login", {"name": "ada",
                                                    "password": PASSWORDS["ada"]},
                                         token="forged")
        assert status == 403 and client.cookie(SESSION) is None
    assert await count(console, "console_audit") == 0


async def _session_id(console: RunningConsole, user: str) -> str:
    async with console.pool.acquire() as connection:
        return str(await connection.fetchval(
            "SELECT max(id) FROM console_sessions WHERE user_name = $1", user))


#: What the Attention page's forms post (docs/console.md), beside the sessions' form.
ATTENTION_FORMS = {"/attention/release": {"message": "1"},
                   "/attention/replay": {"what": "message", "id": "1"},
                   "/attention/replay-dead": {"agency": "customs", "letter": "x"}}


def _form_for(route: Route, victim_session: str) -> dict[str, str]:
    """What a real form of the route posts (beyond the token)."""
    if route.path == "/sessions/end":
        return {"session": victim_session}
    return ATTENTION_FORMS.get(route.path, {})


# the role table, walked with every role


def _allowed(route: Route, role: Role | None) -> bool:
    return route.minimum is None or (role is not None and role >= route.minimum)


def _refused(route: Route, status: int, location: str | None) -> bool:
    """The guard refuses with 403, or sends a stranger's GET to the login page."""
    return status == 403 or (not route.changes and status == 303 and location == "/login")


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: "anonymous" if r is None
                         else r.name)
async def test_every_route_of_the_role_table_with_every_role(console: RunningConsole,
                                                             role: Role | None) -> None:
    """Walks the whole table, so a route added to it is walked too; a route served beside
    the table is refused to everyone (tests/unit/test_console_auth.py)."""
    served = {(r.method, r.resource.canonical)
              for r in console.listener.runner.app.router.routes() if r.resource is not None}
    assert served == {(r.method, r.path) for r in ROUTES}
    name = None if role is None else next(n for n, r in ROLES.items() if r is role)
    outcomes = {}
    for route in ROUTES:
        async with browser(console) as client:
            if name is not None:
                assert (await client.log_in(name))[0] == 303
            token = await client.token("/login" if route.minimum is None or name is None
                                       else "/")
            if route.changes:
                status, _, response = await client.post(_path(route), {}, token=token)
            else:
                status, _, response = await client.get(_path(route))
            outcomes[route.path, route.method] = (
                not _refused(route, status, response.headers.get("Location")), status)
    expected = {(r.path, r.method): _allowed(r, role) for r in ROUTES}
    assert {key: allowed for key, (allowed, _) in outcomes.items()} == expected, outcomes


def _path(route: Route) -> str:
    return route.path.replace("{", "").replace("}", "")  # a placeholder gets its own name


async def test_a_viewer_and_an_operator_change_nothing(console: RunningConsole) -> None:
    """Every change of the table that takes more than a viewer, tried by a viewer and an
    operator with a valid token from the console's origin: refused, nothing changed."""
    for name in ("vera", "otto"):
        async with browser(console) as client:
            await client.log_in(name)
            token = await client.token()
            before = (await count(console, "console_sessions"),
                      await count(console, "console_audit"))
            for route in ROUTES:
                if route.changes and route.minimum is not None and \
                        ROLES[name] < route.minimum:
                    data = _form_for(route, await _session_id(console, "vera"))
                    status, page, _ = await client.post(route.path, data, token=token)
                    assert status == 403 and "takes the" in page, (name, route.path)
            assert (await count(console, "console_sessions"),
                    await count(console, "console_audit")) == before


# audit


async def test_an_admin_ends_a_session_and_the_audit_log_says_so(
        console: RunningConsole) -> None:
    async with browser(console) as admin, browser(console) as viewer:
        await viewer.log_in("vera")
        await admin.log_in("ada")
        page = (await admin.get("/sessions"))[1]
        assert "vera" in page and "this one" in page
        victim = await _session_id(console, "vera")
        status, _, response = await admin.post("/sessions/end", {"session": victim},
                                               token=await admin.token("/sessions"))
        assert status == 303 and response.headers["Location"] == "/sessions"
        assert (await viewer.get("/"))[0] == 303
        status, page, _ = await admin.post("/sessions/end", {"session": victim},
                                           token=await admin.token("/sessions"))
        assert status == 409 and "already ended" in page  # at most once, recorded once
    async with console.pool.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT user_name, role, target, detail::text, client FROM console_audit"
            " WHERE action = 'session_ended'")
        assert await connection.fetchval(
            "SELECT count(*) FROM console_audit WHERE action = 'session_ended'") == 1
    assert (row["user_name"], row["role"], row["target"], row["client"]) == (
        "ada", "admin", "vera", "127.0.0.1")
    assert json.loads(row["detail"]) == {"session": int(victim)}


async def test_the_audit_page_is_paged_newest_first(console: RunningConsole) -> None:
    async with console.pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO console_audit (user_name, role, action, target)"
            " SELECT 'seed', 'admin', 'seeded', 'row ' || n FROM generate_series(1, 120) n")
    async with browser(console) as client:
        await client.log_in("ada")
        first = (await client.get("/audit"))[1]
        # 50 a page: the login (the newest row), then the seeded rows 120 down to 72
        assert ">login<" in first and "row 120<" in first and "row 72<" in first
        assert "row 71<" not in first
        older = first.split('href="/audit?before=', 1)[1].split('"', 1)[0]
        second = (await client.get(f"/audit?before={older}"))[1]
        assert "row 71<" in second and "row 22<" in second
        assert "row 21<" not in second and "row 72<" not in second
        assert (await client.get("/audit?before=nonsense"))[0] == 200


async def test_what_users_typed_is_shown_as_text(console: RunningConsole) -> None:
    async with browser(console) as client:
        await client.log_in("<script>alert(1)</script>", "x")
        await client.log_in("ada")
        page = (await client.get("/audit"))[1]
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# reachable through gateway serve


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for running in console_gateway(tmp_path):
        yield running


async def test_gateway_serve_serves_the_pages(gateway: Gateway) -> None:
    assert gateway.running is not None and gateway.running.console_port is not None
    client = Browser(f"http://127.0.0.1:{gateway.running.console_port}")
    try:
        assert (await client.get("/"))[0] == 303
        assert (await client.log_in("otto"))[0] == 303
        status, page, _ = await _ready_page(client)
        assert status == 200 and "otto (operator)" in page
        assert (await client.get("/health"))[0] == 200  # the probes stay open
    finally:
        await client.close()


async def _ready_page(client: Browser) -> tuple[int, str, Any]:
    for _ in range(50):  # the routing check turns ready once the table is recorded
        status, page, response = await client.get("/")
        if "Gateway status: <span class=\"ok\">ready" in page:
            break
        await asyncio.sleep(0.1)
    return status, page, response


async def test_find_a_declaration_sent_over_sftp_and_open_its_timeline(
        gateway: Gateway) -> None:
    """Traffic and Timeline: the declaration found by its number, its story with the raw
    bytes, the canonical JSON and the CONTRL, each viewable, and a partner's typing shown as
    text."""
    data = interchange([cusdec_message(declaration="DEC-<b>42")], sender="VANA",
                       control_reference="ICR4242")
    await gateway.upload("van-a", "fish.edi", data)
    await gateway.answers("van-a", "fish.edi")
    assert gateway.running is not None and gateway.running.console_port is not None
    client = Browser(f"http://127.0.0.1:{gateway.running.console_port}")
    try:
        await client.log_in("vera")
        status, page, _ = await client.get("/traffic?reference=DEC-%3Cb%3E42")
        assert status == 200 and "DEC-&lt;b&gt;42" in page and "<b>42" not in page
        message = page.split('href="/timeline?message=', 1)[1].split('"', 1)[0]
        status, page, _ = await client.get("/traffic?kind=interchanges&partner=van-a"
                                           "&status=accepted")
        assert status == 200 and "ICR4242" in page
        status, page, _ = await client.get(f"/timeline?message={message}")
        assert status == 200 and "received" in page and "message_routed" in page
        assert "customs" in page and "ICR4242" in page
        links = {href.split('"', 1)[0].replace("&amp;", "&")
                 for href in page.split('href="/body?')[1:]}
        kinds = {dict(p.split("=", 1) for p in link.split("&"))["kind"] for link in links}
        assert {"raw", "canonical", "acknowledgement", "outbox"} <= kinds
        for link in links:
            status, body, _ = await client.get(f"/body?{link}")
            assert status == 200, (link, body)
        raw = next(link for link in links if "kind=raw" in link)
        body = html.unescape((await client.get(f"/body?{raw}"))[1])
        assert "UNB+UNOC:3+VANA" in body and "BGM+929+DEC-<b>42+9'\n" in body
        canonical = next(link for link in links if "kind=canonical" in link)
        assert "shown as JSON" in (await client.get(f"/body?{canonical}"))[1]
        assert (await client.get("/traffic?since=yesterday"))[0] == 400
        assert (await client.get("/timeline?message=999999999"))[0] == 404
        assert (await client.get("/body?kind=nonsense&id=1"))[0] == 400
    finally:
        await client.close()
