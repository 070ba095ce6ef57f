"""Attacks on the leasing relay (app.relay.LeasingRelay, the 'as2' channel) against a real
PostgreSQL, with a dispatcher the test holds: a send that outlives its lease, a second relay
(another gateway process) polling meanwhile, and a bug while a send's outcome is written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from gateway.app.relay import BATCH, LeasingRelay
from gateway.store import outbox
from gateway.store.outbox import Failure, OutboxRow
from gateway.transports.as2.server import Reply, start_listener
from tests.support.harness import add_submission

LEASE = 3600.0  # never runs out by itself here: the tests make it run out (expire)


class Held:
    """Sends every row at once, except the rows of ``hold``: their sends wait for ``release``
    (a partner's server that hangs)."""

    done_event = "delivered"

    def __init__(self, hold: str = "") -> None:
        self.hold = hold
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.tries: list[str] = []

    async def dispatch(self, row: OutboxRow) -> Failure | None:
        self.tries.append(row.dispatch_key)
        if row.destination == self.hold:
            self.started.set()
            await self.release.wait()
        return None


async def add_rows(pool: Any, spec: list[tuple[str, str]]) -> dict[str, int]:
    """'as2' rows (destination, key) in this order; key -> row id."""
    async with pool.acquire() as connection:
        submission = await add_submission(connection)
        for destination, key in spec:
            await outbox.add(connection, interchange_id=submission, message_id=None,
                             channel="as2", destination=destination, dispatch_key=key,
                             body=b"x", properties={"headers": {"partner": destination}})
        found = await connection.fetch("SELECT dispatch_key, id FROM outbox")
    return {r["dispatch_key"]: r["id"] for r in found}


async def expire_lease(pool: Any, row_id: int) -> None:
    """The lease of ``row_id`` ran out (instead of waiting for it)."""
    async with pool.acquire() as connection:
        await connection.execute(
            "UPDATE outbox SET next_attempt_at = now() - interval '1 second' WHERE id = $1",
            row_id)


async def settled(relay: LeasingRelay, *destinations: str) -> None:
    """The sends of ``destinations`` in flight have finished, their outcomes written."""
    sending = relay._sending  # the tasks the relay started
    await asyncio.gather(*(sending[d] for d in destinations if d in sending),
                         return_exceptions=True)


async def dispatched(pool: Any, key: str) -> bool:
    async with pool.acquire() as connection:
        found = await connection.fetchval(
            "SELECT dispatched_at IS NOT NULL FROM outbox WHERE dispatch_key = $1", key)
    return bool(found)


async def test_a_send_outliving_its_lease_does_not_starve_other_partners(pool: Any) -> None:
    """A partner's server that hangs past the lease (its rows' lease is send_timeout + 30 s,
    but signing, the pool and the loop are outside send_timeout) must hold back its own rows
    only (DESIGN rule 6).  Before the fix, once the lease of the row in flight ran out, each
    claim took that partner's first BATCH rows (none excluded by a lease any more), skipped
    them all (the partner is in flight) and never reached the other partners' rows."""
    ids = await add_rows(pool, [("slow", f"s{n}") for n in range(BATCH + 1)] + [("quick", "q1")])
    dispatcher = Held(hold="slow")
    relay = LeasingRelay(pool, "as2", dispatcher, asyncio.Event(), lease_seconds=LEASE)
    assert await relay.dispatch_batch() == 1  # s0 leased; q1 beyond the batch
    await dispatcher.started.wait()
    await expire_lease(pool, ids["s0"])
    for _ in range(3):  # the relay polls on while s0's server hangs
        await relay.dispatch_batch()
        await settled(relay, "quick")
    assert "q1" in dispatcher.tries
    assert await dispatched(pool, "q1")
    dispatcher.release.set()
    await settled(relay, "slow")
    assert await dispatched(pool, "s0") and dispatcher.tries.count("s0") == 1


async def test_a_live_relay_keeps_the_lease_of_its_send_in_flight(pool: Any) -> None:
    """Another gateway process's relay must not POST a row again while this one's send of it
    is still in flight and this relay is alive and polling: before the fix the lease was never
    renewed, so a send outliving it was sent twice at once (the partner's duplicate check may
    see the second before the first is stored)."""
    ids = await add_rows(pool, [("slow", "s0"), ("slow", "s1")])
    first, second = Held(hold="slow"), Held()
    relay = LeasingRelay(pool, "as2", first, asyncio.Event(), lease_seconds=LEASE)
    other = LeasingRelay(pool, "as2", second, asyncio.Event(), lease_seconds=LEASE)
    await relay.dispatch_batch()
    await first.started.wait()
    await expire_lease(pool, ids["s0"])
    await relay.dispatch_batch()  # a poll of the live relay, with s0 still in flight
    assert await other.dispatch_batch() == 0
    await settled(other, "slow")
    assert second.tries == []
    first.release.set()
    await settled(relay, "slow")
    assert await relay.dispatch_batch() == 1  # s1 goes next, not held by a renewed lease
    await settled(relay, "slow")
    assert first.tries == ["s0", "s1"] and await dispatched(pool, "s1")


async def test_a_bug_while_writing_an_outcome_is_reported(pool: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The outcome is written in the send's own task: an exception there other than StoreError
    (a bug in on_done, e.g. the AS2 record) ended the task silently ("Task exception was never
    retrieved" at best), the row was sent again after every lease, never counted, never parked,
    with no alarm.  It must at least be logged as an error naming the row."""
    await add_rows(pool, [("van-a", "a1")])

    async def broken(connection: Any, rows: list[OutboxRow]) -> list[dict[str, Any]]:
        raise KeyError("no such MIC")

    relay = LeasingRelay(pool, "as2", Held(), asyncio.Event(), on_done=broken,
                         lease_seconds=LEASE)
    await relay.dispatch_batch()
    with caplog.at_level(logging.ERROR, logger="gateway.relay"):
        await settled(relay, "van-a")
    assert any(r.levelno >= logging.ERROR and getattr(r, "fields", {}).get("key") == "a1"
               for r in caplog.records)
    assert not await dispatched(pool, "a1")  # rolled back: sent again after its lease


# --- Expect on the AS2 endpoint (transports.as2.server), with an inbox that takes anything ---


class Taking:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bodies: list[bytes] = []

    def limit_for(self, as2_from: str | None) -> int:
        return self.limit

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Reply:
        self.bodies.append(body)
        return Reply.text(200, "taken")


async def exchange(port: int, head: list[str], body: bytes) -> tuple[list[int], bytes]:
    """Send the head and the body at once (as a client that does not wait for 100); the
    statuses of the responses seen (interim ones first) and the rest of what came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        seen = await reader.read()  # Connection: close: up to the end
    finally:
        writer.close()
    statuses = [int(line.split()[1]) for line in seen.split(b"\r\n")
                if line.startswith(b"HTTP/1.")]
    return statuses, seen


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[int, Taking]]:
    inbox = Taking(limit=1000)
    listener = await start_listener(inbox, host="127.0.0.1", port=0, path="/as2")
    try:
        yield listener.port, inbox
    finally:
        await listener.close()


async def test_expect_in_an_http_1_0_request_is_ignored(endpoint: tuple[int, Taking]) -> None:
    port, inbox = endpoint
    statuses, _ = await exchange(port, ["POST /as2 HTTP/1.0", "Host: 127.0.0.1",
                                        "Expect: 100-continue", "Content-Length: 5"], b"hello")
    assert statuses == [200] and inbox.bodies == [b"hello"]


async def test_an_unknown_expectation_is_a_417(endpoint: tuple[int, Taking]) -> None:
    port, inbox = endpoint
    statuses, _ = await exchange(port, ["POST /as2 HTTP/1.1", "Host: 127.0.0.1",
                                        "Connection: close", "Expect: 200-ok",
                                        "Content-Length: 5"], b"hello")
    assert statuses == [417] and inbox.bodies == []


async def test_expect_with_a_chunked_body_over_the_limit_is_a_413(
        endpoint: tuple[int, Taking]) -> None:
    """No Content-Length to refuse early: 100 Continue, then refused as it passes the limit."""
    port, inbox = endpoint
    chunk = b"x" * 600
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    statuses, _ = await exchange(port, ["POST /as2 HTTP/1.1", "Host: 127.0.0.1",
                                        "Connection: close", "Expect: 100-continue",
                                        "Transfer-Encoding: chunked"], body)
    assert statuses == [100, 413] and inbox.bodies == []
