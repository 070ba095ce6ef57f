"""The relay against a real PostgreSQL, with scripted dispatchers: one failing row or destination
never holds back the others, a row failing on its own is parked after a bounded number of
attempts, and rows to one destination go out in id order, with several relays at once too."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import asyncpg
import pytest

from gateway.app import relay as relay_module
from gateway.app.relay import MAX_ROW_FAILURES, Relay
from gateway.errors import TransportError
from gateway.store import outbox
from gateway.store.outbox import Failure, OutboxRow, Scope
from tests.support.harness import (
    add_delivery,
    add_submission,
)


class Scripted:
    """Sends every row, except that ``script[key]`` gives, one per try, what to do instead:
    an exception to raise or a Failure to return."""

    done_event = "delivered"

    def __init__(self, script: dict[str, list[BaseException | Failure]] | None = None,
                 yields: int = 0, seed: int = 0) -> None:
        self.script = script or {}
        self.sent: list[tuple[str, int]] = []
        self.tries: list[str] = []
        self._yields = yields
        self._random = random.Random(seed)

    async def dispatch(self, row: OutboxRow) -> Failure | None:
        self.tries.append(row.dispatch_key)
        for _ in range(self._random.randint(0, self._yields)):  # let other relays run
            await asyncio.sleep(0)
        planned = self.script.get(row.dispatch_key)
        if planned:
            outcome = planned.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        self.sent.append((row.destination, row.id))
        return None

    def keys(self) -> list[str]:
        return [key for key in self.tries if key not in self.script or self.script[key]]


async def rows(pool: Any, spec: list[tuple[str, str]]) -> dict[str, int]:
    """Outbox rows (agency, key) in this order; returns key -> row id."""
    async with pool.acquire() as connection:
        submission = await add_submission(connection)
        for agency, key in spec:
            await add_delivery(connection, submission, agency, key)
        found = await connection.fetch("SELECT dispatch_key, id FROM outbox")
    return {r["dispatch_key"]: r["id"] for r in found}


async def state(pool: Any, key: str) -> asyncpg.Record:
    async with pool.acquire() as connection:
        row: asyncpg.Record = await connection.fetchrow(
            "SELECT * FROM outbox WHERE dispatch_key = $1", key)
    return row


async def make_due(pool: Any) -> None:
    """The backoff has passed (instead of waiting for it)."""
    async with pool.acquire() as connection:
        await connection.execute("UPDATE outbox SET next_attempt_at = now()"
                                 " WHERE dispatched_at IS NULL AND parked_at IS NULL")


def sent_keys(dispatcher: Scripted, ids: dict[str, int]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[row_id] for _, row_id in dispatcher.sent]


async def test_a_row_failing_on_its_own_does_not_stop_the_others(pool: Any) -> None:
    ids = await rows(pool, [("customs", "c1"), ("port", "p1"), ("quarantine", "q1")])
    dispatcher = Scripted({"c1": [TransportError("cannot write: a bug of ours")]})
    relay = Relay(pool, "amqp", dispatcher, asyncio.Event())
    await relay.dispatch_batch()
    assert sent_keys(dispatcher, ids) == ["p1", "q1"]
    failed = await state(pool, "c1")
    assert failed["dispatched_at"] is None and failed["attempts"] == 1
    assert failed["row_failures"] == 1 and "a bug of ours" in failed["last_error"]


async def test_a_partner_value_in_the_error_never_makes_the_batch_unwritable(
        pool: Any) -> None:
    """The error text can quote partner data (a file name with NUL): PostgreSQL refuses NUL in
    text, and the refused UPDATE would roll the whole batch back, every time."""
    ids = await rows(pool, [("van-a", "a1"), ("van-b", "b1")])
    dispatcher = Scripted({"a1": [TransportError("cannot write 'x\x00y.edi'")]})
    await Relay(pool, "amqp", dispatcher, asyncio.Event()).dispatch_batch()
    assert sent_keys(dispatcher, ids) == ["b1"]
    assert "x\\x00y.edi" in (await state(pool, "a1"))["last_error"]


async def test_later_rows_of_a_failing_destination_wait_and_keep_their_order(
        pool: Any) -> None:
    ids = await rows(pool, [("customs", "c1"), ("customs", "c2"), ("port", "p1"),
                            ("customs", "c3")])
    returned = Failure(Scope.DESTINATION, "no queue took it")
    dispatcher = Scripted({"c1": [returned, returned]})
    relay = Relay(pool, "amqp", dispatcher, asyncio.Event())
    await relay.dispatch_batch()
    assert sent_keys(dispatcher, ids) == ["p1"]  # the other destination went on
    waiting = await state(pool, "c2")
    assert waiting["dispatched_at"] is None and waiting["attempts"] == 0
    assert f"waiting behind row {ids['c1']}" in waiting["last_error"]
    await relay.dispatch_batch()  # c1 waits for its retry: c2 and c3 may not overtake it
    assert sent_keys(dispatcher, ids) == ["p1"]
    await make_due(pool)
    await relay.dispatch_batch()  # c1 fails again: a destination failure never parks it
    assert (await state(pool, "c1"))["row_failures"] == 0
    await make_due(pool)
    await relay.dispatch_batch()
    assert sent_keys(dispatcher, ids) == ["p1", "c1", "c2", "c3"]


async def test_a_channel_failure_stops_the_batch_pauses_and_never_parks(
        pool: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(relay_module, "monotonic", lambda: clock[0])
    ids = await rows(pool, [("customs", "c1"), ("port", "p1")])
    down = Failure(Scope.CHANNEL, "RabbitMQ unreachable")
    dispatcher = Scripted({"c1": [down] * (MAX_ROW_FAILURES + 2)})
    relay = Relay(pool, "amqp", dispatcher, asyncio.Event())
    assert await relay.dispatch_batch() == 1
    assert dispatcher.tries == ["c1"]  # p1 was not tried: the broker is down for it too
    assert (await state(pool, "p1"))["last_error"] == "not tried: RabbitMQ unreachable"
    assert await relay.dispatch_batch() == 0  # paused: not even the store is asked
    assert dispatcher.tries == ["c1"]
    for _ in range(MAX_ROW_FAILURES + 1):
        clock[0] += relay_module.MAX_PAUSE_SECONDS
        await relay.dispatch_batch()
    c1 = await state(pool, "c1")
    assert c1["parked_at"] is None and c1["row_failures"] == 0
    assert c1["attempts"] == MAX_ROW_FAILURES + 2
    clock[0] += relay_module.MAX_PAUSE_SECONDS
    await relay.dispatch_batch()  # the broker is back
    assert sent_keys(dispatcher, ids) == ["c1", "p1"]


async def test_a_row_failing_on_its_own_is_parked_with_an_alarm(
        pool: Any, caplog: pytest.LogCaptureFixture) -> None:
    ids = await rows(pool, [("customs", "c1"), ("customs", "c2")])
    dispatcher = Scripted({"c1": [KeyError("file_name")] * 100})
    relay = Relay(pool, "amqp", dispatcher, asyncio.Event())
    with caplog.at_level(logging.ERROR, logger="gateway.relay"):
        for _ in range(MAX_ROW_FAILURES):
            await relay.dispatch_batch()
            await make_due(pool)
    parked = await state(pool, "c1")
    assert parked["parked_at"] is not None and parked["dispatched_at"] is None
    assert parked["row_failures"] == MAX_ROW_FAILURES
    assert dispatcher.tries.count("c1") == MAX_ROW_FAILURES
    assert any(r.getMessage() == "dispatch_parked" for r in caplog.records)
    async with pool.acquire() as connection:
        kinds = [r["kind"] for r in await connection.fetch(
            "SELECT kind, detail FROM events ORDER BY id")]
        detail = await connection.fetchval(
            "SELECT detail::text FROM events WHERE kind = 'dispatch_parked'")
    assert kinds.count("dispatch_failed") == 1 and kinds.count("dispatch_parked") == 1
    assert "gateway replay" in detail and "customs" in detail
    await relay.dispatch_batch()  # parked: it holds back its destination no longer
    assert sent_keys(dispatcher, ids) == ["c2"]
    assert dispatcher.tries.count("c1") == MAX_ROW_FAILURES
    async with pool.acquire() as connection:
        (back,) = await outbox.requeue_parked(connection, None)
    assert back.dispatch_key == "c1"
    dispatcher.script["c1"] = []
    await relay.dispatch_batch()
    assert sent_keys(dispatcher, ids) == ["c2", "c1"]


async def test_a_row_that_can_never_go_is_parked_at_once(pool: Any) -> None:
    ids = await rows(pool, [("customs", "big"), ("customs", "c2")])
    dispatcher = Scripted({"big": [Failure(Scope.UNDELIVERABLE, "too large")]})
    await Relay(pool, "amqp", dispatcher, asyncio.Event()).dispatch_batch()
    assert (await state(pool, "big"))["parked_at"] is not None
    assert sent_keys(dispatcher, ids) == ["c2"]


@pytest.mark.parametrize("seed", range(6))
async def test_order_per_destination_holds_with_several_relays(
        pool: Any, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(relay_module, "BATCH", 3)
    chooser = random.Random(seed)
    agencies = ("customs", "port", "quarantine")
    spec = [(chooser.choice(agencies), f"m{n}") for n in range(30)]
    ids = await rows(pool, spec)
    flaky = Failure(Scope.DESTINATION, "queue full")
    script: dict[str, list[BaseException | Failure]] = {
        key: [flaky if chooser.random() < 0.5 else TransportError("once")]
        for _, key in spec if chooser.random() < 0.3}
    dispatcher = Scripted(script, yields=5, seed=seed)
    relays = [Relay(pool, "amqp", dispatcher, asyncio.Event()) for _ in range(3)]
    for _ in range(40):
        await asyncio.gather(*(r.dispatch_batch() for r in relays))
        await make_due(pool)
        if len(dispatcher.sent) == len(spec):
            break
    assert sorted(row_id for _, row_id in dispatcher.sent) == sorted(ids.values())
    for agency in agencies:
        published = [row_id for destination, row_id in dispatcher.sent if destination == agency]
        assert published == sorted(published), agency


async def test_taking_rows_does_not_read_the_history_of_dispatched_rows(pool: Any) -> None:
    """The claim used to scan the primary key from the first row ever written, filtering out
    every dispatched row: a cost growing with the outbox's history, on every poll."""
    async with pool.acquire() as connection:
        submission = await add_submission(connection)
        await connection.execute(
            "INSERT INTO outbox (interchange_id, channel, destination, dispatch_key, body,"
            " dispatched_at) SELECT $1, 'amqp', 'customs', 'old' || n, '', now()"
            " FROM generate_series(1, 20000) n", submission)
        await connection.execute(
            "INSERT INTO outbox (interchange_id, channel, destination, dispatch_key, body)"
            " SELECT $1, 'amqp', (ARRAY['customs', 'port'])[1 + n % 2], 'new' || n, ''"
            " FROM generate_series(1, 2000) n", submission)
        await connection.execute("ANALYZE outbox")
        plan = await claim_plan(connection, 50)
    # What it reads depends on the batch (the rows it takes and the earlier rows of their
    # destinations), never on the 20,000 rows sent before.
    assert rows_read(plan) < 5000


