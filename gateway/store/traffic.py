"""The console's traffic search: interchanges and declarations by reference, partner, message
type, status and time, newest first, a page at a time.

Paging is by key, never by OFFSET: a page ends with a cursor naming its last row, and the next
page starts strictly after it in the same order, so rows arriving meanwhile (newer, so ahead of
the first page) never shift a row into the next page twice or out of it.  Each query is built
from the filters given only, so PostgreSQL plans it for exactly those (a ``$1 IS NULL OR ...``
condition would keep it off the indexes); values only ever travel as parameters.  Every search
runs in a read-only transaction bounded by a statement timeout (``bounded``), and what an
operator types is checked first (``QueryRefused`` says what to change).

Indexes (migration 0011): interchanges (received_at, id), (partner_id, received_at, id) and
(status, received_at, id) give the newest-first walk for each filter; references go through
interchanges_reference (control_ref), messages_document_ref and messages (message_ref).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg

from gateway.errors import QueryRefused
from gateway.store.database import translated_errors
from gateway.store.interchanges import MAX_ID
from gateway.store.storable import storable_text

Connection = Any
T = TypeVar("T")

#: What one console query may take on the server before PostgreSQL cancels it.
QUERY_SECONDS = 2.0
#: The most rows one page holds.
MAX_PAGE = 200
#: The longest text a filter may hold (references are at most 35 characters in EDIFACT, 70 in
#: the WCO data model; a longer value cannot match, and an index lookup of it is refused).
MAX_FILTER_LENGTH = 256
INTERCHANGE_STATUSES = frozenset({"received", "accepted", "partially_accepted", "rejected",
                                  "duplicate", "parked"})
MESSAGE_STATUSES = frozenset({"routed", "rejected", "unroutable", "held"})


@contextlib.asynccontextmanager
async def bounded(connection: Connection, what: str, *, seconds: float = QUERY_SECONDS,
                  work_mem_mb: int | None = None, hash_joins: bool = False
                  ) -> AsyncIterator[Connection]:
    """A read-only transaction whose statements PostgreSQL cancels after ``seconds``; plans
    made for the values given each time (asyncpg prepares every statement, and a generic plan
    would ignore how selective a partner or a type is) and no JIT compilation (it costs more
    than these queries take).  ``hash_joins``: a report joining a day of several tables, whose
    row counts PostgreSQL underestimates when ranges of ids meet, must not be joined by one
    index probe per row."""
    settings = (f"SET LOCAL statement_timeout = {int(seconds * 1000)};"
                " SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL jit = off")
    if work_mem_mb is not None:
        settings += f"; SET LOCAL work_mem = '{int(work_mem_mb)}MB'"
    if hash_joins:  # and the day's pages read by bitmap, not the whole table (cached, SSD)
        settings += "; SET LOCAL enable_nestloop = off; SET LOCAL random_page_cost = 1.1"
    async with translated_errors(what):
        try:
            async with connection.transaction(readonly=True):
                await connection.execute(settings)
                yield connection
        except asyncpg.QueryCanceledError as exc:  # statement_timeout
            raise QueryRefused(f"{what} took longer than {seconds:g} s and was stopped: narrow"
                               " it (a time range, a partner, a reference)") from exc


# --- what an operator asks --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrafficQuery:
    """Filters that combine (all must hold); None is "any".  ``reference`` is a submission id,
    a UNB/XML interchange control reference or a declaration (document) number, matched
    exactly: no pattern characters, so ``%`` and ``_`` are themselves.  ``message_ref`` (UNH
    0062) is a filter of its own: alone it names a message only within an interchange."""

    reference: str | None = None
    partner: str | None = None
    message_type: str | None = None
    message_ref: str | None = None
    status: str | None = None
    #: received at or after (inclusive), before (exclusive); both timezone-aware.
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 50


def _checked_text(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_FILTER_LENGTH:
        raise QueryRefused(f"{name} must be 1 to {MAX_FILTER_LENGTH} characters")
    return storable_text(value)  # a NUL matches the escape stored values carry (storable)


def _checked_time(name: str, value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise QueryRefused(f"{name} must be a date and time with its time zone")
    return value


def checked(query: TrafficQuery, statuses: frozenset[str]) -> TrafficQuery:
    """The query with its text made storable, or QueryRefused naming the first bad field."""
    if not isinstance(query.limit, int) or not 1 <= query.limit <= MAX_PAGE:
        raise QueryRefused(f"a page holds 1 to {MAX_PAGE} rows, not {query.limit!r}")
    if query.status is not None and query.status not in statuses:
        raise QueryRefused(f"status must be one of {', '.join(sorted(statuses))}")
    since, until = _checked_time("since", query.since), _checked_time("until", query.until)
    if since is not None and until is not None and until <= since:
        raise QueryRefused("the time range ends before it begins")
    return TrafficQuery(
        reference=_checked_text("reference", query.reference),
        partner=_checked_text("partner", query.partner),
        message_type=_checked_text("message type", query.message_type),
        message_ref=_checked_text("message reference", query.message_ref),
        status=query.status, since=since, until=until, limit=query.limit)


# --- pages and cursors --------------------------------------------------------------------


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CURSOR = re.compile(r"(-?[0-9]{1,17})(?:\.([0-9]{1,19})){1,2}")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: its last row's time and ids (the declaration search's key has the
    message's position too)."""

    received_at: dt.datetime
    ids: tuple[int, ...]

    def token(self) -> str:
        micros = (self.received_at - _EPOCH) // dt.timedelta(microseconds=1)
        return ".".join([str(micros), *map(str, self.ids)])

    @classmethod
    def parse(cls, token: str, parts: int) -> Cursor:
        """A token from ``token()`` with ``parts`` ids; QueryRefused for anything else."""
        found = _CURSOR.fullmatch(token) if isinstance(token, str) else None
        numbers = token.split(".") if found else []
        if len(numbers) != parts + 1 or any(int(n) > MAX_ID for n in numbers[1:]):
            raise QueryRefused("that page cursor is not one of ours: start the search again")
        try:
            at = _EPOCH + dt.timedelta(microseconds=int(numbers[0]))
        except OverflowError as exc:
            raise QueryRefused("that page cursor is not one of ours") from exc
        return cls(at, tuple(int(n) for n in numbers[1:]))


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    #: The cursor of the next page; None on the last.
    next: str | None


