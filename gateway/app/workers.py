"""What every background worker shares: waking up, and being restarted when it crashes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gateway import alarms
from gateway.errors import StoreError
from gateway.logs import event

log = logging.getLogger("gateway.workers")
MAX_RESTART_DELAY_SECONDS = 30.0
#: Longest pause between tries while PostgreSQL is unreachable.
STORE_RETRY_CAP_SECONDS = 10.0


async def woken_or_after(wake: asyncio.Event, seconds: float) -> None:
    """Workers poll the store at least every ``seconds`` (work may arrive from another
    process) and at once when a producer in this process sets ``wake``.

    asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
    arrives just as the event is set (CPython gh-86296), and a worker that ignores its
    cancellation keeps the supervisor from ever stopping."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
    wake.clear()


async def supervised(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a worker forever: a crash (a bug of ours) is logged as an alarm and the worker
    restarts after a backoff, so one failing part never stops the gateway."""
    restarts = 0
    while True:
        try:
            await run()
            return
        except Exception as exc:  # noqa: BLE001 - any crash: alarm and restart
            restarts += 1
            delay = min(MAX_RESTART_DELAY_SECONDS, 2.0 ** restarts)
            event(log, "worker_crashed", level=logging.ERROR, code=alarms.WORKER_CRASHED,
                  exc_info=True, worker=name,
                  restarts=restarts, restart_in=delay, error=repr(exc))
            await asyncio.sleep(delay)


async def poll_forever(name: str, step: Callable[[], Awaitable[bool]], wake: asyncio.Event,
                       idle_seconds: float) -> None:
    """Call ``step`` (True: it did some work) again at once while there is work, after
    ``idle_seconds`` or a wake-up when there is none, and with a growing pause while the store
    is unreachable (ours: alarm and retry, rule 4).  A wake-up cuts any pause short."""
    failures = 0
    while True:
        try:
            busy = await step()
            failures = 0
        except StoreError as exc:
            failures += 1
            event(log, "store_unavailable", level=logging.ERROR, worker=name, error=str(exc))
            await woken_or_after(wake, min(STORE_RETRY_CAP_SECONDS, 2.0 ** failures))
            continue
        if not busy:
            await woken_or_after(wake, idle_seconds)
