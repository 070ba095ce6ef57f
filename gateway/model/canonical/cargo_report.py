"""A cargo report (manifest) to customs: from CUSCAR; what a carrier or agent declares is on
board a means of transport arriving or departing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.model.canonical.common import (
    Canonical,
    CommodityCode,
    DateValue,
    Equipment,
    Frozen,
    Location,
    Measurement,
    Party,
    Reference,
    Transport,
    coded,
)
from gateway.model.canonical.customs_declaration import MessageFunction


class CargoItem(Frozen):
    """A goods item of a consignment (CUSCAR GID)."""

    item_number: str | None = None
    commodity_code: CommodityCode | None = Field(default=None,
                                                 description="HS / tariff code: digits only")
    description: str | None = None
    packages: int | None = None
    package_type: str | None = coded("UN/ECE Recommendation 21", "CT carton")
    gross_weight: Measurement | None = None
    marks: str | None = None


class Consignment(Frozen):
    """A consignment under one transport document (bill of lading, air waybill ...)."""

    transport_document: str | None = Field(default=None,
                                           description="e.g. the bill of lading number")
    parties: tuple[Party, ...] = ()
    place_of_loading: str | None = None
    place_of_discharge: str | None = None
    items: tuple[CargoItem, ...] = ()
    equipment: tuple[Equipment, ...] = ()


class CargoReport(Canonical):
    kind: Literal["CargoReport"] = "CargoReport"
    report_number: str
    function: MessageFunction
    carrier: Party | None = None
    transport: tuple[Transport, ...] = ()
    locations: tuple[Location, ...] = ()
    dates: tuple[DateValue, ...] = ()
    references: tuple[Reference, ...] = ()
    consignments: tuple[Consignment, ...] = ()

    @property
    def document_reference(self) -> str | None:
        return self.report_number

    @property
    def commodity_codes(self) -> tuple[str, ...]:
        return tuple(i.commodity_code for c in self.consignments for i in c.items
                     if i.commodity_code)
