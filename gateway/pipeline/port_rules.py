"""The cargo trail's rules, pure (docs/port-alarms.md): which trail steps a container event
makes, which checks a step opens, and whether a check that closes was late.

A step's time is the event's own (DTM) but never later than the gateway received the report:
an event cannot have happened after it was reported, and a date far in the future would
otherwise stop every clock (DESIGN rule 6: a partner's value is hostile until checked).  Nor
is it taken from more than a year before the report (MAX_SECONDS, the longest limit a rule
may have): a date like 0001-01-01 is a typo, not a visit, and would otherwise start a clock
that swallows every later visit of the container; it counts as undated (the report's time).

A visit: the rule's clock for a container runs from a step that opens it to the step that
ends it (overtime: the rule's ``to``; illegal storage: the container leaving, gate out or
loaded).  A start that falls inside a visit (a repeated report) opens nothing; one after the
visit ended is the container's next visit, with clocks and alarms of its own."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.port_alarms import (
    MAX_SECONDS,
    IllegalStorageRule,
    OvertimeRule,
    PortAlarmsFile,
    Step,
)
from gateway.model.canonical.container_event import ContainerEvent
from gateway.model.containers import container_number

_NODE = re.compile(r"[A-Z0-9]{1,17}")
#: The events by which a container leaves the port: they end its visit (illegal storage).
LEAVING = ("gate_out", "loaded")


@dataclass(frozen=True, slots=True)
class TrailStep:
    container: str
    event: str
    node: str | None
    at: dt.datetime
    message_id: int


@dataclass(frozen=True, slots=True)
class Check:
    """A clock started by a step: closed in time by its end, or an alarm when it is due."""

    container: str
    rule: str
    alarm: str  # "overtime" | "illegal_storage"
    node: str | None
    started_at: dt.datetime
    due_at: dt.datetime
    limit_seconds: float
    message_id: int
    #: The stored clock's id (0 until it is stored): its alarm is keyed by it.
    check_id: int = 0
    #: When its visit ended (None: not yet).
    ended_at: dt.datetime | None = None


def steps_of(event: ContainerEvent, message_id: int, received_at: dt.datetime
             ) -> list[TrailStep]:
    """One step per container the event names (equipment that is no container is left out)."""
    if event.event == "other":
        return []
    at = _event_time(event.occurred_at, received_at)
    node = _node(event.location.code if event.location is not None else None)
    containers = dict.fromkeys(n for n in (container_number(e.id) for e in event.equipment)
                               if n is not None)
    return [TrailStep(c, event.event, node, at, message_id) for c in containers]


def _event_time(occurred_at: dt.datetime | None, received_at: dt.datetime) -> dt.datetime:
    if occurred_at is None:
        return received_at
    if occurred_at.tzinfo is None:  # no zone given: taken as UTC, as the mappings do
        occurred_at = occurred_at.replace(tzinfo=dt.UTC)
    if (received_at - occurred_at).total_seconds() > MAX_SECONDS:
        return received_at  # not believable (see the module's note): as if undated
    return min(occurred_at, received_at)


def _node(code: str | None) -> str | None:
    if code is None or not code.isascii():
        return None
    plain = code.strip().upper()
    return plain if _NODE.fullmatch(plain) else None


def matches(step: TrailStep, wanted: Step) -> bool:
    return step.event == wanted.event and (wanted.node is None or step.node == wanted.node)


def opened_by(step: TrailStep, rules: PortAlarmsFile) -> list[Check]:
    """The checks ``step`` starts: each overtime rule it is the start of, and the illegal
    storage rule when it is one of that rule's events."""
    checks = [_check(step, rule, "overtime") for rule in rules.overtime
              if matches(step, rule.start)]
    storage = rules.illegal_storage
    if storage is not None and step.event in storage.after:
        checks.append(_check(step, storage, "illegal_storage"))
    return checks


def _check(step: TrailStep, rule: OvertimeRule | IllegalStorageRule, alarm: str) -> Check:
    limit = rule.seconds
    return Check(step.container, rule.name, alarm, step.node, step.at,
                 step.at + dt.timedelta(seconds=limit), limit, step.message_id)


def closed_by(step: TrailStep, rules: PortAlarmsFile) -> list[OvertimeRule]:
    """The overtime rules ``step`` is the end of."""
    return [rule for rule in rules.overtime if matches(step, rule.end)]


def late(started_at: dt.datetime, limit_seconds: float, ended_at: dt.datetime) -> bool:
    """Whether an end that came at ``ended_at`` exceeded the limit (exactly on it is in time)."""
    return (ended_at - started_at).total_seconds() > limit_seconds


def in_visit(check: Check, at: dt.datetime) -> bool:
    """Whether a start at ``at`` falls in the visit of ``check``: at or after its start and
    not after its end (a repeated report of the same arrival)."""
    return check.started_at <= at and (check.ended_at is None or at <= check.ended_at)


def declaration_window(started_at: dt.datetime, limit_seconds: float
                       ) -> tuple[dt.datetime, dt.datetime]:
    """When a declaration must be lodged to cover the visit that started at ``started_at``:
    within the legal window either side of it (up to the limit before arrival, a
    pre-arrival declaration, and up to the limit after).  A declaration for an earlier visit
    of the same container number, weeks before, covers not this one."""
    window = dt.timedelta(seconds=limit_seconds)
    return started_at - window, started_at + window


def covered_in_time(started_at: dt.datetime, limit_seconds: float,
                    declared_at: dt.datetime) -> bool:
    earliest, latest = declaration_window(started_at, limit_seconds)
    return earliest <= declared_at <= latest


def low_water(cursor: int, ids: list[int], given_up: Callable[[int], bool]) -> int:
    """How far the trail's cursor may move over ``ids`` (the message ids read after it, in
    order): up to the last one with no gap before it, or only a gap ``given_up`` (its first
    missing id seen missing long enough: a rolled-back transaction's, not an open one's).
    Ids are taken from a sequence when a row is inserted, not when it is committed, so a
    processor's transaction still open leaves a gap that fills later."""
    mark = cursor
    for message_id in ids:
        if message_id > mark + 1 and not given_up(mark + 1):
            break
        mark = message_id
    return mark
