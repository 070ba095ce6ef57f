"""Sleep until woken or until a poll interval passes, whichever comes first."""

from __future__ import annotations

import asyncio
import contextlib


async def woken_or_after(wake: asyncio.Event, seconds: float) -> None:
    """Workers poll the store at least every ``seconds`` (work may arrive from another
    process) and at once when a producer in this process sets ``wake``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
    wake.clear()
