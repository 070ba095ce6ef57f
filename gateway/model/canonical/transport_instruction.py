"""A transport instruction: from IFTMIN; a shipper's or forwarder's instruction to a carrier."""

from __future__ import annotations

from typing import Literal

from gateway.model.canonical.cargo_report import CargoItem
from gateway.model.canonical.common import (
    Canonical,
    DateValue,
    Equipment,
    Location,
    Party,
    Reference,
    Transport,
)
from gateway.model.canonical.customs_declaration import MessageFunction


class TransportInstruction(Canonical):
    kind: Literal["TransportInstruction"] = "TransportInstruction"
    instruction_number: str
    function: MessageFunction
    dates: tuple[DateValue, ...] = ()
    parties: tuple[Party, ...] = ()
    transport: tuple[Transport, ...] = ()
    locations: tuple[Location, ...] = ()
    references: tuple[Reference, ...] = ()
    items: tuple[CargoItem, ...] = ()
    equipment: tuple[Equipment, ...] = ()

    @property
    def document_reference(self) -> str | None:
        return self.instruction_number

    @property
    def commodity_codes(self) -> tuple[str, ...]:
        return tuple(i.commodity_code for i in self.items if i.commodity_code)
