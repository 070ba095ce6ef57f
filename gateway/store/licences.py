"""The licence registry (migration 0019): the latest amendment of each licence, what
declarations reserved and drew on it, and the licence messages refused.

Quantities change only under the licence row's lock, and every caller locks the licences it
touches in number order (``lock``), so two deciders never wait on each other in a circle and
two declarations never both take the last of a licence.  Like the rest of the store, every
function takes a connection and leaves the transaction to the caller."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.model.canonical.licence import Licence
from gateway.pipeline.licence_check import Standing
from gateway.store.storable import storable_document, storable_optional, storable_text

Connection = Any
#: What is kept of a refused licence message's body.
KEPT_BODY_BYTES = 64 * 1024


async def lock(connection: Connection, numbers: Iterable[str]) -> dict[str, Standing]:
    """Each of the licences ``numbers`` that exists, locked FOR UPDATE in number order (the
    rows are locked as the sorted scan returns them), with what is left on it."""
    wanted = sorted({storable_text(n) for n in numbers})
    if not wanted:
        return {}
    rows = await connection.fetch(
        "SELECT number, body, quantity - reserved - drawn AS remaining FROM licences"
        " WHERE number = ANY($1::text[]) ORDER BY number COLLATE \"C\" FOR UPDATE",
        wanted)
    return {r["number"]: Standing(Licence.model_validate_json(r["body"]), r["remaining"])
            for r in rows}


async def reserve(connection: Connection, message_id: int,
                  draws: Mapping[str, Decimal]) -> None:
    """The declaration ``message_id`` reserves ``draws`` (licences locked by the caller)."""
    if not draws:
        return
    numbers, quantities = list(draws), list(draws.values())
    await connection.execute(
        "INSERT INTO licence_draws (message_id, licence_number, quantity, state)"
        " SELECT $1, n, q, 'reserved' FROM unnest($2::text[], $3::numeric[]) AS d(n, q)",
        message_id, numbers, quantities)
    await connection.execute(
        "UPDATE licences l SET reserved = l.reserved + d.q"
        " FROM unnest($1::text[], $2::numeric[]) AS d(n, q) WHERE l.number = d.n",
        numbers, quantities)


@dataclass(frozen=True, slots=True)
class Settled:
    licence_number: str
    quantity: Decimal
    before: str
    after: str


async def settle(connection: Connection, message_ids: Iterable[int], to: str) -> list[Settled]:
    """The draws of ``message_ids`` become ``to``: "drawn" (reserved -> drawn: the declaration
    was released) or "restored" (reserved or drawn -> given back: cancelled or rejected).
    Draws already in that state, or restored, are left alone (an answer taken twice settles
    once).  Locks the licences in number order first."""
    ids = sorted(set(message_ids))
    if not ids:
        return []
    allowed = ("reserved",) if to == "drawn" else ("reserved", "drawn")
    numbers = await connection.fetch(
        "SELECT DISTINCT licence_number FROM licence_draws"
        " WHERE message_id = ANY($1::bigint[]) AND state = ANY($2::text[])", ids, list(allowed))
    if not numbers:  # the usual case: a declaration citing no licence, one statement
        return []
    await lock(connection, [r["licence_number"] for r in numbers])
    rows = await connection.fetch(
        "UPDATE licence_draws d SET state = $3, settled_at = now()"
        " FROM (SELECT message_id, licence_number, state FROM licence_draws"
        "       WHERE message_id = ANY($1::bigint[]) AND state = ANY($2::text[]) FOR UPDATE) old"
        " WHERE d.message_id = old.message_id AND d.licence_number = old.licence_number"
        " RETURNING d.licence_number, d.quantity, old.state AS before",
        ids, list(allowed), to)
    settled = [Settled(r["licence_number"], r["quantity"], r["before"], to) for r in rows]
    for item in settled:
        await connection.execute(
            "UPDATE licences SET reserved = reserved - $2 * ($3 = 'reserved')::int,"
            " drawn = drawn - $2 * ($3 = 'drawn')::int + $2 * ($4 = 'drawn')::int"
            " WHERE number = $1", item.licence_number, item.quantity, item.before, item.after)
    return settled


async def reserved_by_original(connection: Connection, partner_id: str, document_ref: str,
                               before: int | None) -> list[int]:
    """The messages of ``partner_id`` for declaration ``document_ref`` before message id
    ``before`` (None: any, for a message not stored yet) whose draws are not restored: what a
    cancellation or a replacement gives back."""
    rows = await connection.fetch(
        "SELECT DISTINCT d.message_id FROM licence_draws d"
        " JOIN messages m ON m.id = d.message_id"
        " JOIN interchanges i ON i.id = m.interchange_id"
        " WHERE m.document_ref = $1 AND i.partner_id = $2"
        " AND ($3::bigint IS NULL OR d.message_id < $3)"
        " AND d.state <> 'restored'", storable_text(document_ref), storable_text(partner_id),
        before)
    return [r["message_id"] for r in rows]


async def outstanding(connection: Connection, message_ids: Iterable[int]) -> dict[str, Decimal]:
    """What ``message_ids`` hold (reserved or drawn, not restored), per licence number."""
    ids = sorted(set(message_ids))
    if not ids:
        return {}
    rows = await connection.fetch(
        "SELECT licence_number, sum(quantity) AS held FROM licence_draws"
        " WHERE message_id = ANY($1::bigint[]) AND state <> 'restored'"
        " GROUP BY licence_number", ids)
    return {r["licence_number"]: r["held"] for r in rows}


async def drawn_by(connection: Connection, declarations: list[tuple[str, str]]) -> set[str]:
    """The licences the declarations (partner, declaration number) reserved or drew and have
    not given back: what their cancellations will lock."""
    if not declarations:
        return set()
    rows = await connection.fetch(
        "SELECT DISTINCT d.licence_number FROM licence_draws d"
        " JOIN messages m ON m.id = d.message_id"
        " JOIN interchanges i ON i.id = m.interchange_id"
        " JOIN unnest($1::text[], $2::text[]) AS c(partner, ref)"
        "   ON m.document_ref = c.ref AND i.partner_id = c.partner"
        " WHERE d.state <> 'restored'", [storable_text(p) for p, _ in declarations],
        [storable_text(r) for _, r in declarations])
    return {r["licence_number"] for r in rows}


@dataclass(frozen=True, slots=True)
class Held:
    """The registry's current version of a licence."""

    issuing_agency: str
    amendment: int
    body: str


