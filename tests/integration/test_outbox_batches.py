"""Outbox rows added several at once, in one statement (issue 10, Speed): the same rows as
``outbox.add`` and ``answers.record_signed`` write one by one, with ids that ascend in the
order given (a destination's rows go out in id order)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gateway.store import answers, outbox
from gateway.store.outbox import NewRow, SignedRecord
from tests.support.harness import add_submission, create_database, database_url, drop_database

SIGNED_AT = dt.datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.fixture
async def connection() -> AsyncIterator[Any]:
    name = await create_database()
    connection = await asyncpg.connect(database_url(name))
    try:
        yield connection
    finally:
        await connection.close()
        await drop_database(name)


def row(submission: int, n: int, key: str) -> NewRow:
    return NewRow(interchange_id=submission, message_id=None, channel="mailbox",
                  destination=f"van-{n % 3}", dispatch_key=f"{key}-{n}",
                  body=bytes([n % 256]) * (n % 7) + b"UNA:+.? '\x00\xff",
                  properties={"file_name": f"DEC-{n}.cusres.edi", "kind": "CUSRES",
                              "n": n, "text": "quarantäne \x00 \ud800", "none": None})


def record(n: int) -> SignedRecord:
    return SignedRecord(kind="CUSRES", file_name=f"DEC-{n}\x00.cusres.edi",
                        answer_sha256=f"{n:064x}", signature_sha256=f"{n + 1:064x}",
                        certificate_sha256="c" * 64, signed_at=SIGNED_AT)


ROW_COLUMNS = ("interchange_id, message_id, channel, destination, right(dispatch_key, -4) AS k,"
               " body, properties, attempts, row_failures, parked_at, dispatched_at")
RECORD_COLUMNS = ("s.interchange_id, s.message_id, right(o.dispatch_key, -4) AS k, s.kind,"
                  " s.file_name, s.answer_sha256, s.signature_sha256, s.certificate_sha256,"
                  " s.signed_at")


async def rows_of(connection: Any, prefix: str) -> list[dict[str, Any]]:
    found = await connection.fetch(f"SELECT {ROW_COLUMNS} FROM outbox"
                                   " WHERE dispatch_key LIKE $1 ORDER BY id", f"{prefix}-%")
    return [dict(r) for r in found]


async def records_of(connection: Any, prefix: str) -> list[dict[str, Any]]:
    found = await connection.fetch(
        f"SELECT {RECORD_COLUMNS} FROM signed_answers s JOIN outbox o ON o.id = s.outbox_id"
        " WHERE o.dispatch_key LIKE $1 ORDER BY s.id", f"{prefix}-%")
    return [dict(r) for r in found]


async def test_rows_added_at_once_are_those_added_one_by_one_in_the_order_given(
        connection: Any) -> None:
    submission = await add_submission(connection)
    for n in range(40):
        one = row(submission, n, "one")
        await outbox.add(connection, interchange_id=one.interchange_id,
                         message_id=one.message_id, channel=one.channel,
                         destination=one.destination, dispatch_key=one.dispatch_key,
                         body=one.body, properties=one.properties)
    ids = await outbox.add_many(connection, [row(submission, n, "all") for n in range(40)])

    assert await rows_of(connection, "all") == await rows_of(connection, "one")
    keys = await connection.fetch("SELECT id, dispatch_key FROM outbox WHERE id = ANY($1)", ids)
    assert {r["id"]: r["dispatch_key"] for r in keys} == {
        i: f"all-{n}" for n, i in enumerate(ids)}
    assert ids == sorted(ids)
    assert await outbox.add_many(connection, []) == []


async def test_signed_rows_and_their_records_are_those_written_one_by_one(
        connection: Any) -> None:
    submission = await add_submission(connection)
    for n in range(30):
        one = row(submission, n, "one")
        outbox_id = await outbox.add(
            connection, interchange_id=one.interchange_id, message_id=one.message_id,
            channel=one.channel, destination=one.destination, dispatch_key=one.dispatch_key,
            body=one.body, properties=one.properties)
        await answers.record_signed(connection, interchange_id=submission, message_id=None,
                                    outbox_id=outbox_id, record=record(n))
    ids = await outbox.add_signed(connection, [(row(submission, n, "all"), record(n))
                                               for n in range(30)])

    assert await rows_of(connection, "all") == await rows_of(connection, "one")
    assert await records_of(connection, "all") == await records_of(connection, "one")
    assert ids == sorted(ids) and len(ids) == 30
    named = await connection.fetch("SELECT outbox_id, file_name FROM signed_answers"
                                   " WHERE outbox_id = ANY($1)", ids)
    assert {r["outbox_id"]: r["file_name"] for r in named} == {
        i: f"DEC-{n}\\x00.cusres.edi" for n, i in enumerate(ids)}
    assert await outbox.add_signed(connection, []) == []


async def test_a_batch_with_a_key_used_before_adds_nothing(connection: Any) -> None:
    """One statement: a row refused (its dispatch key is taken) refuses the batch, records
    and all, as a transaction of single inserts would."""
    submission = await add_submission(connection)
    await outbox.add_many(connection, [row(submission, 1, "taken")])
    with pytest.raises(asyncpg.UniqueViolationError):
        await outbox.add_signed(connection, [(row(submission, n, "taken"), record(n))
                                             for n in range(3)])
    assert len(await rows_of(connection, "taken")) == 1
    assert await records_of(connection, "taken") == []
