"""The console's users and guard without a database: argon2id hashing, the users file (errors
at their line), the CSRF and origin checks, the role table and the application built from it,
the guard's deny-by-default, and the command-line helpers that write users."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from gateway.app.console_users import (
    MIN_PASSWORD_CHARS,
    add_user,
    ensure_demo_admins,
    read_password,
)
from gateway.config.console_users import Role, load_users
from gateway.config.settings import ConsoleSettings
from gateway.console import csrf
from gateway.console.app import Console, application
from gateway.console.auth import cost_of
from gateway.console.guard import CONTENT_SECURITY_POLICY, Guard, forwarded_client
from gateway.console.routes import PAGES, PROBES, ROUTES, navigation, route_of
from gateway.errors import ConfigError
from gateway.security.passwords import (
    MAX_PASSWORD_CHARS,
    HashingCost,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from tests.support.console import CHEAP_HASHING, settings

CHEAP = HashingCost(**CHEAP_HASHING)


# argon2id


def test_a_hash_verifies_its_password_only() -> None:
    encoded = hash_password("correct horse battery", CHEAP)
    assert encoded.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert verify_password(encoded, "correct horse battery")
    assert not verify_password(encoded, "correct horse batterY")
    assert encoded != hash_password("correct horse battery", CHEAP)  # a salt of its own


def test_malformed_hashes_and_overlong_passwords_are_a_plain_no() -> None:
    encoded = hash_password("pw", CHEAP)
    assert not verify_password("$argon2id$nonsense", "pw")
    assert not verify_password("", "pw")
    assert not verify_password(encoded, "x" * (MAX_PASSWORD_CHARS + 1))
    with pytest.raises(ValueError):
        hash_password("x" * (MAX_PASSWORD_CHARS + 1), CHEAP)
    with pytest.raises(ValueError):
        hash_password("", CHEAP)


def test_a_hash_below_the_configured_cost_needs_a_rehash() -> None:
    stronger = HashingCost(time_cost=2, memory_kib=128, parallelism=1)
    assert needs_rehash(hash_password("pw", CHEAP), stronger)
    assert not needs_rehash(hash_password("pw", stronger), stronger)
    assert needs_rehash("not a hash", stronger)


def test_the_dummy_hash_has_the_configured_cost() -> None:
    assert dummy_hash(CHEAP).startswith("$argon2id$v=19$m=64,t=1,p=1$")


def test_the_default_cost_is_rfc_9106s() -> None:
    cost = cost_of(ConsoleSettings())
    assert (cost.time_cost, cost.memory_kib, cost.parallelism) == (3, 65536, 4)
    assert not cost.below_recommended()
    assert cost_of(settings()).below_recommended()


# the users file


def _users(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    return path


GOOD_HASH = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"


def test_a_users_file_loads(tmp_path: Path) -> None:
    path = _users(tmp_path, f"users:\n  - name: ada\n    role: admin\n"
                  f"    password_hash: '{GOOD_HASH}'\n")
    (user,) = load_users(path).users
    assert (user.name, user.role) == ("ada", Role.admin)


@pytest.mark.parametrize(("entry", "where", "why"), [
    ("    role: boss\n", ":4:11 users[0].role", "must be one of viewer, operator, admin"),
    ("    role: 3\n", ":4:11 users[0].role", "must be one of viewer, operator, admin"),
    ("    role: admin\n    password: x\n", ":5:15 users[0].password", "unknown field"),
])
def test_users_file_errors_name_file_line_and_field(tmp_path: Path, entry: str, where: str,
                                                   why: str) -> None:
    path = _users(tmp_path, f"users:\n  - name: ada\n    password_hash: '{GOOD_HASH}'\n"
                  + entry)
    with pytest.raises(ConfigError) as caught:
        load_users(path)
    assert f"{path}{where}" in str(caught.value) and why in str(caught.value)


def test_a_plain_or_weak_hash_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _users(tmp_path, "users:\n  - name: ada\n    role: admin\n"
                  "    password_hash: hunter2\n")
    with pytest.raises(ConfigError, match=r"users\.yaml:4:20 users\[0\]\.password_hash"):
        load_users(path)
    bcrypt = "$2b$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234"
    path = _users(tmp_path, f"users:\n  - name: ada\n    role: admin\n"
                  f"    password_hash: '{bcrypt}'\n")
    with pytest.raises(ConfigError, match=r":4:20 users\[0\]\.password_hash"):
        load_users(path)


def test_a_name_given_twice_is_refused(tmp_path: Path) -> None:
    path = _users(tmp_path, "users:\n" + "".join(
        f"  - name: {name}\n    role: viewer\n    password_hash: '{GOOD_HASH}'\n"
        for name in ("ada", "Ada")))
    with pytest.raises(ConfigError, match="user 'Ada' is named twice"):
        load_users(path)


def test_user_add_writes_the_file_atomically_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "users.yaml"
    assert add_user(path, "ada", Role.admin, "first-password-123", CHEAP)
    assert add_user(path, "vera", Role.viewer, "second-password-45", CHEAP)
    assert not add_user(path, "ADA", Role.operator, "third-password-678", CHEAP)
    users = {u.name: u for u in load_users(path).users}
    assert set(users) == {"vera", "ADA"} and users["ADA"].role is Role.operator
    assert verify_password(users["ADA"].password_hash, "third-password-678")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["users.yaml"]  # no temporary left


def test_user_add_refuses_a_bad_name_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "ada", Role.admin, "first-password-123", CHEAP)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="user name 'a b'"):
        add_user(path, "a b", Role.admin, "first-password-123", CHEAP)
    assert path.read_bytes() == before


def test_a_password_comes_from_stdin_and_must_be_long_enough() -> None:
    assert read_password(io.StringIO("a-long-enough-password\nignored\n"), False) == \
        "a-long-enough-password"
    with pytest.raises(ConfigError, match=f"{MIN_PASSWORD_CHARS} to"):
        read_password(io.StringIO("short\n"), False)


def test_the_demo_admins_are_made_once_and_their_passwords_printed_once(
        tmp_path: Path) -> None:
    path = tmp_path / "console-users.yaml"
    out = io.StringIO()
    assert ensure_demo_admins(path, CHEAP, out)
    printed = dict(line.split() for line in out.getvalue().splitlines()[1:])
    users = {u.name: u for u in load_users(path).users}
    assert set(printed) == set(users) == {"admin", "admin2"}
    for name, password in printed.items():
        assert users[name].role is Role.admin
        assert verify_password(users[name].password_hash, password)
    again = io.StringIO()
    assert not ensure_demo_admins(path, CHEAP, again)
    assert "kept" in again.getvalue()
    assert not any(p in again.getvalue() for p in printed.values())


# CSRF and origin


def test_csrf_tokens_are_long_random_and_compared_exactly() -> None:
    first, second = csrf.new_token(), csrf.new_token()
    assert first != second and len(first) >= 43
    assert csrf.token_problem(first, first) is None
    assert "not this session's" in str(csrf.token_problem(first, second))
    assert "carried no CSRF token" in str(csrf.token_problem(first, None))
    assert "carried no CSRF token" in str(csrf.token_problem(first, ""))
    assert "no CSRF token was issued" in str(csrf.token_problem(None, first))
    assert "no CSRF token was issued" in str(csrf.token_problem("", ""))


@pytest.mark.parametrize(("origin", "referer", "ok"), [
    ("http://127.0.0.1:8081", None, True),
    ("http://127.0.0.1:8081", "http://evil.example/", True),  # Origin decides when present
    ("http://evil.example", "http://127.0.0.1:8081/", False),
    ("null", None, False),
    ("https://127.0.0.1:8081", None, False),  # another scheme is another origin
    ("http://127.0.0.1:8082", None, False),
    (None, "http://127.0.0.1:8081/sessions?x=1", True),
    (None, "http://127.0.0.1:8081.evil.example/", False),
    (None, "http://evil.example/http://127.0.0.1:8081/", False),
    (None, None, False),
    (None, "", False),
])
def test_a_change_must_come_from_the_console_itself(origin: str | None, referer: str | None,
                                                    ok: bool) -> None:
    problem = csrf.origin_problem(origin, referer, "http://127.0.0.1:8081")
    assert (problem is None) == ok, problem


# the role table


def test_the_role_table_has_one_entry_per_method_and_path() -> None:
    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys))
    assert all(route_of(r.method, r.path) is r for r in ROUTES)
    assert route_of("HEAD", "/") is route_of("GET", "/")
    assert route_of("DELETE", "/") is None


def test_every_change_but_logging_in_takes_a_role() -> None:
    changes = [r for r in ROUTES if r.changes]
    assert changes and all(r.method == "POST" for r in changes)
    assert [r.path for r in changes if r.minimum is None] == ["/login"]


def test_navigation_shows_each_role_what_it_may_open() -> None:
    everyone = ["/", "/traffic", "/routing", "/attention", "/port-alarms", "/partners",
                "/charts", "/clearance"]
    assert [r.path for r in navigation(Role.viewer)] == everyone
    assert [r.path for r in navigation(Role.operator)] == everyone
    assert [r.path for r in navigation(Role.admin)] == [*everyone, "/audit", "/sessions"]


class _NoGate:
    """Application building needs no database."""

    pool = None


def _console(gatekeeper: object | None) -> Console:
    return Console(readiness=_NoGate(), metrics_directory=None,  # type: ignore[arg-type]
                   agencies=tuple, settings=settings(),
                   gatekeeper=gatekeeper)  # type: ignore[arg-type]


def _served(app: web.Application) -> set[tuple[str, str]]:
    return {(r.method, r.resource.canonical) for r in app.router.routes()
            if r.resource is not None}


def test_the_application_serves_exactly_the_role_tables_routes() -> None:
    """Fails when a route is added beside the table: every route needs its role."""
    assert _served(application(_console(_NoGate()))) == {(r.method, r.path) for r in ROUTES}
    assert _served(application(_console(None))) == {(r.method, r.path) for r in PROBES}
    assert {r.handler for r in PAGES}.isdisjoint({r.handler for r in PROBES})


async def _refuse(request: web.Request, reason: str) -> web.Response:
    return web.Response(status=403, text=reason)


async def test_a_route_outside_the_table_is_refused_to_everyone() -> None:
    guard = Guard(settings(), None, _refuse)
    app = web.Application(middlewares=[guard.middleware])

    async def sneaky(request: web.Request) -> web.Response:
        return web.Response(text="changed")

    app.router.add_get("/sneaky", sneaky)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/sneaky")
        assert response.status == 403
        assert "not in the console's role table" in await response.text()
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Frame-Options"] == "DENY"
        missing = await client.get("/nowhere")
        assert missing.status == 404 and missing.headers["X-Content-Type-Options"] == "nosniff"


def test_cookies_are_secure_when_configured_or_behind_https() -> None:
    assert not Guard(settings(), None, _refuse).cookies.secure
    assert Guard(settings(secure_cookies=True), None, _refuse).cookies.session == \
        "__Host-console_session"
    assert Guard(settings(public_origin="https://console.example"), None,
                 _refuse).cookies.secure


def test_console_settings_are_strict() -> None:
    with pytest.raises(ValueError):
        ConsoleSettings.model_validate({"public_origin": "https://x.example/path"})
    with pytest.raises(ValueError):
        ConsoleSettings.model_validate({"password_hashing": {"memory_kib": 1}})
    assert settings().password_hashing.model_dump() == CHEAP_HASHING


def test_the_client_behind_trusted_proxies_is_the_nearest_untrusted_address() -> None:
    """RFC 7239 section 8.3: only what trusted proxies appended is believed; a client's own
    X-Forwarded-For entries (further left) are never taken for its address."""
    proxies = ConsoleSettings(trusted_proxies=["10.0.0.0/8", "127.0.0.1"]).proxy_networks()
    assert forwarded_client("127.0.0.1", ["203.0.113.9"], proxies) == "203.0.113.9"
    assert forwarded_client("127.0.0.1", ["1.2.3.4, 203.0.113.9, 10.1.1.1"],
                            proxies) == "203.0.113.9"  # 1.2.3.4: the client's own claim
    assert forwarded_client("192.0.2.7", ["203.0.113.9"], proxies) == "192.0.2.7"  # no proxy
    assert forwarded_client("127.0.0.1", ["not-an-address"], proxies) == "127.0.0.1"
    assert forwarded_client("127.0.0.1", [], proxies) == "127.0.0.1"
    assert forwarded_client("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"  # none trusted


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ValidationError, match="not an address or a network"):
        ConsoleSettings(trusted_proxies=["proxy.example"])
