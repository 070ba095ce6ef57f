"""Every route of the console and the least role it takes, in ONE table: the application is
built from it (console.app), the guard checks it on every request (console.guard), and a test
walks it with each role.  A route not in the table is never served, so a route cannot be added
without saying who may use it."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.console_users import Role

#: Methods that change nothing (RFC 9110 section 9.2.1): every other one is a change, and
#: needs a CSRF token and a same-origin request (console.guard).
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    #: The name of the handler (console.app maps names to functions).
    handler: str
    #: The least role that may use it; None: anyone, logged in or not.
    minimum: Role | None
    #: The label in the navigation bar (GET pages only).
    nav: str | None = None

    @property
    def changes(self) -> bool:
        return self.method not in SAFE_METHODS


#: For monitoring, served whether or not the console has users (docs/observability.md).
PROBES: tuple[Route, ...] = (
    Route("GET", "/health", "health", None),
    Route("GET", "/ready", "ready", None),
    Route("GET", "/metrics", "metrics", None),
)

#: The pages, served when gateway.yaml's ``console:`` names a users file.
PAGES: tuple[Route, ...] = (
    Route("GET", "/static/console.css", "stylesheet", None),
    Route("GET", "/login", "login_form", None),
    Route("POST", "/login", "login", None),
    Route("POST", "/logout", "logout", Role.viewer),
    Route("GET", "/", "home", Role.viewer, nav="Home"),
    Route("GET", "/traffic", "traffic", Role.viewer, nav="Traffic"),
    Route("GET", "/timeline", "timeline", Role.viewer),
    Route("GET", "/body", "body", Role.viewer),
    Route("GET", "/routing", "routing", Role.viewer, nav="Routing"),
    Route("GET", "/routing/proposal", "routing_proposal", Role.viewer),
    Route("GET", "/routing/propose", "routing_propose_form", Role.admin),
    Route("POST", "/routing/propose", "routing_propose", Role.admin),
    Route("POST", "/routing/approve", "routing_approve", Role.admin),
    Route("POST", "/routing/reject", "routing_reject", Role.admin),
    Route("GET", "/attention", "attention", Role.viewer, nav="Attention"),
    Route("POST", "/attention/release", "attention_release", Role.operator),
    Route("POST", "/attention/replay", "attention_replay", Role.operator),
    Route("POST", "/attention/replay-dead", "attention_replay_dead", Role.operator),
    Route("GET", "/port-alarms", "port_alarms", Role.viewer, nav="Port alarms"),
    Route("POST", "/port-alarms/acknowledge", "port_alarm_acknowledge", Role.operator),
    Route("GET", "/partners", "partners", Role.viewer, nav="Partners"),
    Route("GET", "/charts", "charts", Role.viewer, nav="Charts"),
    Route("GET", "/clearance", "clearance", Role.viewer, nav="Clearance"),
    Route("GET", "/clearance.csv", "clearance_csv", Role.viewer),
    Route("GET", "/clearance.json", "clearance_json", Role.viewer),
    Route("GET", "/audit", "audit", Role.admin, nav="Audit"),
    Route("GET", "/sessions", "sessions", Role.admin, nav="Sessions"),
    Route("POST", "/sessions/end", "end_session", Role.admin),
)

ROUTES: tuple[Route, ...] = PROBES + PAGES


def route_of(method: str, path: str) -> Route | None:
    """The table's entry for a request (HEAD is answered as GET: aiohttp adds it)."""
    wanted = "GET" if method == "HEAD" else method
    return _BY_KEY.get((wanted, path))


def navigation(role: Role) -> list[Route]:
    """The pages ``role`` may open, for the navigation bar."""
    return [r for r in PAGES if r.nav is not None and r.minimum is not None
            and role >= r.minimum]


_BY_KEY = {(r.method, r.path): r for r in ROUTES}
