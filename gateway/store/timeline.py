"""The whole story of one declaration (or one interchange), ordered by time, for the console.

The events table is the history (received, decided, routed, delivered, acknowledged, each
agency's decision, clearance, holds, parks, releases, replays, AS2 receipts and MDNs); each
event that stands for a stored body points at it (``BodyRef``), and ``body`` fetches one,
size-capped, when a page shows it.  Beside the events: the outbox rows (delivered, waiting,
retried or parked), each agency's answers and where it stands, the signed-answer record and
the resends.  Every read walks an index by submission or message (events_interchange,
outbox_interchange, agency_answers_message, signed_answers_interchange, interchanges_resends,
primary keys), so a timeline costs what it shows, not what is stored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.errors import QueryRefused
from gateway.store.traffic import (
    DECLARATION_COLUMNS,
    INTERCHANGE_COLUMNS,
    DeclarationHit,
    InterchangeHit,
    bounded,
    declaration_hit,
    interchange_hit,
)

Connection = Any

#: Bodies larger than this are cut (the page says how large the whole is).
DEFAULT_BODY_CAP = 256 * 1024
MAX_BODY_CAP = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BodyRef:
    """A stored body: ``raw`` (interchange id), ``canonical`` (message id), ``outbox`` (what
    was published or put in a mailbox, by outbox id), ``answer`` (an agency's answer, by
    agency_answers id), ``acknowledgement`` (interchange id), ``mdn`` (the MDN an AS2 message
    was answered with: interchange id and the AS2 Message-ID as ``key``)."""

    kind: str
    id: int
    key: str = ""


@dataclass(frozen=True, slots=True)
class Signature:
    """What is known of a signature at this step: ``verified`` (a partner's, checked on
    receipt), ``signed`` (ours, with the digests kept for non-repudiation), ``unsigned``,
    ``failed``."""

    state: str
    text: str


@dataclass(frozen=True, slots=True)
class Entry:
    at: dt.datetime
    kind: str
    message_id: int | None
    detail: dict[str, Any]
    body: BodyRef | None
    signature: Signature | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row: to an agency (amqp), a partner's mailbox, or an AS2 partner."""

    id: int
    message_id: int | None
    channel: str
    destination: str
    dispatch_key: str
    state: str  # sent, waiting, retrying, parked
    created_at: dt.datetime
    dispatched_at: dt.datetime | None
    attempts: int
    last_error: str | None
    size: int


@dataclass(frozen=True, slots=True)
class AgencyAnswer:
    id: int
    message_id: int
    agency: str
    kind: str
    decision: str | None
    received_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AgencyState:
    message_id: int
    agency: str
    state: str
    final: bool
    decided_at: dt.datetime | None
    overdue_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Timeline:
    interchange: InterchangeHit
    declarations: tuple[DeclarationHit, ...]
    entries: tuple[Entry, ...]
    deliveries: tuple[Delivery, ...]
    answers: tuple[AgencyAnswer, ...]
    states: tuple[AgencyState, ...]
    #: Later submissions of the same interchange, answered as duplicates of this one.
    resends: tuple[int, ...]


# --- reading ------------------------------------------------------------------------------

#: Events of a submission (of one of its messages, or of the submission as a whole, when $2 is
#: given), with the outbox row or agency answer each one names.
_EVENTS = (
    "SELECT e.id, e.at, e.kind, e.message_id, e.detail::text AS detail, o.id AS outbox_id,"
    " a.id AS answer_id FROM events e"
    " LEFT JOIN outbox o ON o.dispatch_key = e.detail->>'key'"
    "   AND e.kind IN ('delivered', 'acknowledged', 'as2_sent')"
    " LEFT JOIN agency_answers a ON a.agency = e.detail->>'agency'"
    "   AND a.answer_id = e.detail->>'answer' AND e.kind = 'agency_decision'"
    " WHERE e.interchange_id = $1 AND ($2::bigint IS NULL OR e.message_id IS NULL"
    "   OR e.message_id = $2) ORDER BY e.at, e.id")
_DELIVERIES = (
    "SELECT id, message_id, channel, destination, dispatch_key, created_at, dispatched_at,"
    " attempts, last_error, parked_at, next_attempt_at, octet_length(body) AS size"
    " FROM outbox WHERE interchange_id = $1 AND ($2::bigint IS NULL OR message_id IS NULL"
    "   OR message_id = $2) ORDER BY id")
