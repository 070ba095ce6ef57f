"""A container event: from COARRI (discharged, loaded), CODECO (gate in, gate out) and IFTSTA
(a status); one model, so a port authority reads every container movement alike."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from gateway.model.canonical.common import Canonical, Equipment, Location, Reference, Transport

EventType = Literal["discharged", "loaded", "gate_in", "gate_out", "status", "other"]


class ContainerEvent(Canonical):
    kind: Literal["ContainerEvent"] = "ContainerEvent"
    message_number: str
    event: EventType
    event_code: str | None = Field(default=None, description="as sent (e.g. UNTDID 4405)")
    occurred_at: dt.datetime | None = Field(default=None,
                                            description="with its zone when the sender gave one")
    location: Location | None = None
    equipment: tuple[Equipment, ...] = ()
    transport: tuple[Transport, ...] = ()
    references: tuple[Reference, ...] = ()

    @property
    def document_reference(self) -> str | None:
        return self.message_number
