"""Two deciders drawing on one licence at once never overdraw it (issue 15 item 1): six
transactions judge a declaration of 40 KGM against a licence of 100 KGM at the same moment,
each holding its transaction open a while after judging (what a batch of 32 decisions does),
and exactly two pass.  Without the row lock (store.licences.lock: FOR UPDATE, in number
order) every one of them reads 100 left and all six pass."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

from gateway.app import licences as licence_gate
from gateway.model.canonical import CustomsDeclaration
from gateway.model.canonical.licence import Licence
from gateway.model.edifact import MessageIdentifier
from gateway.model.outcome import MessageOutcome
from gateway.store import interchanges, licences
from gateway.store.deferred import Deferred
from tests.support.harness import add_submission

LICENCE = Licence(number="LIC-RACE", holder="IMP001", issuing_agency="trade",
                  licence_kind="import", commodity_codes=("8438",), quantity=Decimal(100),
                  unit="KGM", valid_from=dt.date(2026, 1, 1), valid_until=dt.date(2026, 12, 31))


def declaration(number: str, kilograms: int) -> MessageOutcome:
    canonical = CustomsDeclaration.model_validate({
        "source": {"syntax": "EDIFACT", "message_type": "CUSDEC", "release": "D96B",
                   "sender": "VANA", "recipient": "SWGATEWAY", "interchange_reference": number,
                   "message_reference": "1"},
        "declaration_number": number, "document_code": "929", "function": "original",
        "parties": [{"role": "IM", "id": "IMP001"}],
        "goods_items": [{"commodity_code": "843850", "documents": [
            {"code": "911", "number": "LIC-RACE"}],
            "measurements": [{"purpose": "WT", "value": kilograms, "unit": "KGM"}]}]})
    return MessageOutcome(position=1, reference="1",
                          identifier=MessageIdentifier("CUSDEC", "D", "96B", "UN"),
                          unh_position=1, canonical=canonical, agencies=("customs",))


async def decide(pool: Any, number: str, start: asyncio.Event) -> bool:
    """One decision in its own transaction; whether its licence check passed."""
    await start.wait()
    async with pool.acquire() as connection, connection.transaction():
        message, judged = await licence_gate.judge(connection, "van-a", declaration(number, 40),
                                                   dt.date(2026, 6, 1))
        assert judged is not None
        verdict = judged.verdict
        await connection.execute("SELECT pg_sleep(0.2)")  # the rest of a batch's decisions
        submission = await add_submission(connection)
        message_id = await interchanges.insert_message(
            connection, submission, position=1, message_ref="1", message_type="CUSDEC",
            release="D96B", status="routed" if verdict.passed else "held", canonical=None,
            document_ref=number, agencies=message.agencies, copies=(), rules=(),
            routing_version=None, findings=[])
        writes = Deferred()
        await licence_gate.record(connection, writes, submission, message, message_id, judged)
        await writes.flush(connection)
        return verdict.passed


async def test_six_declarations_of_40_on_a_licence_of_100_exactly_two_pass(pool: Any) -> None:
    async with pool.acquire() as connection:
        await licences.put(connection, LICENCE)
    start = asyncio.Event()
    deciding = [asyncio.create_task(decide(pool, f"DEC-{n}", start)) for n in range(6)]
    await asyncio.sleep(0.1)
    start.set()
    passed = await asyncio.gather(*deciding)
    assert sorted(passed) == [False] * 4 + [True] * 2
    async with pool.acquire() as connection:
        left = await licences.balance(connection, "LIC-RACE")
        drawn = await connection.fetch("SELECT quantity FROM licence_draws")
    assert left is not None and (left.reserved, left.drawn) == (Decimal(80), Decimal(0))
    assert [r["quantity"] for r in drawn] == [Decimal(40)] * 2