_ANSWERS = (
    "SELECT a.id, a.message_id, a.agency, a.kind, a.decision, a.received_at"
    " FROM agency_answers a WHERE a.message_id = ANY($1::bigint[]) ORDER BY a.received_at, a.id")
_STATES = ("SELECT message_id, agency, state, final, decided_at, overdue_at FROM agency_states"
           " WHERE message_id = ANY($1::bigint[]) ORDER BY message_id, agency")
_RESENDS = "SELECT id FROM interchanges WHERE duplicate_of = $1 ORDER BY id"


async def declaration_timeline(connection: Connection, message_id: int) -> Timeline | None:
    """One declaration's story: its own events and its submission's (received, accepted, the
    CONTRL, AS2); None when there is no such message."""
    async with bounded(connection, "reading a declaration's timeline"):
        row = await connection.fetchrow(
            f"SELECT {DECLARATION_COLUMNS} FROM messages m JOIN interchanges i"
            " ON i.id = m.interchange_id WHERE m.id = $1", _id(message_id))
        if row is None:
            return None
        return await _timeline(connection, row["interchange_id"], [declaration_hit(row)],
                               message_id)


async def interchange_timeline(connection: Connection, interchange_id: int) -> Timeline | None:
    """One submission's story, every message of it; None when there is no such submission."""
    async with bounded(connection, "reading an interchange's timeline"):
        rows = await connection.fetch(
            f"SELECT {DECLARATION_COLUMNS} FROM messages m JOIN interchanges i"
            " ON i.id = m.interchange_id WHERE m.interchange_id = $1 ORDER BY m.position",
            _id(interchange_id))
        return await _timeline(connection, interchange_id,
                               [declaration_hit(r) for r in rows], None)


