"""The Traffic and Timeline pages (issue 14): interchanges and declarations searched by
reference, partner, message type, status and time, a page at a time; one declaration's (or
submission's) whole story; and each stored body it points at (the raw bytes, the canonical
JSON, what was delivered, the agencies' answers, the acknowledgement, an MDN).  Read-only:
the queries are helper-33's (store.traffic, store.timeline), each bounded in time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.console.pages import positive_id
from gateway.errors import QueryRefused
from gateway.store.timeline import Body, BodyRef, body, declaration_timeline, interchange_timeline
from gateway.store.traffic import (
    INTERCHANGE_STATUSES,
    MESSAGE_STATUSES,
    Page,
    TrafficQuery,
    search_declarations,
    search_interchanges,
)

Render = Callable[..., web.Response]
#: Rows on one page of search results.
PAGE_SIZE = 50
#: The search form's text fields, as the query string names them.
FIELDS = ("reference", "partner", "message_type", "message_ref", "status", "since", "until")
KINDS: dict[str, tuple[Callable[..., Awaitable[Page[Any]]], frozenset[str]]] = {
    "declarations": (search_declarations, MESSAGE_STATUSES),
    "interchanges": (search_interchanges, INTERCHANGE_STATUSES)}
#: Bytes of a body shown as a hex dump when it is not text.
HEX_BYTES = 4096


class TrafficPages:
    def __init__(self, pool: Any, render: Render) -> None:
        self._pool = pool
        self._render = render

    async def traffic(self, request: web.Request) -> web.Response:
        kind = request.query.get("kind", "declarations")
        if kind not in KINDS:
            kind = "declarations"
        search, statuses = KINDS[kind]
        form = {name: request.query.get(name, "").strip() for name in FIELDS}
        values = {"kind": kind, "form": form, "statuses": sorted(statuses), "page": None,
                  "problem": "", "next_url": None}
        try:
            query = _query(form)
            async with self._pool.acquire() as connection:
                page = await search(connection, query, request.query.get("after") or None)
        except QueryRefused as exc:
            return self._render(request, "traffic.html", status=400,
                                **{**values, "problem": str(exc)})
        next_url = None if page.next is None else "/traffic?" + urlencode(
            {"kind": kind, **{k: v for k, v in form.items() if v}, "after": page.next})
        return self._render(request, "traffic.html",
                            **{**values, "page": page, "next_url": next_url})

    async def timeline(self, request: web.Request) -> web.Response:
        message = positive_id(request.query.get("message"))
        interchange = positive_id(request.query.get("interchange"))
        if (message is None) == (interchange is None):
            return self._render(request, "timeline.html", status=400, story=None,
                                problem="Name one declaration (?message=ID) or one "
                                "submission (?interchange=ID).")
        try:
            async with self._pool.acquire() as connection:
                story = (await declaration_timeline(connection, message) if message
                         else await interchange_timeline(connection, interchange or 0))
        except QueryRefused as exc:
            return self._render(request, "timeline.html", status=400, story=None,
                                problem=str(exc))
        if story is None:
            return self._render(request, "timeline.html", status=404, story=None,
                                problem="Nothing is stored under that id.")
        return self._render(request, "timeline.html", story=story, problem="",
                            message=message)

    async def body(self, request: web.Request) -> web.Response:
        number = positive_id(request.query.get("id"))
        ref = BodyRef(request.query.get("kind", ""), number or 0,
                      request.query.get("key", ""))
        try:
            async with self._pool.acquire() as connection:
                found = None if number is None else await body(connection, ref)
        except QueryRefused as exc:
            return self._render(request, "body.html", status=400, shown=None,
                                problem=str(exc), ref=ref)
        if found is None:
            return self._render(request, "body.html", status=404, shown=None,
                                problem="No such body is stored.", ref=ref)
        return self._render(request, "body.html", shown=shown(found), problem="", ref=ref)


def _query(form: dict[str, str]) -> TrafficQuery:
    return TrafficQuery(
        reference=form["reference"] or None, partner=form["partner"] or None,
        message_type=form["message_type"].upper() or None,
        message_ref=form["message_ref"] or None, status=form["status"] or None,
        since=_time("since", form["since"]), until=_time("until", form["until"]),
        limit=PAGE_SIZE)


def _time(name: str, text: str) -> dt.datetime | None:
    """A date and time as the form's datetime-local field sends it, read as UTC (the pages
    show UTC), or with its own offset."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise QueryRefused(f"{name}: {text!r} is not a date and time "
                           "(YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)") from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:  # an offset can carry a time outside years 1 to 9999 once in UTC (PostgreSQL's)
        return value.astimezone(dt.UTC)
    except OverflowError as exc:
        raise QueryRefused(f"{name}: {text!r} is out of range") from exc


def shown(found: Body) -> dict[str, Any]:
    """How a body is shown: JSON indented, text as text (EDIFACT one segment a line), other
    bytes as a hex dump of their beginning."""
    data = found.data
    if found.ref.kind in {"canonical", "answer"} and not found.truncated:
        try:
            return _shown(found, json.dumps(json.loads(data), indent=2, ensure_ascii=False),
                          "JSON")
        except ValueError:
            pass
    for encoding in ("utf-8", "iso-8859-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _printable(text):
            return _shown(found, _segments(text), f"text ({encoding})")
    return _shown(found, _hex(data[:HEX_BYTES]), "binary (hex)")


def _shown(found: Body, text: str, form: str) -> dict[str, Any]:
    return {"text": text, "form": form, "size": found.size, "truncated": found.truncated,
            "shown_bytes": len(found.data)}


def _printable(text: str) -> bool:
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t")
    return controls <= len(text) // 100


def _segments(text: str) -> str:
    """EDIFACT written on one line is shown one segment a line (UNA's terminator, else ')."""
    if "\n" in text or not text.startswith(("UNA", "UNB")):
        return text
    terminator = text[8] if text.startswith("UNA") and len(text) > 8 else "'"
    return text.replace(terminator, terminator + "\n")


def _hex(data: bytes) -> str:
    return "\n".join(f"{offset:08x}  {data[offset:offset + 16].hex(' ')}"
                     for offset in range(0, len(data), 16))
