"""Payment instructions to the bank agency and where each stands (docs/payments.md).  Like the
rest of the store, each function takes a connection and leaves the transaction to the caller
(the answer desk's, one per answer)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from gateway.store.storable import storable_document, storable_optional, storable_text

Connection = Any


async def instruct(connection: Connection, *, instruction_id: str, message_id: int,
                   answer_row: int, assessed_by: str, bank: str,
                   amounts: list[dict[str, Any]]) -> bool:
    """Record an instruction; False when this answer was instructed before."""
    done: str | None = await connection.fetchval(
        "INSERT INTO payment_instructions (id, message_id, answer_row, assessed_by, bank,"
        " amounts) VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING RETURNING id",
        storable_text(instruction_id), message_id, answer_row, storable_text(assessed_by),
        storable_text(bank), storable_document(amounts))
    if done is None:
        return False
    # The bank is awaited on the declaration (answers.mark_overdue applies its deadline).
    await connection.execute(
        "INSERT INTO agency_states (message_id, agency) VALUES ($1, $2)"
        " ON CONFLICT (message_id, agency) DO UPDATE SET state = 'awaiting', final = false,"
        " overdue_at = NULL", message_id, storable_text(bank))
    return True


@dataclass(frozen=True, slots=True)
class Instruction:
    id: str
    message_id: int
    bank: str
    amounts: list[dict[str, Any]]
    state: str


async def instruction(connection: Connection, instruction_id: str) -> Instruction | None:
    """The instruction, locked until the end of the transaction."""
    row = await connection.fetchrow(
        "SELECT id, message_id, bank, amounts, state FROM payment_instructions"
        " WHERE id = $1 FOR UPDATE", storable_text(instruction_id))
    if row is None:
        return None
    return Instruction(row["id"], row["message_id"], row["bank"], json.loads(row["amounts"]),
                       row["state"])


async def confirm(connection: Connection, instruction_id: str, state: str,
                  bank_reference: str | None, paid_at: dt.datetime | None) -> None:
    await connection.execute(
        "UPDATE payment_instructions SET state = $2, bank_reference = $3, paid_at = $4,"
        " confirmed_at = now() WHERE id = $1", storable_text(instruction_id),
        storable_text(state), storable_optional(bank_reference), paid_at)


async def unpaid(connection: Connection, message_id: int) -> int:
    """How many instructions about the declaration are not paid yet."""
    count: int = await connection.fetchval(
        "SELECT count(*) FROM payment_instructions WHERE message_id = $1 AND state <> 'paid'",
        message_id)
    return count


@dataclass(frozen=True, slots=True)
class Withheld:
    row_id: int
    agency: str
    body: dict[str, Any]


async def withheld_releases(connection: Connection, message_id: int) -> list[Withheld]:
    """The agencies' releases of the declaration not yet queued for the trader (withheld while
    its duties were unpaid), in the order taken; only each agency's last answer: a release the
    agency superseded since (cancelled, rejected) is never sent."""
    rows = await connection.fetch(
        "SELECT a.id, a.agency, a.body FROM agency_answers a WHERE a.message_id = $1"
        " AND a.kind = 'CustomsResponse' AND a.decision = 'released'"
        " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dispatch_key = 'answer-' || a.id)"
        " AND NOT EXISTS (SELECT 1 FROM agency_answers b WHERE b.message_id = a.message_id"
        " AND b.agency = a.agency AND b.id > a.id)"
        " ORDER BY a.id", message_id)
    return [Withheld(r["id"], r["agency"], json.loads(r["body"])) for r in rows]
