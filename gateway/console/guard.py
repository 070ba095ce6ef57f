"""The console's guard, one middleware in front of every handler: the role table
(console.routes) for every route, a same-origin check and the CSRF token for every change, and
the security headers on every answer (OWASP Secure Headers Project)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.config.settings import ConsoleSettings
from gateway.console import csrf
from gateway.console.auth import Gatekeeper, Visitor
from gateway.console.routes import PROBES, route_of
from gateway.errors import StoreUnavailable
from gateway.logs import event
from gateway.store.database import CONNECTION_ERRORS, VALUE_ERRORS

log = logging.getLogger("gateway.console")
#: The database down or cut off: an answer that says so (console.guard._store_unavailable).
UNAVAILABLE: tuple[type[BaseException], ...] = (StoreUnavailable, *CONNECTION_ERRORS)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refusal = Callable[[web.Request, str], Awaitable[web.Response]]
#: Where a handler finds the logged-in user (request[VISITOR]).
VISITOR = web.RequestKey("console.visitor", Visitor)

#: No script at all, no inline style, nothing from elsewhere, no framing (clickjacking), and
#: forms post only to the console (CSP Level 3).
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP 2
    "X-Content-Type-Options": "nosniff",
    # Same-origin requests keep their Referer (the CSRF check's fallback), others get none.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class Cookies:
    """The cookies' names and flags.  Secure ones take the __Host- prefix (RFC 6265bis
    section 4.1.3.2): set only over HTTPS, for this host alone, on path /."""

    secure: bool

    @classmethod
    def of(cls, settings: ConsoleSettings) -> Cookies:
        https = (settings.public_origin or "").startswith("https://")
        return cls(settings.secure_cookies or https)

    @property
    def session(self) -> str:
        return "__Host-console_session" if self.secure else "console_session"

    @property
    def login(self) -> str:
        """The pre-session CSRF token of the login form (a login CSRF defence)."""
        return "__Host-console_login" if self.secure else "console_login"

    def set(self, response: web.StreamResponse, name: str, value: str) -> None:
        # No Max-Age: the browser forgets it when closed; the server expires it anyway.
        response.set_cookie(name, value, path="/", httponly=True, samesite="Strict",
                            secure=self.secure)

    def delete(self, response: web.StreamResponse, name: str) -> None:
        response.del_cookie(name, path="/", secure=self.secure, httponly=True,
                            samesite="Strict")


class Guard:
    def __init__(self, settings: ConsoleSettings, gatekeeper: Gatekeeper | None,
                 refuse: Refusal) -> None:
        self._settings = settings
        self._gatekeeper = gatekeeper
        self._refuse = refuse
        self.cookies = Cookies.of(settings)
        self._proxies = settings.proxy_networks()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as exc:  # aiohttp's own 404 and 405 are pages too
            exc.headers.update(_headers(exc.headers))
            raise
        except UNAVAILABLE as exc:
            if isinstance(exc, VALUE_ERRORS):  # asyncpg's DataError is an InterfaceError
                raise
            response = _store_unavailable(request, exc)
        response.headers.update(_headers(response.headers))
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        client = forwarded_client(request.remote, request.headers.getall("X-Forwarded-For", []),
                                  self._proxies)
        if client is not None and client != request.remote:
            request = request.clone(remote=client)
        resource = request.match_info.route.resource
        if resource is None:  # not found or method not allowed: aiohttp answers
            return await handler(request)
        route = route_of(request.method, resource.canonical)
        if route is None:  # deny by default: a route nobody gave a role to serves no one
            return await self._refuse(request, "this route is not in the console's role table")
        if route not in PROBES:  # monitoring may scrape the listener by any of its names
            problem = csrf.host_problem(request.host, self._settings.host,
                                        self._settings.public_origin)
            if problem is not None:
                return await self._refuse(request, problem)
        if route.changes:
            problem = csrf.origin_problem(request.headers.get("Origin"),
                                          request.headers.get("Referer"), self.origin(request))
            if problem is not None:
                return await self._refuse(request, problem)
        visitor = None
        if route.minimum is not None:
            visitor = await self._visitor(request)
            if visitor is None:
                if not route.changes:
                    return see_other("/login")
                return await self._refuse(request, "log in first")
            request[VISITOR] = visitor
            if visitor.role < route.minimum:
                return await self._refuse(request, f"this takes the {route.minimum.name} "
                                          f"role, and {visitor.user.name} is "
                                          f"{visitor.role.name}")
        if route.changes:
            problem = await self._token_problem(request, visitor)
            if problem is not None:
                return await self._refuse(request, problem)
        return await handler(request)

    def origin(self, request: web.Request) -> str:
        """The console's own origin: as configured (a proxy in front), else as reached."""
        return self._settings.public_origin or f"{request.scheme}://{request.host}"

    async def _visitor(self, request: web.Request) -> Visitor | None:
        token = request.cookies.get(self.cookies.session)
        if token is None or self._gatekeeper is None:
            return None
        return await self._gatekeeper.visitor(token)

    async def _token_problem(self, request: web.Request, visitor: Visitor | None) -> str | None:
        expected = (visitor.session.csrf_token if visitor is not None
                    else request.cookies.get(self.cookies.login))
        given = request.headers.get(csrf.HEADER)
        if request.content_type in {"application/x-www-form-urlencoded",
                                    "multipart/form-data"}:
            try:  # read here, once (aiohttp keeps it for the handler), so it never fails there
                value = (await request.post()).get(csrf.FIELD)
            except ValueError:  # bytes that are not UTF-8, a broken multipart body
                return "the form could not be read (not UTF-8?)"
            if given is None:
                given = value if isinstance(value, str) else None
        return csrf.token_problem(expected, given)


def _store_unavailable(request: web.Request, exc: BaseException) -> web.Response:
    """PostgreSQL down or cut off while someone uses the console: a 503 saying so, not
    aiohttp's bare 500 (sessions, users' rights and every page live in the database)."""
    event(log, "console_store_unavailable", level=logging.WARNING, path=request.path,
          error=str(exc) or type(exc).__name__)
    return web.Response(
        status=503, headers={"Retry-After": "10"}, content_type="text/plain",
        text="The console cannot reach its database now: try again in a moment.\n"
        + ("" if request.method in {"GET", "HEAD"} else
           "What you asked may not have been done: look again once the console is back.\n"))


def see_other(location: str) -> web.Response:
    """303: the browser GETs ``location`` (after a form: RFC 9110 section 15.4.4)."""
    return web.Response(status=303, headers={"Location": location})


def _headers(present: object) -> dict[str, str]:
    headers = dict(SECURITY_HEADERS)
    if "Cache-Control" not in present:  # type: ignore[operator]
        headers["Cache-Control"] = "no-store"  # pages hold what a shared computer must not keep
    return headers


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def forwarded_client(peer: str | None, forwarded_for: list[str],
                     proxies: tuple[Network, ...]) -> str | None:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
    address of X-Forwarded-For that is not a trusted proxy (each proxy appends the address it
    was reached from, so the ones further left may be forged by the client; RFC 7239
    section 5.2 and 8.3).  An unreadable entry ends the walk at the proxy that wrote it."""
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for header in forwarded_for for h in header.split(",")]
    client = peer
    for hop in reversed(hops):
        if not _trusted(client, proxies):
            break
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:
            break
    return client


def _trusted(address: str | None, proxies: tuple[Network, ...]) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)
