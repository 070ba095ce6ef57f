"""Cross-site request forgery (OWASP CSRF Prevention Cheat Sheet): every change carries the
session's synchronizer token (a form field, or a header for scripts), and comes from the
console's own origin (the Origin header, else the Referer).  Plain functions: the guard
(console.guard) applies them to every request that is not GET or HEAD."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

#: The form field and the header that carry the token.
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
#: 256 bits, like the session token: not guessable, whatever the number of tries.
TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_problem(expected: str | None, given: str | None) -> str | None:
    """Why ``given`` is not the token expected, or None when it is (compared in constant
    time: no timing tells how much of a guess was right)."""
    if not expected:
        return "no CSRF token was issued to this browser: open the page again"
    if not given:
        return "the form carried no CSRF token"
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return "the form's CSRF token is not this session's (a stale page, or a forged form)"
    return None


def origin_problem(origin: str | None, referer: str | None, expected: str) -> str | None:
    """Why a change's origin is not ``expected`` (scheme://host[:port]), or None when it is.
    OWASP: verify the source origin with the Origin header, else the Referer; a change that
    carries neither is refused (a browser sends Origin on every cross-origin POST, and the
    console's Referrer-Policy keeps the Referer for its own pages)."""
    if origin is not None:
        if origin == expected:
            return None
        return f"the request came from {origin!r}, not from the console ({expected})"
    if referer:
        parts = urlsplit(referer)
        source = f"{parts.scheme}://{parts.netloc}"
        if source == expected:
            return None
        return f"the request came from a page of {source!r}, not of the console ({expected})"
    return "the request says neither where it came from (Origin) nor which page sent it (Referer)"


def host_problem(host: str, listen: str, public_origin: str | None) -> str | None:
    """Why a page must not be served under the name ``host`` (the Host header), or None.
    Without ``public_origin`` the origin check trusts Host, so a name rebound to the console's
    address (DNS rebinding) would be same-origin with itself: a console listening on loopback
    answers loopback names only, one behind a proxy the name of ``public_origin`` only."""
    if public_origin is not None:
        expected = urlsplit(public_origin).netloc.lower()
        if host.lower() == expected:
            return None
        return f"this console is {public_origin}, not {host!r}"
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        name = ""
    if _loopback(listen) and not _loopback(name):
        return f"this console listens on loopback and is not {host!r}"
    return None


def _loopback(name: str) -> bool:
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
