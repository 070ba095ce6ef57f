"""The port alarms file (named by gateway.yaml's ``port_alarms:``; docs/port-alarms.md): how
long a container may take from one event at a node to the next (overtime), and how long it may
stay discharged or gated in without a customs declaration covering it (illegal storage).
Loaded strictly like every configuration file: an error names file:line:column and field, and
nothing falls back silently."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from gateway.config.settings import Strict
from gateway.config.yamlfile import load_model

#: The container events a rule can name (the canonical ContainerEvent's, bar "other").
Event = Literal["discharged", "loaded", "gate_in", "gate_out", "status"]
#: A rule's name: in alarm keys, routing keys and the console.
RULE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
#: A node (UN/LOCODE, or a terminal code): what ContainerEvent.location.code holds.
NODE = r"^[A-Z0-9]{1,17}$"
MAX_SECONDS = 366 * 24 * 3600


class Step(Strict):
    """An event, at one node or (without ``node``) at any."""

    event: Event
    node: str | None = Field(default=None, pattern=NODE)


class Limit(Strict):
    """``within_seconds`` or ``within_hours``, exactly one."""

    within_seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    within_hours: float | None = Field(default=None, gt=0, le=MAX_SECONDS / 3600)

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if (self.within_seconds is None) == (self.within_hours is None):
            raise ValueError("give within_seconds or within_hours (exactly one)")
        return self

    @property
    def seconds(self) -> float:
        if self.within_seconds is not None:
            return self.within_seconds
        assert self.within_hours is not None
        return self.within_hours * 3600


class OvertimeRule(Limit):
    """From ``from`` to ``to`` within the limit, or an overtime alarm (GW-A016)."""

    name: str = Field(pattern=RULE_NAME)
    start: Step = Field(alias="from")
    end: Step = Field(alias="to")


class IllegalStorageRule(Limit):
    """A container that ``after`` events name must be covered by a customs declaration (its
    EQD) within the limit, or an illegal-storage alarm (GW-A017)."""

    name: str = Field(default="illegal-storage", pattern=RULE_NAME)
    after: tuple[Literal["discharged", "gate_in"], ...] = Field(
        default=("discharged", "gate_in"), min_length=1)


class PortAlarmsFile(Strict):
    exchange: str = Field(default="gateway.alarms", min_length=1, max_length=255,
                          pattern=r"^[A-Za-z0-9_.:-]+$",
                          description="the topic exchange alarms are published on")
    check_seconds: float = Field(default=5.0, gt=0, le=3600,
                                 description="how often deadlines are looked at")
    overtime: tuple[OvertimeRule, ...] = ()
    illegal_storage: IllegalStorageRule | None = None

    @field_validator("overtime")
    @classmethod
    def _names_once(cls, rules: tuple[OvertimeRule, ...]) -> tuple[OvertimeRule, ...]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule {rule.name!r} is named twice")
            seen.add(rule.name)
        return rules

    @model_validator(mode="after")
    def _storage_name_is_its_own(self) -> Self:
        if self.illegal_storage is not None and \
                self.illegal_storage.name in {r.name for r in self.overtime}:
            raise ValueError(f"illegal_storage.name {self.illegal_storage.name!r} is also an "
                             "overtime rule's")
        return self


def load_port_alarms(path: Path) -> PortAlarmsFile:
    return load_model(path, PortAlarmsFile)
