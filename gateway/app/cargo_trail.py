"""The cargo trail and port alarms (docs/port-alarms.md): a watcher that reads the container
events and customs declarations the processor stored, by a cursor kept in the database, keeps
each container's trail across the logistics nodes, starts and closes the port alarms file's
clocks (one per visit of a container and rule), raises an alarm once per clock when one
runs out, and publishes it on the alarms exchange until RabbitMQ confirms it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

from pydantic import ValidationError

from gateway import alarms
from gateway.app.workers import poll_forever
from gateway.bus.port_alarms import AlarmPublisher
from gateway.config.port_alarms import MAX_SECONDS, PortAlarmsFile
from gateway.errors import BusError
from gateway.logs import event
from gateway.model.canonical import ContainerEvent, CustomsDeclaration
from gateway.model.canonical.port_alarm import PortAlarm
from gateway.pipeline import port_rules
from gateway.pipeline.port_rules import Check, TrailStep
from gateway.store import cargo_trail as store
from gateway.store.database import translated_errors

log = logging.getLogger("gateway.port_alarms")
#: Messages read per step.
BATCH = 500
#: Due checks turned into alarms per step.
DUE_BATCH = 200
#: How long a missing message id holds the cursor back: far longer than a processor's
#: transaction takes; after it, the id is taken for a rolled-back transaction's.
GAP_GRACE_SECONDS = 30.0
#: How long due clocks wait for the watcher to catch up with stored messages: at 1,200
#: messages a second, a backlog of some 70,000; then they are raised while it reads on.
DUE_HOLD_SECONDS = 60.0
CODES = {"overtime": alarms.PORT_OVERTIME, "illegal_storage": alarms.PORT_ILLEGAL_STORAGE}


class CargoTrail:
    def __init__(self, pool: Any, rules: PortAlarmsFile, amqp_url: str) -> None:
        self._pool = pool
        self._rules = rules
        self._publisher = AlarmPublisher(amqp_url, rules.exchange)
        self._overtime = {rule.name: rule for rule in rules.overtime}
        #: First missing id of a gap -> when it was first seen missing (monotonic).
        self._gaps: dict[int, float] = {}
        #: Ids after the cursor already taken in this process (taking one again is harmless).
        self._taken: set[int] = set()
        #: Since when (monotonic) the watcher has been a full batch behind, or None.
        self._behind_since: float | None = None

    async def run(self) -> None:
        try:
            await poll_forever("cargo-trail", self.step, asyncio.Event(),
                               self._rules.check_seconds)
        finally:
            await self._publisher.close()

    async def step(self) -> bool:
        """Read what is new, raise what is due, publish what is raised; True when busy."""
        raised: list[PortAlarm] = []
        async with translated_errors("keeping the cargo trail"), \
                self._pool.acquire() as connection, connection.transaction():
            busy, behind = await self._read(connection, raised)
            if self._due_now(behind):
                for check in await store.due_checks(connection, DUE_BATCH):
                    await self._alarm(connection, check, None, raised)
        for alarm in raised:
            _log(alarm)
        await self._publish()
        return busy or bool(raised)

    def _due_now(self, behind: bool) -> bool:
        """Whether to raise what is due: not while stored messages wait to be read (one of
        them may be the end or the declaration that closes a due clock: a burst of a
        container's history, 5,000 visits, raised an overtime alarm for a visit whose gate
        out sat in the next batch), but after DUE_HOLD_SECONDS behind, regardless."""
        if not behind:
            self._behind_since = None
            return True
        if self._behind_since is None:
            self._behind_since = time.monotonic()
        return time.monotonic() - self._behind_since > DUE_HOLD_SECONDS

    async def _read(self, connection: Any, raised: list[PortAlarm]) -> tuple[bool, bool]:
        """(busy, behind): behind when more stored messages wait than one step reads."""
        cursor = await store.cursor(connection)
        rows = await store.after(connection, cursor, BATCH)
        fresh = [row for row in rows if row.id not in self._taken]
        for row in fresh:
            await self._take(connection, row, raised)
        mark = port_rules.low_water(cursor, [row.id for row in rows], self._given_up)
        if mark != cursor:
            await store.set_cursor(connection, mark)
        self._taken = {row.id for row in rows if row.id > mark}
        self._gaps = {gap: seen for gap, seen in self._gaps.items() if gap > mark}
        return mark != cursor or bool(fresh), len(rows) == BATCH

    def _given_up(self, missing: int) -> bool:
        seen = self._gaps.setdefault(missing, time.monotonic())
        return time.monotonic() - seen > GAP_GRACE_SECONDS

    async def _take(self, connection: Any, row: store.Stored,
                    raised: list[PortAlarm]) -> None:
        if row.canonical is None:
            return
        try:
            if row.kind == "ContainerEvent":
                steps = port_rules.steps_of(ContainerEvent.model_validate_json(row.canonical),
                                            row.id, row.received_at)
                for step in steps:
                    await self._step(connection, step, raised)
            else:
                await self._declared(connection, CustomsDeclaration.model_validate_json(
                    row.canonical), row.id, row.received_at)
        except ValidationError as exc:  # ours (a stored message the model no longer reads)
            event(log, "trail_message_unreadable", level=logging.WARNING, message=row.id,
                  error=str(exc)[:500])

    async def _step(self, connection: Any, step: TrailStep, raised: list[PortAlarm]) -> None:
        await store.add_step(connection, step)
        for check in port_rules.opened_by(step, self._rules):
            await self._open(connection, check, raised)
        for rule in self._ended_by(step):
            await self._end(connection, step, rule, raised)

    def _ended_by(self, step: TrailStep) -> list[str]:
        """The rules whose visit ``step`` ends: overtime rules it is the end of, and illegal
        storage when the container leaves."""
        names = [rule.name for rule in port_rules.closed_by(step, self._rules)]
        storage = self._rules.illegal_storage
        if storage is not None and step.event in port_rules.LEAVING:
            names.append(storage.name)
        return names

    def _ending(self, check: Check) -> tuple[tuple[str, ...], str | None]:
        """The events (and node) that end the visit of ``check``."""
        if check.alarm == "illegal_storage":
            return port_rules.LEAVING, None
        end = self._overtime[check.rule].end
        return (end.event,), end.node

    def _starting(self, rule: str) -> tuple[tuple[str, ...], str | None]:
        """The events (and node) that start a visit for ``rule``."""
        storage = self._rules.illegal_storage
        if storage is not None and rule == storage.name:
            return storage.after, None
        start = self._overtime[rule].start
        return (start.event,), start.node

    async def _open(self, connection: Any, check: Check, raised: list[PortAlarm]) -> None:
        prior = await store.last_started(connection, check.container, check.rule,
                                         check.started_at)
        if prior is not None and port_rules.in_visit(prior, check.started_at):
            return  # the same visit reported again (or this very message read again)
        events, node = self._ending(check)  # its end may have been read first
        end = await store.first_step(connection, check.container, events, node,
                                     check.started_at)
        following = await store.next_started(connection, check.container, check.rule,
                                             check.started_at)
        if following is not None and (end is None or end.at > following.started_at):
            return  # an earlier report of the arrival that started the next clock
        stored = await store.open_check(connection, check)
        if stored is None:
            return
        if end is not None:
            await store.end_visit(connection, stored, end.at)
        if stored.alarm == "illegal_storage":
            if await store.declared_between(connection, stored.container,
                                            *port_rules.declaration_window(
                                                stored.started_at, stored.limit_seconds)):
                await store.close_check(connection, stored)  # declared in its window
        elif end is not None:
            await self._close(connection, stored, end.at, raised)

    async def _end(self, connection: Any, step: TrailStep, rule: str,
                   raised: list[PortAlarm]) -> None:
        """An end pairs with the last start before it: ``step`` ends the visit of ``rule``'s
        clock started last before it, unless that visit ended by then (the end reported
        again).  Reports read out of order are paired again: an end earlier than the one a
        clock was ended by takes its place, and a start left without a clock (taken for
        part of a visit that this end shows was two) gets its own."""
        check = await store.last_started(connection, step.container, rule, step.at)
        if check is not None and (check.ended_at is None or check.ended_at > step.at):
            await store.end_visit(connection, check, step.at)
            if check.alarm == "overtime" and await store.is_open(connection, check):
                await self._close(connection, check, step.at, raised)
            since, strictly = step.at, True
        elif check is not None and check.ended_at is not None and check.ended_at < step.at:
            since, strictly = check.ended_at, True  # whose start is this the end of?
        elif check is None:
            since, strictly = step.at - dt.timedelta(seconds=MAX_SECONDS), False
        else:
            return
        events, node = self._starting(rule)
        following = await store.first_step(connection, step.container, events, node,
                                           since, strictly=strictly)
        if following is not None:
            for again in port_rules.opened_by(following, self._rules):
                if again.rule == rule:
                    await self._open(connection, again, raised)

    async def _close(self, connection: Any, check: Check, ended_at: dt.datetime,
                     raised: list[PortAlarm]) -> None:
        if port_rules.late(check.started_at, check.limit_seconds, ended_at):
            await self._alarm(connection, check, ended_at, raised)
        else:
            await store.close_check(connection, check)

    async def _declared(self, connection: Any, declaration: CustomsDeclaration,
                        message_id: int, received_at: dt.datetime) -> None:
        if declaration.function in ("cancellation", "deletion"):
            return  # covers nothing
        for container in sorted(declaration.container_numbers):
            await store.add_declaration(connection, container, message_id, received_at)
            for check in await store.open_checks(connection, container, "illegal_storage"):
                if port_rules.covered_in_time(check.started_at, check.limit_seconds,
                                              received_at):
                    await store.close_check(connection, check)

    async def _alarm(self, connection: Any, check: Check, ended_at: dt.datetime | None,
                     raised: list[PortAlarm]) -> None:
        alarm = await store.raise_alarm(connection, check, CODES[check.alarm], ended_at)
        await store.close_check(connection, check)
        if alarm is not None:
            raised.append(alarm)

    async def _publish(self) -> None:
        """Every alarm not yet confirmed by RabbitMQ, oldest first, by one watcher at a time
        (the others skip); what fails stays for the next step (the broker's fault, ours:
        retried, never dropped)."""
        async with translated_errors("publishing port alarms"), \
                self._pool.acquire() as connection, connection.transaction():
            if not await store.take_publishing(connection):
                return  # another gateway's watcher is publishing them
            waiting = await store.unpublished(connection, DUE_BATCH)
            if not waiting:
                return
            try:
                done = await self._publisher.publish(waiting)
            except BusError as exc:
                event(log, "port_alarms_waiting", level=logging.ERROR, error=str(exc),
                      waiting=len(waiting), note="kept; published once RabbitMQ is back")
                return
            await store.mark_published(connection, done)


def _log(alarm: PortAlarm) -> None:
    detail: dict[str, Any] = {
        "alarm_id": alarm.alarm_id, "container": alarm.container, "rule": alarm.rule,
        "node": alarm.node, "started_at": alarm.started_at.isoformat(),
        "limit_seconds": alarm.limit_seconds, "message": alarm.message_id}
    if alarm.alarm == "overtime":
        event(log, "port_overtime", level=logging.ERROR, code=alarms.PORT_OVERTIME, **detail,
              ended_at=None if alarm.ended_at is None else alarm.ended_at.isoformat(),
              note="alarm: the container took longer than the rule allows")
    else:
        event(log, "port_illegal_storage", level=logging.ERROR,
              code=alarms.PORT_ILLEGAL_STORAGE, **detail,
              note="alarm: no customs declaration covers the container within the window")
