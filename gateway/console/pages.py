"""The console's pages, rendered on the server from Jinja2 templates (autoescaped: whatever a
partner or a user typed is shown as text, never read as markup).  Each handler is named in the
role table (console.routes); the guard has checked role, origin and CSRF token before it runs."""

from __future__ import annotations

import importlib.resources
from typing import Any

import jinja2
from aiohttp import web

from gateway.console import csrf
from gateway.console.auth import Gatekeeper, Outcome, Visitor
from gateway.console.guard import VISITOR, Cookies, see_other
from gateway.console.health import Readiness
from gateway.console.routes import navigation
from gateway.store import audit
from gateway.store import console_sessions as sessions

#: Audit rows on one page.
PAGE_SIZE = 50
#: Parameters of a form the console reads: far more than any of its forms holds.
MAX_FORM_BYTES = 64 * 1024


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.console", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, auto_reload=False,
        trim_blocks=True, lstrip_blocks=True)


def _stylesheet() -> bytes:
    return (importlib.resources.files("gateway.console") / "static" / "console.css").read_bytes()


def client_of(request: web.Request) -> str:
    return request.remote or "unknown"


class Pages:
    def __init__(self, gatekeeper: Gatekeeper, pool: Any, readiness: Readiness,
                 cookies: Cookies, settings_idle: float, settings_absolute: float) -> None:
        self._gatekeeper = gatekeeper
        self._pool = pool
        self._readiness = readiness
        self._cookies = cookies
        self._expiry = (settings_idle, settings_absolute)
        self._templates = templates()
        self._css = _stylesheet()

    def render(self, request: web.Request, template: str, status: int = 200,
               **values: Any) -> web.Response:
        visitor: Visitor | None = request.get(VISITOR)
        page = {"visitor": visitor, "here": request.path,
                "navigation": [] if visitor is None else navigation(visitor.role),
                "csrf_token": "" if visitor is None else visitor.session.csrf_token, **values}
        body = self._templates.get_template(template).render(page)
        return web.Response(text=body, status=status, content_type="text/html")

    async def refused(self, request: web.Request, reason: str) -> web.Response:
        """403 with a page saying why; the guard answers every refusal with it."""
        return self.render(request, "refused.html", status=403, reason=reason)

    async def stylesheet(self, request: web.Request) -> web.Response:
        return web.Response(body=self._css, content_type="text/css",
                            headers={"Cache-Control": "max-age=300"})

    async def login_form(self, request: web.Request) -> web.Response:
        return self._login_page(request, 200)

    def _login_page(self, request: web.Request, status: int, message: str = "",
                    name: str = "") -> web.Response:
        """The form carries the browser's pre-session token (login CSRF: OWASP), set here
        when the browser has none."""
        token = request.cookies.get(self._cookies.login) or csrf.new_token()
        response = self.render(request, "login.html", status=status, csrf_token=token,
                               message=message, name=name)
        self._cookies.set(response, self._cookies.login, token)
        return response

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        if not name or not password:
            return self._login_page(request, 400, "Give a name and a password.", name)
        outcome = await self._gatekeeper.log_in(
            name, password, client_of(request), request.cookies.get(self._cookies.session))
        if outcome.outcome is Outcome.THROTTLED:
            return self._login_page(request, 429, "Too many failed logins for this name or "
                                    "from this address: try again later.", name)
        if outcome.outcome is Outcome.WRONG or outcome.token is None:
            return self._login_page(request, 401, "Wrong name or password.", name)
        response = see_other("/")
        self._cookies.set(response, self._cookies.session, outcome.token)
        self._cookies.delete(response, self._cookies.login)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        await self._gatekeeper.log_out(request[VISITOR], client_of(request))
        response = see_other("/login")
        self._cookies.delete(response, self._cookies.session)
        return response

    async def home(self, request: web.Request) -> web.Response:
        checks = await self._readiness.checks()
        return self.render(request, "home.html", checks=checks,
                           ready=all(c.ok for c in checks))

    async def audit(self, request: web.Request) -> web.Response:
        before = positive_id(request.query.get("before"))
        async with self._pool.acquire() as connection:
            rows = await audit.page(connection, before, PAGE_SIZE)
        older = rows[-1].id if len(rows) == PAGE_SIZE else None
        return self.render(request, "audit.html", rows=rows, before=before, older=older)

    async def sessions(self, request: web.Request, message: str = "",
                       status: int = 200) -> web.Response:
        async with self._pool.acquire() as connection:
            rows = await sessions.live_sessions(connection, *self._expiry)
        return self.render(request, "sessions.html", status=status, rows=rows,
                           message=message)

    async def end_session(self, request: web.Request) -> web.Response:
        visitor: Visitor = request[VISITOR]
        session_id = positive_id(str((await request.post()).get("session", "")))
        if session_id is None:
            return await self.sessions(request, "Name a session to end.", 400)
        async with self._pool.acquire() as connection, connection.transaction():
            ended = await sessions.end_session(connection, session_id)
            if ended is not None:
                await audit.record(connection, visitor.audit(
                    "session_ended", client_of(request), ended.user_name,
                    session=session_id))
        if ended is None:
            return await self.sessions(request, f"Session {session_id} has already ended.",
                                       409)
        return see_other("/sessions")


def positive_id(text: str | None) -> int | None:
    """A row id as a form or query string gives it (ASCII digits, in bigint range), or None."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    value = int(text)
    return value if value > 0 else None
