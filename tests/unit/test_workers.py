"""Workers stop when they are cancelled, whatever else is happening at that moment."""

from __future__ import annotations

import asyncio

from gateway.app.workers import poll_forever


async def test_a_wake_up_racing_a_cancellation_never_keeps_a_worker_alive() -> None:
    """On Python 3.11, asyncio.wait_for could swallow a cancellation that arrived just as
    the awaited event was set; a worker doing that kept `gateway serve` from ever stopping."""

    async def idle() -> bool:
        return False

    stuck = 0
    for delay in range(6):
        for _ in range(20):
            wake = asyncio.Event()
            task = asyncio.create_task(poll_forever("test", idle, wake, 10))
            for _ in range(3):
                await asyncio.sleep(0)
            wake.set()
            for _ in range(delay):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1)
            stuck += not done
    assert stuck == 0
