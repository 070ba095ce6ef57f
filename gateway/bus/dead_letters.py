"""Read an agency's dead-letter queue for ``gateway replay --dead``: what the agency rejected,
or could not take within the delivery limit.

Each dead letter is taken unacknowledged; the ones the caller replays are acknowledged once
their replay is committed, every other one goes back to the queue untouched.  A crash in
between leaves the dead letter where it was."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.bus.topology import Topology, connect, translated_errors

#: Headers the broker adds when a message dies (RabbitMQ dead lettering); a replay drops them.
DEATH_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue",
                 "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
                 "x-last-death-reason", "x-delivery-count")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    body: bytes
    message_id: str
    correlation_id: str
    type: str
    priority: int | None
    #: The headers the gateway published it with (death headers removed).
    headers: dict[str, Any]
    #: How many times it was replayed before this death (header ``replays``): a replay is
    #: keyed by (message_id, replays + 1), so each death is replayed at most once, even when
    #: the same dead letter is offered again after a crash.
    replays: int
    reason: str



REPLAYS_HEADER = "replays"

#: Replay one dead letter; True acknowledges (removes) it, False leaves it in the queue.
Replay = Callable[[DeadLetter], Awaitable[bool]]


async def replay_dead_letters(url: str, topology: Topology, agency: str, replay: Replay,
                             limit: int | None = None) -> int:
    """Offer each message now in ``agency``'s dead-letter queue (its first ``limit`` when
    given: the console lists a page of them) to ``replay``; returns how many were
    acknowledged."""
    connection = await connect(url)
    kept: list[Any] = []
    taken = 0
    try:
        async with translated_errors(f"reading {topology.dead_letter_queue(agency)}"):
            channel = await connection.channel()
            queue = await channel.declare_queue(topology.dead_letter_queue(agency), passive=True)
            count = queue.declaration_result.message_count or 0
            for _ in range(count if limit is None else min(count, limit)):
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                if await replay(_dead_letter(message)):
                    await message.ack()
                    taken += 1
                else:
                    kept.append(message)
            for message in kept:  # after the scan: a requeued one is not offered twice
                await message.nack(requeue=True)
    finally:
        await connection.close()
    return taken


def _dead_letter(message: Any) -> DeadLetter:
    headers = dict(message.headers or {})
    replays = headers.get(REPLAYS_HEADER)
    return DeadLetter(
        body=bytes(message.body),
        message_id=message.message_id or "",
        correlation_id=message.correlation_id or "",
        type=message.type or "",
        priority=message.priority,
        headers={k: v for k, v in headers.items() if k not in DEATH_HEADERS},
        replays=replays if isinstance(replays, int) and replays >= 0 else 0,
        reason=str(headers.get("x-first-death-reason", "")),
    )