async def current(connection: Connection, number: str) -> Held | None:
    """The licence held under ``number``, locked (an amendment waits for a check in
    progress, and two amendments of one licence are applied one after the other)."""
    row = await connection.fetchrow(
        "SELECT issuing_agency, amendment, body::text AS body FROM licences WHERE number = $1"
        " FOR UPDATE", storable_text(number))
    return None if row is None else Held(row["issuing_agency"], row["amendment"], row["body"])


async def put(connection: Connection, licence: Licence) -> None:
    """Insert the licence, or replace the version held (the caller checked it is newer);
    reserved and drawn quantities stay."""
    await connection.execute(
        "INSERT INTO licences (number, issuing_agency, holder, licence_kind, commodity_codes,"
        " quantity, unit, valid_from, valid_until, status, amendment, body)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)"
        " ON CONFLICT (number) DO UPDATE SET issuing_agency = $2, holder = $3,"
        " licence_kind = $4, commodity_codes = $5, quantity = $6, unit = $7, valid_from = $8,"
        " valid_until = $9, status = $10, amendment = $11, body = $12::jsonb,"
        " updated_at = now()",
        storable_text(licence.number), storable_text(licence.issuing_agency),
        storable_text(licence.holder), licence.licence_kind,
        [storable_text(c) for c in licence.commodity_codes], licence.quantity,
        storable_text(licence.unit), licence.valid_from, licence.valid_until, licence.status,
        licence.amendment, storable_document(licence.model_dump(mode="json")))


async def refuse(connection: Connection, *, broker_user: str | None, message_id: str | None,
                 reason: str, body: bytes) -> int:
    row_id: int = await connection.fetchval(
        "INSERT INTO refused_licences (broker_user, message_id, reason, body)"
        " VALUES ($1, $2, $3, $4) RETURNING id", storable_optional(broker_user),
        storable_optional(message_id), storable_text(reason), body[:KEPT_BODY_BYTES])
    return row_id


@dataclass(frozen=True, slots=True)
class Balance:
    number: str
    quantity: Decimal
    reserved: Decimal
    drawn: Decimal
    status: str
    amendment: int
    updated_at: dt.datetime


async def balance(connection: Connection, number: str) -> Balance | None:
    row = await connection.fetchrow(
        "SELECT number, quantity, reserved, drawn, status, amendment, updated_at"
        " FROM licences WHERE number = $1", storable_text(number))
    return None if row is None else Balance(*row.values())
