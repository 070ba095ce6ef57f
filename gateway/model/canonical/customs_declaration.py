"""The canonical customs declaration (from CUSDEC D96B/D01B today, WCO XML later)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from gateway.model.canonical.common import (
    Amount,
    Canonical,
    CommodityCode,
    CountryCode,
    DateValue,
    Document,
    Frozen,
    Location,
    Measurement,
    OfficeCode,
    Party,
    Reference,
    Transport,
    coded,
)


class GoodsItem(Frozen):
    """One goods item (CUSDEC SG30, headed by CST)."""

    item_number: str | None = None
    commodity_code: CommodityCode | None = Field(default=None,
                                                 description="HS / tariff code: digits only")
    description: str | None = None
    country_of_origin: CountryCode | None = coded("ISO 3166-1 alpha-2")
    gross_weight: Measurement | None = None
    net_weight: Measurement | None = None
    measurements: tuple[Measurement, ...] = ()
    amounts: tuple[Amount, ...] = ()
    locations: tuple[Location, ...] = ()
    parties: tuple[Party, ...] = ()
    documents: tuple[Document, ...] = ()
    references: tuple[Reference, ...] = ()


#: UNTDID 5025 40: customs value.
CUSTOMS_VALUE = "40"

MessageFunction = Literal[
    "original", "replacement", "cancellation", "change", "deletion", "copy", "duplicate",
    "other",
]


class CustomsDeclaration(Canonical):
    """A goods declaration lodged with customs (import, export or transit)."""

    kind: Literal["CustomsDeclaration"] = "CustomsDeclaration"
    declaration_number: str
    document_code: str = coded("UNTDID 1001", "929 import, 830 export", required=True)
    function: MessageFunction
    function_code: str | None = coded("UNTDID 1225", "9 original (as sent)")
    customs_office: OfficeCode | None = None
    dates: tuple[DateValue, ...] = ()
    locations: tuple[Location, ...] = ()
    parties: tuple[Party, ...] = ()
    transport: tuple[Transport, ...] = ()
    documents: tuple[Document, ...] = ()
    references: tuple[Reference, ...] = ()
    amounts: tuple[Amount, ...] = ()
    goods_items: tuple[GoodsItem, ...] = ()

    @property
    def document_reference(self) -> str | None:
        return self.declaration_number

    @property
    def commodity_codes(self) -> tuple[str, ...]:
        return tuple(g.commodity_code for g in self.goods_items if g.commodity_code)

    @property
    def trader_ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.parties if p.id)

    @property
    def origin_countries(self) -> frozenset[str]:
        return frozenset(g.country_of_origin for g in self.goods_items if g.country_of_origin)

    @property
    def customs_office_codes(self) -> frozenset[str]:
        return frozenset({self.customs_office} if self.customs_office else set())

    @property
    def function_name(self) -> str | None:
        return self.function

    def customs_value(self, currency: str) -> Decimal:
        return sum((a.value for g in self.goods_items for a in g.amounts
                    if a.qualifier == CUSTOMS_VALUE and a.currency == currency), Decimal(0))

    @model_validator(mode="after")
    def _customs_values_not_negative(self) -> CustomsDeclaration:
        """A goods item's customs value is never below zero; a negative one would lower the
        declaration's total below a routing threshold (``customs_value_at_least``)."""
        for number, goods in enumerate(self.goods_items, start=1):
            if any(a.qualifier == CUSTOMS_VALUE and a.value < 0 for a in goods.amounts):
                raise ValueError(f"goods item {number}: a customs value (UNTDID 5025 "
                                 f"{CUSTOMS_VALUE}) is not negative")
        return self
