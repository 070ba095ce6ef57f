"""The Attention page (issue 14): what waits for ops - parked submissions, parked dispatches
(outbox rows), held messages, unroutable messages, dead letters - each newest first with its
reason and age and a link to its timeline; and the operator's actions on them: release a held
message, replay a parked submission, a submission's parked dispatches, an unroutable message
(after a routing change) or a dead letter.  The actions are the CLI's (console.operations,
passed in by gateway serve); each runs in one transaction with its audit row (store.audit),
and acts at most once: a second POST finds nothing left and says so (409)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.console.auth import Visitor
from gateway.console.guard import VISITOR
from gateway.console.operations import (
    DEAD_LETTERS_LISTED,
    REPLAYABLE,
    DeadLetterList,
    Done,
    Operations,
)
from gateway.console.pages import client_of, positive_id
from gateway.errors import GatewayError
from gateway.store import audit
from gateway.store.attention import LISTS, waiting

Render = Callable[..., web.Response]
#: Rows of each list on one page.
PAGE_SIZE = 50
TITLES = {"submissions": "Parked submissions", "dispatches": "Parked dispatches",
          "held": "Held messages", "unroutable": "Unroutable messages",
          "dead": "Dead letters"}
#: The most a form field of these actions may hold (an AMQP message id is at most 255).
MAX_FIELD = 255


def age(seconds: float) -> str:
    """A wait as people say it: 45 s, 12 min, 5 h, 3 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"


class AttentionPages:
    def __init__(self, pool: Any, render: Render, operations: Operations | None) -> None:
        self._pool = pool
        self._render = render
        self._operations = operations

    async def attention(self, request: web.Request) -> web.Response:
        return await self._page(request)

    async def _page(self, request: web.Request, result: str = "", status: int = 200,
                    problem: str = "") -> web.Response:
        only = request.query.get("list")
        shown = [only] if only in (*LISTS, "dead") else [*LISTS, "dead"]
        before = positive_id(request.query.get("before")) if only in LISTS else None
        lists: dict[str, Any] = {}
        try:
            async with self._pool.acquire() as connection:
                for name in shown:
                    if name in LISTS:
                        lists[name] = await waiting(connection, name, before, PAGE_SIZE)
        except GatewayError as exc:
            problem = problem or str(exc)
        dead = await self._dead() if "dead" in shown else None
        return self._render(request, "attention.html", status=status, lists=lists,
                            titles=TITLES, dead=dead, result=result, problem=problem,
                            page_size=PAGE_SIZE, only=only if only in TITLES else None,
                            age=age, acting=self._operations is not None,
                            dead_listed=DEAD_LETTERS_LISTED)

    async def _dead(self) -> DeadLetterList:
        if self._operations is None:
            return DeadLetterList((), ("the dead-letter queues are read by gateway serve's "
                                       "console only",))
        try:
            return await self._operations.dead_letters()
        except GatewayError as exc:
            return DeadLetterList((), (str(exc),))

    async def attention_release(self, request: web.Request) -> web.Response:
        form = await request.post()
        message = positive_id(_field(form, "message"))
        if message is None:
            return await self._page(request, status=400, problem="Name a held message "
                                    "(field message).")
        return await self._act(request, "message_released", f"message {message}",
                               lambda ops, c: ops.release(c, message))

    async def attention_replay(self, request: web.Request) -> web.Response:
        form = await request.post()
        what, ident = _field(form, "what"), positive_id(_field(form, "id"))
        if what not in REPLAYABLE or ident is None:
            return await self._page(request, status=400, problem="Name what to replay "
                                    f"(field what: {', '.join(REPLAYABLE)}; field id).")
        return await self._act(request, f"{what}_replayed", f"{what} {ident}",
                               lambda ops, c: ops.replay(c, what, ident))

    async def attention_replay_dead(self, request: web.Request) -> web.Response:
        form = await request.post()
        agency, letter = _field(form, "agency"), _field(form, "letter")
        if not agency or not letter:
            return await self._page(request, status=400, problem="Name a dead letter "
                                    "(fields agency and letter).")
        if self._operations is None:
            return await self._page(request, status=503, problem=_NO_OPERATIONS)
        visitor: Visitor = request[VISITOR]

        async def recorded(connection: Any, detail: dict[str, Any]) -> None:
            await audit.record(connection, visitor.audit(
                "dead_letter_replayed", client_of(request), f"{agency} {letter}", **detail))

        try:
            done = await self._operations.replay_dead(agency, letter, recorded)
        except GatewayError as exc:
            return await self._page(request, status=409, problem=str(exc))
        return await self._page(request, done.text, 200 if done.changed else 409)

    async def _act(self, request: web.Request, action: str, target: str,
                   run: Callable[[Operations, Any], Any]) -> web.Response:
        """The action and its audit row in one transaction: both or neither."""
        if self._operations is None:
            return await self._page(request, status=503, problem=_NO_OPERATIONS)
        visitor: Visitor = request[VISITOR]
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                done: Done = await run(self._operations, connection)
                if done.changed:
                    await audit.record(connection, visitor.audit(
                        action, client_of(request), target, result=done.text))
        except GatewayError as exc:  # rolled back: nothing done, nothing audited
            return await self._page(request, status=409, problem=str(exc))
        return await self._page(request, done.text, 200 if done.changed else 409)


_NO_OPERATIONS = "Actions need the console of a running gateway serve."


def _field(form: Any, name: str) -> str:
    return str(form.get(name, "")).strip()[:MAX_FIELD]