def _id(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise QueryRefused(f"{value!r} is not a stored id")
    return value


async def _timeline(connection: Connection, interchange_id: int,
                    declarations: list[DeclarationHit], message_id: int | None
                    ) -> Timeline | None:
    head = await connection.fetchrow(
        f"SELECT {INTERCHANGE_COLUMNS} FROM interchanges i WHERE i.id = $1", interchange_id)
    if head is None:
        return None
    messages = [d.id for d in declarations]
    events = await connection.fetch(_EVENTS, interchange_id, message_id)
    outbox = await connection.fetch(_DELIVERIES, interchange_id, message_id)
    answers = await connection.fetch(_ANSWERS, messages)
    states = await connection.fetch(_STATES, messages)
    resends = await connection.fetch(_RESENDS, interchange_id)
    return Timeline(
        interchange=interchange_hit(head), declarations=tuple(declarations),
        entries=tuple(_entry(interchange_id, r) for r in events),
        deliveries=tuple(_delivery(r) for r in outbox),
        answers=tuple(AgencyAnswer(**dict(r)) for r in answers),
        states=tuple(AgencyState(**dict(r)) for r in states),
        resends=tuple(int(r["id"]) for r in resends))


def _delivery(row: Any) -> Delivery:
    if row["dispatched_at"] is not None:
        state = "sent"
    elif row["parked_at"] is not None:
        state = "parked"
    else:
        state = "retrying" if row["attempts"] else "waiting"
    return Delivery(row["id"], row["message_id"], row["channel"], row["destination"],
                    row["dispatch_key"], state, row["created_at"], row["dispatched_at"],
                    row["attempts"], row["last_error"], row["size"])


# --- what each event points at, and its signature -----------------------------------------


def _entry(interchange_id: int, row: Any) -> Entry:
    detail = json.loads(row["detail"])
    if not isinstance(detail, dict):  # every writer stores an object; show anything else
        detail = {"value": detail}
    kind = row["kind"]
    return Entry(row["at"], kind, row["message_id"], detail,
                 _body_of(interchange_id, kind, row, detail), signature_of(kind, detail))


def _body_of(interchange_id: int, kind: str, row: Any, detail: dict[str, Any]
             ) -> BodyRef | None:
    if row["outbox_id"] is not None:
        return BodyRef("outbox", row["outbox_id"])
    if row["answer_id"] is not None:
        return BodyRef("answer", row["answer_id"])
    if kind == "received":
        return BodyRef("raw", interchange_id)
    if kind == "message_routed" and row["message_id"] is not None:
        return BodyRef("canonical", row["message_id"])
    if kind == "as2_received" and isinstance(detail.get("message_id"), str) \
            and detail.get("mdn"):
        return BodyRef("mdn", interchange_id, detail["message_id"])
    return None


def _as2_received(detail: dict[str, Any]) -> Signature:
    if not detail.get("signed"):
        return Signature("unsigned", "the AS2 message was not signed")
    return Signature("verified", f"signed by {detail.get('signer')} ({detail.get('digest')}),"
                                 " verified on receipt")


def _as2_mdn(detail: dict[str, Any]) -> Signature:
    if not detail.get("confirmed"):
        return Signature("failed", str(detail.get("problem") or "the MDN does not confirm"))
    if detail.get("signed"):
        return Signature("verified", "signed MDN, verified; its MIC matches ours")
    return Signature("unsigned", "the MDN confirms but is not signed")


def _ours(detail: dict[str, Any]) -> Signature | None:
    if "signature_sha256" not in detail:
        return None
    return Signature("signed", f"signed by the gateway: answer sha256 {detail['answer_sha256']},"
                               f" signature sha256 {detail['signature_sha256']}")


_SIGNATURES: dict[str, Callable[[dict[str, Any]], Signature | None]] = {
    "as2_received": _as2_received,
    "as2_mdn": _as2_mdn,
    "acknowledged": _ours,
}


def signature_of(kind: str, detail: dict[str, Any]) -> Signature | None:
    """The signature state an event records, where it records one."""
    reader = _SIGNATURES.get(kind)
    return None if reader is None else reader(detail)


# --- bodies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Body:
    ref: BodyRef
    data: bytes
    #: The whole body's size in bytes (``data`` holds at most the cap of it).
    size: int

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.size


#: SELECT (data cut to $2 bytes, whole size) of each kind of body, by $1 (and $3).
_BODIES: dict[str, str] = {
    "raw": "SELECT substring(raw FROM 1 FOR $2) AS data, octet_length(raw) AS size"
           " FROM interchanges WHERE id = $1",
    "canonical": "SELECT substring(t FROM 1 FOR $2) AS data, octet_length(t) AS size FROM"
                 " (SELECT convert_to(canonical::text, 'UTF8') AS t FROM messages"
                 "  WHERE id = $1 AND canonical IS NOT NULL) b",
    "outbox": "SELECT substring(body FROM 1 FOR $2) AS data, octet_length(body) AS size"
              " FROM outbox WHERE id = $1",
    "answer": "SELECT substring(t FROM 1 FOR $2) AS data, octet_length(t) AS size FROM"
              " (SELECT convert_to(body::text, 'UTF8') AS t FROM agency_answers"
              "  WHERE id = $1) b",
    "acknowledgement": "SELECT substring(body FROM 1 FOR $2) AS data,"
                       " octet_length(body) AS size FROM acknowledgements"
                       " WHERE interchange_id = $1",
    "mdn": "SELECT substring(r.mdn_body FROM 1 FOR $2) AS data,"
           " octet_length(r.mdn_body) AS size FROM as2_received r JOIN interchanges i"
           " ON r.partner_id = i.partner_id WHERE i.id = $1 AND r.message_id = $3"
           " AND r.mdn_body IS NOT NULL",
}


async def body(connection: Connection, ref: BodyRef, cap: int = DEFAULT_BODY_CAP
               ) -> Body | None:
    """The body ``ref`` names, at most ``cap`` bytes of it; None when there is none."""
    sql = _BODIES.get(ref.kind)
    if sql is None:
        raise QueryRefused(f"no kind of body is called {ref.kind!r}")
    if not isinstance(cap, int) or not 0 < cap <= MAX_BODY_CAP:
        raise QueryRefused(f"a body is shown 1 to {MAX_BODY_CAP} bytes at a time")
    args: list[Any] = [_id(ref.id), cap] + ([ref.key[:998]] if ref.kind == "mdn" else [])
    async with bounded(connection, f"reading a stored body ({ref.kind})"):
        row = await connection.fetchrow(sql, *args)
    if row is None:
        return None
    return Body(ref, bytes(row["data"]), int(row["size"]))
