"""The ops console's listener (issue 14): an aiohttp application on its own address, apart
from partner traffic.  /health, /ready and /metrics (docs/observability.md) always; the pages
(docs/console.md) when there are users.  Every route comes from the role table
(console.routes), behind the guard (console.guard)."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.config.load import GatewayConfig
from gateway.config.settings import ConsoleSettings
from gateway.console.attention_pages import AttentionPages
from gateway.console.auth import Gatekeeper
from gateway.console.guard import Cookies, Guard
from gateway.console.health import CHECK_TIMEOUT_SECONDS, Readiness
from gateway.console.operations import Operations
from gateway.console.pages import MAX_FORM_BYTES, Pages
from gateway.console.partners_page import PartnersPage
from gateway.console.port_alarm_pages import PortAlarmPages
from gateway.console.report_pages import Render, ReportPages
from gateway.console.routes import PAGES, PROBES, Route
from gateway.console.routing_desk import RoutingDesk
from gateway.console.routing_pages import RoutingPages
from gateway.console.scrape import gauges, render
from gateway.console.traffic_pages import TrafficPages
from gateway.errors import ConfigError, GatewayError
from gateway.logs import event
from gateway.store.gauges import Backlog, backlog

log = logging.getLogger("gateway.console")


@dataclass(frozen=True, slots=True)
class Console:
    """What the console's pages read."""

    readiness: Readiness
    #: The processes' counter files (console.metrics); None when counting is off.
    metrics_directory: Path | None
    agencies: Callable[[], Iterable[str]]
    settings: ConsoleSettings = field(default_factory=ConsoleSettings)
    #: Logins and sessions; None without a users file (no pages then).
    gatekeeper: Gatekeeper | None = None
    #: routing.yaml, its check, replay and reload (gateway.app.routing_change); None: the
    #: Routing pages show the history only and change nothing.
    routing: RoutingDesk | None = None
    #: Release and replay (gateway.app.console_operations); None: the Attention page lists
    #: and acts on nothing.
    operations: Operations | None = None
    #: The configuration in force (Partners page, agencies' deadlines); None outside serve.
    config: Callable[[], GatewayConfig | None] = lambda: None


@dataclass
class ConsoleListener:
    runner: web.AppRunner
    host: str
    port: int

    async def close(self) -> None:
        await self.runner.cleanup()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def application(console: Console) -> web.Application:
    """Only the routes of the table are added, each to the handler it names."""
    probes = _Pages(console)
    handlers: dict[str, Handler] = {r.handler: getattr(probes, r.handler) for r in PROBES}
    routes: tuple[Route, ...] = PROBES
    pages = None
    if console.gatekeeper is not None:
        pages = Pages(console.gatekeeper, console.readiness.pool, console.readiness,
                      Cookies.of(console.settings),
                      console.settings.session_idle_seconds,
                      console.settings.session_absolute_seconds)
        traffic = TrafficPages(console.readiness.pool, pages.render)
        routing = RoutingPages(console.readiness.pool, pages.render, console.routing)
        sources = (pages, routing, traffic, *_operations_pages(console, pages.render))
        handlers |= {r.handler: next(getattr(s, r.handler) for s in sources
                                     if hasattr(s, r.handler)) for r in PAGES}
        routes += PAGES
    guard = Guard(console.settings, console.gatekeeper,
                  _no_refusal if pages is None else pages.refused)
    app = web.Application(middlewares=[guard.middleware], client_max_size=MAX_FORM_BYTES)
    for route in routes:
        app.router.add_route(route.method, route.path, handlers[route.handler])

    async def close_readiness(app: web.Application) -> None:
        await console.readiness.close()

    app.on_cleanup.append(close_readiness)  # the listener's close runs it
    return app


def _operations_pages(console: Console, render: Render) -> tuple[object, ...]:
    """Attention, Port alarms, Partners, Charts and Clearance."""
    pool = console.readiness.pool

    def deadlines() -> dict[str, float]:
        config = console.config()
        return {} if config is None else {a.code: a.answer_within_seconds
                                          for a in config.agencies
                                          if a.answer_within_seconds is not None}

    return (AttentionPages(pool, render, console.operations), PortAlarmPages(pool, render),
            ReportPages(pool, render, deadlines), PartnersPage(render, console.config))


async def _no_refusal(request: web.Request, reason: str) -> web.Response:
    return web.Response(status=403, text=f"refused: {reason}\n")


async def start_console(console: Console, *, host: str, port: int,
                        source: Path) -> ConsoleListener:
    """Listen on ``host:port``; a port taken or an address not ours is a configuration
    error naming them (``source``: the gateway.yaml that asked for it)."""
    runner = web.AppRunner(application(console), access_log=None, handle_signals=False,
                           shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        why = "the port is already in use" if exc.errno == errno.EADDRINUSE else str(exc)
        raise ConfigError(f"{source}: console: cannot listen on {host}:{port}: {why} "
                          "(another gateway, or another program, holds it?)") from exc
    bound = int(runner.addresses[0][1])  # the port given may be 0 (tests): the one taken
    return ConsoleListener(runner, host, bound)


class _Pages:
    def __init__(self, console: Console) -> None:
        self._console = console

    async def health(self, request: web.Request) -> web.Response:
        """The process is alive and its event loop turns: nothing else is asked."""
        return web.json_response({"status": "alive"})

    async def ready(self, request: web.Request) -> web.Response:
        checks = await self._console.readiness.checks()
        ready = all(c.ok for c in checks)
        body = {"ready": ready, "checks": {c.name: c.json() for c in checks}}
        return web.json_response(body, status=200 if ready else 503,
                                 dumps=lambda d: json.dumps(d, indent=2) + "\n")

    async def metrics(self, request: web.Request) -> web.Response:
        store = await self._backlog()
        families = gauges(store, self._console.readiness.routing_version(),
                          self._console.agencies())
        body = await asyncio.to_thread(render, self._console.metrics_directory, families)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _backlog(self) -> Backlog | None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS * 2), \
                    self._console.readiness.pool.acquire() as connection:
                return await backlog(connection)
        except (TimeoutError, GatewayError, OSError) as exc:
            event(log, "metrics_store_unavailable", level=logging.WARNING, error=str(exc),
                  note="/metrics says gateway_store_up 0")
            return None