async def test_taking_rows_does_not_read_the_whole_backlog_for_each_row(pool: Any) -> None:
    """With every earlier waiting row checked per claimed row, a backlog of 5,000 made each
    claim read about a million index entries (0.4 to 0.8 s a claim) and the AMQP relay fell
    behind the processor under load; statistics as a busy new table has them (none yet)."""
    async with pool.acquire() as connection:
        submission = await add_submission(connection)
        await connection.execute(
            "INSERT INTO outbox (interchange_id, channel, destination, dispatch_key, body)"
            " SELECT $1, 'amqp', (ARRAY['customs', 'port'])[1 + n % 2], 'new' || n, ''"
            " FROM generate_series(1, 5000) n", submission)
        plan = await claim_plan(connection, 200)
    assert rows_read(plan) < 5000


async def claim_plan(connection: Any, limit: int) -> dict[str, Any]:
    """The executed plan of one claim of ``limit`` rows (rolled back: nothing stays locked)."""
    recorder = Recorder()
    await outbox.claim_pending(recorder, "amqp", limit)
    transaction = connection.transaction()
    await transaction.start()
    try:
        (plan,) = json.loads(await connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {recorder.sql}", *recorder.args))
    finally:
        await transaction.rollback()
    return dict(plan["Plan"])


class Recorder:
    """A connection that keeps the statement it is given."""

    sql = ""
    args: tuple[Any, ...] = ()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.sql, self.args = sql, args
        return []


def rows_read(node: dict[str, Any]) -> int:
    """Rows every node of a plan produced or threw away, over all its loops."""
    own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get(
        "Actual Loops", 1)
    return int(own) + sum(rows_read(child) for child in node.get("Plans", []))


class AllAtOnce(Scripted):
    """A dispatcher that sends a batch at once (as the AMQP publisher does): every row is
    tried, whatever befell the rows before it; ``script`` as in Scripted."""

    async def dispatch_many(self, rows: list[OutboxRow]) -> list[Failure | None]:
        return [await self.dispatch(row) for row in rows]


async def test_a_row_sent_with_the_batch_behind_a_failed_one_is_recorded_sent(
        pool: Any) -> None:
    """Sent at once, c2 reached its queue although c1 before it failed: c2 is marked sent (a
    retry would deliver it twice), c1 is retried alone; a row whose channel had failed waits
    without an attempt counted."""
    ids = await rows(pool, [("customs", "c1"), ("customs", "c2"), ("port", "p1"),
                            ("port", "p2"), ("quarantine", "q1")])
    down = Failure(Scope.CHANNEL, "connection reset")
    dispatcher = AllAtOnce({"c1": [Failure(Scope.DESTINATION, "queue full")],
                            "p2": [down], "q1": [down]})
    relay = Relay(pool, "amqp", dispatcher, asyncio.Event())
    assert await relay.dispatch_batch() == 5
    assert sent_keys(dispatcher, ids) == ["c2", "p1"]
    assert (await state(pool, "c2"))["dispatched_at"] is not None
    c1 = await state(pool, "c1")
    assert c1["dispatched_at"] is None and c1["attempts"] == 1 and c1["row_failures"] == 0
    p2, q1 = await state(pool, "p2"), await state(pool, "q1")
    assert p2["attempts"] == 1 and "connection reset" in p2["last_error"]  # the channel
    assert q1["attempts"] == 0 and q1["last_error"] == "not tried: connection reset"
    await make_due(pool)
    relay._paused_until = 0.0  # the channel's pause is over
    await relay.dispatch_batch()
    assert sent_keys(dispatcher, ids) == ["c2", "p1", "c1", "p2", "q1"]  # once each
