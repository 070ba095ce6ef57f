"""Deadlines for agencies' decisions: an agency that has not decided on a message within its
``answer_within_seconds`` (agencies.yaml) of the message reaching its queue is marked overdue
once, with an event in the declaration's history and an alarm in the log."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway import alarms
from gateway.app.workers import poll_forever
from gateway.config.load import GatewayConfig
from gateway.logs import event
from gateway.store import answers
from gateway.store import interchanges as store
from gateway.store.database import translated_errors

log = logging.getLogger("gateway.overdue")


class OverdueWatch:
    def __init__(self, pool: Any, config: GatewayConfig) -> None:
        self._pool = pool
        self._deadlines = {a.code: a.answer_within_seconds for a in config.agencies
                           if a.answer_within_seconds is not None}
        self._every = config.settings.overdue_check_seconds

    async def run(self) -> None:
        await poll_forever("overdue-watch", self.check, asyncio.Event(), self._every)

    async def check(self) -> bool:
        """Mark what is overdue now; True when something was."""
        async with translated_errors("checking answer deadlines"), \
                self._pool.acquire() as connection, connection.transaction():
            due = await answers.mark_overdue(connection, self._deadlines)
            for late in due:
                detail: dict[str, Any] = {
                    "agency": late.agency, "delivered_at": late.delivered_at.isoformat(),
                    "deadline_seconds": self._deadlines[late.agency]}
                await store.add_event(connection, late.interchange_id, "answer_overdue",
                                      detail, late.message_id)
                event(log, "answer_overdue", level=logging.ERROR, **detail,
                      code=alarms.ANSWER_OVERDUE,
                      submission=late.interchange_id, message=late.message_id,
                      note="alarm: the agency has not decided within its deadline")
        return bool(due)
