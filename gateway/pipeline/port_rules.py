"""The cargo trail's rules, pure (docs/port-alarms.md): which trail steps a container event
makes, which checks a step opens, and whether a check that closes was late.

A step's time is the event's own (DTM) but never later than the gateway received the report:
an event cannot have happened after it was reported, and a date far in the future would
otherwise stop every clock (DESIGN rule 6: a partner's value is hostile until checked)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.port_alarms import IllegalStorageRule, OvertimeRule, PortAlarmsFile, Step
from gateway.model.canonical.container_event import ContainerEvent
from gateway.model.containers import container_number

_NODE = re.compile(r"[A-Z0-9]{1,17}")


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


def covered_in_time(due_at: dt.datetime, declared_at: dt.datetime) -> bool:
    """A declaration covers a container in time when it came by the check's due time
    (before the container arrived counts: a pre-arrival declaration)."""
    return declared_at <= due_at


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
