"""Intake: what every transport calls with a complete submission.  It returns only after the
bytes are committed (DESIGN rule 1), then wakes the processor."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.console import metrics
from gateway.logs import event
from gateway.store.interchanges import AlsoRecord, record_submission

log = logging.getLogger("gateway.intake")


class Intake:
    def __init__(self, pool: Any, wake_processor: asyncio.Event) -> None:
        self._pool = pool
        self._wake = wake_processor

    async def submit(self, partner_id: str, transport: str, file_name: str, data: bytes, *,
                     also: AlsoRecord | None = None) -> int:
        """``also``: what the transport records in the same transaction (store.interchanges
        .record_submission)."""
        submission_id = await record_submission(self._pool, partner_id, transport, file_name,
                                                data, also=also)
        metrics.record_received(transport)
        event(log, "received", partner=partner_id, submission=submission_id,
              transport=transport, file_name=file_name, bytes=len(data))
        self._wake.set()
        return submission_id