@dataclass(slots=True)
class _Sql:
    """Conditions and their parameters, numbered as they are added."""

    conditions: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, condition: str) -> None:
        self.conditions.append(condition)

    def clause(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""


def _submission_id(reference: str) -> int | None:
    """A reference that is a submission id (ASCII digits, in bigint range)."""
    if reference.isascii() and reference.isdigit() and int(reference) <= MAX_ID:
        return int(reference)
    return None


def _common(sql: _Sql, query: TrafficQuery) -> None:
    """The interchange-level filters both searches share (``i`` is interchanges)."""
    if query.partner is not None:
        sql.where(f"i.partner_id = {sql.arg(query.partner)}")
    if query.since is not None:
        sql.where(f"i.received_at >= {sql.arg(query.since)}")
    if query.until is not None:
        sql.where(f"i.received_at < {sql.arg(query.until)}")


def _page(rows: list[Any], limit: int, make: Any, key: Any) -> Page[Any]:
    items = tuple(make(r) for r in rows[:limit])
    more = len(rows) > limit
    return Page(items, Cursor(*key(rows[limit - 1])).token() if more else None)


# --- interchanges -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InterchangeHit:
    id: int
    partner_id: str
    transport: str
    file_name: str
    status: str
    control_ref: str | None
    sender_id: str | None
    recipient_id: str | None
    summary: str | None
    duplicate_of: int | None
    received_at: dt.datetime
    processed_at: dt.datetime | None
    size: int
    messages: int


#: Columns of an InterchangeHit (``i`` is interchanges).
INTERCHANGE_COLUMNS = (
    "i.id, i.partner_id, i.transport, i.file_name, i.status, i.control_ref, i.sender_id,"
    " i.recipient_id, i.summary, i.duplicate_of, i.received_at, i.processed_at,"
    " octet_length(i.raw) AS size,"
    " (SELECT count(*) FROM messages c WHERE c.interchange_id = i.id) AS messages")


def interchange_hit(row: Any) -> InterchangeHit:
    return InterchangeHit(**dict(row))


async def search_interchanges(connection: Connection, query: TrafficQuery,
                              after: str | None = None) -> Page[InterchangeHit]:
    """Interchanges matching every filter, newest first; ``after`` is the previous page's
    ``next``."""
    query = checked(query, INTERCHANGE_STATUSES)
    sql = _Sql()
    _common(sql, query)
    if query.status is not None:
        sql.where(f"i.status = {sql.arg(query.status)}")
    if query.reference is not None:
        ref, number = sql.arg(query.reference), sql.arg(_submission_id(query.reference))
        sql.where(f"i.id IN (SELECT id FROM interchanges WHERE control_ref = {ref}"
                  f" OR id = {number} UNION SELECT interchange_id FROM messages"
                  f" WHERE document_ref = {ref})")
    for column, value in (("message_type", query.message_type),
                          ("message_ref", query.message_ref)):
        if value is not None:
            sql.where(f"EXISTS (SELECT 1 FROM messages m WHERE m.interchange_id = i.id"
                      f" AND m.{column} = {sql.arg(value)})")
    if after is not None:
        cursor = Cursor.parse(after, 1)
        sql.where(f"(i.received_at, i.id) < ({sql.arg(cursor.received_at)},"
                  f" {sql.arg(cursor.ids[0])})")
    text = (f"SELECT {INTERCHANGE_COLUMNS} FROM interchanges i{sql.clause()}"
            f" ORDER BY i.received_at DESC, i.id DESC LIMIT {sql.arg(query.limit + 1)}")
    async with bounded(connection, "searching interchanges"):
        rows = await connection.fetch(text, *sql.args)
    return _page(rows, query.limit, interchange_hit, lambda r: (r["received_at"], (r["id"],)))


# --- declarations -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeclarationHit:
    """One message of an interchange (a declaration, a manifest, a certificate ...)."""

    id: int
    interchange_id: int
    position: int
    message_ref: str
    message_type: str
    release: str
    status: str
    document_ref: str | None
    agencies: tuple[str, ...]
    copies: tuple[str, ...]
    rules: tuple[str, ...]
    routing_version: int | None
    clearance: str | None
    partner_id: str
    control_ref: str | None
    interchange_status: str
    received_at: dt.datetime


#: Columns of a DeclarationHit (``m`` is messages, ``i`` interchanges).
DECLARATION_COLUMNS = (
    "m.id, m.interchange_id, m.position, m.message_ref, m.message_type, m.release, m.status,"
    " m.document_ref, m.agencies, m.copies, m.rules, m.routing_version, m.clearance,"
    " i.partner_id, i.control_ref, i.status AS interchange_status, i.received_at")


def declaration_hit(row: Any) -> DeclarationHit:
    values = dict(row)
    for name in ("agencies", "copies", "rules"):
        values[name] = tuple(values[name])
    return DeclarationHit(**values)


async def search_declarations(connection: Connection, query: TrafficQuery,
                              after: str | None = None) -> Page[DeclarationHit]:
    """Messages matching every filter (``status`` is the message's: routed, rejected,
    unroutable, held), newest interchange first and, within one, last message first."""
    query = checked(query, MESSAGE_STATUSES)
    sql = _Sql()
    _common(sql, query)
    for column, value in (("status", query.status), ("message_type", query.message_type),
                          ("message_ref", query.message_ref)):
        if value is not None:
            sql.where(f"m.{column} = {sql.arg(value)}")
    if query.reference is not None:
        ref, number = sql.arg(query.reference), sql.arg(_submission_id(query.reference))
        sql.where(f"m.id IN (SELECT id FROM messages WHERE document_ref = {ref}"
                  " UNION ALL SELECT d.id FROM messages d WHERE d.interchange_id IN"
                  f" (SELECT id FROM interchanges WHERE control_ref = {ref} OR id = {number}))")
    if after is not None:
        cursor = Cursor.parse(after, 2)
        sql.where(f"(i.received_at, i.id, m.position) < ({sql.arg(cursor.received_at)},"
                  f" {sql.arg(cursor.ids[0])}, {sql.arg(cursor.ids[1])})")
    # Interchanges walked newest first (an index per filter, 0011), each one's messages by
    # (interchange_id, position) backwards: the order comes from the indexes, no sort.
    text = (f"SELECT {DECLARATION_COLUMNS} FROM interchanges i"
            f" JOIN messages m ON m.interchange_id = i.id{sql.clause()}"
            " ORDER BY i.received_at DESC, i.id DESC, m.position DESC"
            f" LIMIT {sql.arg(query.limit + 1)}")
    async with bounded(connection, "searching declarations"):
        rows = await connection.fetch(text, *sql.args)
    return _page(rows, query.limit, declaration_hit,
                 lambda r: (r["received_at"], (r["interchange_id"], r["position"])))
