"""The Port alarms page (issue 15 item 5, docs/port-alarms.md): the cargo trail's open
alarms (overtime, illegal storage), newest first, and the operator's acknowledgement of one.
An acknowledgement is written with its audit row in one transaction (store.audit), at most
once: a second POST finds it acknowledged already and says so (409)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.console.auth import Visitor
from gateway.console.guard import VISITOR
from gateway.console.pages import client_of, positive_id
from gateway.errors import GatewayError
from gateway.store import audit
from gateway.store import cargo_trail as store

Render = Callable[..., web.Response]
#: Alarms on one page (the newest; acknowledged ones drop off the list).
PAGE_SIZE = 100
TITLES = {"overtime": "Overtime", "illegal_storage": "Illegal storage"}


class PortAlarmPages:
    def __init__(self, pool: Any, render: Render) -> None:
        self._pool = pool
        self._render = render

    async def port_alarms(self, request: web.Request) -> web.Response:
        return await self._page(request)

    async def _page(self, request: web.Request, result: str = "", status: int = 200,
                    problem: str = "") -> web.Response:
        alarms: list[store.Listed] = []
        try:
            async with self._pool.acquire() as connection:
                alarms = await store.listed(connection, open_only=True, limit=PAGE_SIZE)
        except GatewayError as exc:
            problem = problem or str(exc)
        return self._render(request, "port_alarms.html", status=status, alarms=alarms,
                            titles=TITLES, result=result, problem=problem,
                            page_size=PAGE_SIZE)

    async def port_alarm_acknowledge(self, request: web.Request) -> web.Response:
        form = await request.post()
        alarm = positive_id(str(form.get("alarm", "")).strip()[:32])
        if alarm is None:
            return await self._page(request, status=400, problem="Name an alarm (field "
                                    "alarm).")
        visitor: Visitor = request[VISITOR]
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                outcome = await store.acknowledge(connection, alarm, visitor.user.name)
                if outcome == "acknowledged":
                    await audit.record(connection, visitor.audit(
                        "port_alarm_acknowledged", client_of(request), f"port alarm {alarm}"))
        except GatewayError as exc:  # rolled back: nothing done, nothing audited
            return await self._page(request, status=409, problem=str(exc))
        if outcome == "acknowledged":
            return await self._page(request, f"Port alarm {alarm} acknowledged.")
        if outcome == "already":
            return await self._page(request, status=409, problem=f"Port alarm {alarm} was "
                                    "acknowledged already; nothing was changed.")
        return await self._page(request, status=404, problem=f"There is no port alarm "
                                f"{alarm}.")
