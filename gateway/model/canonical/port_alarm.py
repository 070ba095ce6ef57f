"""A port alarm (docs/port-alarms.md): the gateway's own canonical event, published on the
alarms exchange and listed in the console.  Not a partner's document: it has no ``source``,
and its ``alarm_id`` is the gateway's stable key (the AMQP ``message_id`` is built from it,
so a consumer drops a republished one, DESIGN rule 2)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from gateway.model.canonical.common import Frozen

AlarmKind = Literal["overtime", "illegal_storage"]


class PortAlarm(Frozen):
    kind: Literal["PortAlarm"] = "PortAlarm"
    schema_version: str = "1"
    alarm_id: int
    code: str = Field(description="the stable alarm code (docs/observability.md)")
    alarm: AlarmKind
    rule: str = Field(description="the rule's name in the port alarms file")
    container: str = Field(description="ISO 6346 container number")
    node: str | None = Field(default=None, description="where the trail started (location)")
    started_at: dt.datetime = Field(description="the event that started the clock")
    limit_seconds: float
    ended_at: dt.datetime | None = Field(
        default=None, description="overtime: the closing event, when it came late; None: it "
        "has not come")
    raised_at: dt.datetime
    message_id: int = Field(description="the stored message of the starting event")

    @property
    def amqp_message_id(self) -> str:
        return f"port-alarm-{self.alarm_id}"
