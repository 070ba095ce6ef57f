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
    Equipment,
    Frozen,
    Location,
    Measurement,
    OfficeCode,
    Party,
    Reference,
    Transport,
    coded,
)
from gateway.model.containers import container_number


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
#: UNTDID 3035 roles of the parties customs holds answerable for a declaration: DT declarant,
#: AE declarant's representative, IM importer, EX exporter.  Only these can make it a trusted
#: trader's declaration: naming an AEO as consignee or notify party (CN, NI) must not.
RESPONSIBLE_ROLES = frozenset({"DT", "AE", "IM", "EX"})

MessageFunction = Literal[
    "original", "replacement", "cancellation", "change", "deletion", "copy", "duplicate",
    "other",
]


class VerifiedOriginCertificate(Frozen):
    """A certificate of origin a goods item cites (DOC 861), as the gateway received it from
    the issuing country's single window (docs/n2n.md).  Set by the gateway only, never read
    from what a trader sends: customs checks a preferential-origin claim against it."""

    number: str
    verified: bool = Field(description="received from the issuing country's single window, "
                           "validated against the UBL 2.1 XSD")
    country: str = coded("ISO 3166-1 alpha-2", "the issuing country", required=True)
    received_from: str = Field(description="the single window's partner id")
    items: tuple[int, ...] = Field(default=(), description="the goods items citing it "
                                   "(their positions, from 1)")


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
    #: The containers the declaration covers (CUSDEC heading EQD): a port authority matches
    #: them against the containers discharged or gated in (docs/port-alarms.md).
    equipment: tuple[Equipment, ...] = ()
    #: Certificates of origin the goods items cite that the gateway received from a foreign
    #: single window (docs/n2n.md); set by the gateway at routing, never by a mapping.
    origin_certificates: tuple[VerifiedOriginCertificate, ...] = ()

    @property
    def document_reference(self) -> str | None:
        return self.declaration_number

    @property
    def container_numbers(self) -> frozenset[str]:
        """The containers covered (ISO 6346, one spelling); other equipment left out."""
        numbers = (container_number(e.id) for e in self.equipment)
        return frozenset(n for n in numbers if n is not None)

    @property
    def commodity_codes(self) -> tuple[str, ...]:
        return tuple(g.commodity_code for g in self.goods_items if g.commodity_code)

    @property
    def trader_ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.parties if p.id)

    @property
    def responsible_trader_ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.parties if p.id and p.role in RESPONSIBLE_ROLES)

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
        """The larger of the goods items' customs values added up and the total the heading
        declares (CUSDEC SG8 MOA): a value given in one place only still counts, and neither
        can lower the other below a routing threshold."""
        return max(_customs_value(self.amounts, currency),
                   sum((_customs_value(g.amounts, currency) for g in self.goods_items),
                       Decimal(0)))

    @model_validator(mode="after")
    def _customs_values_not_negative(self) -> CustomsDeclaration:
        """A customs value is never below zero; a negative one would lower the declaration's
        total below a routing threshold (``customs_value_at_least``)."""
        places = [("the heading", self.amounts)] + [
            (f"goods item {number}", goods.amounts)
            for number, goods in enumerate(self.goods_items, start=1)]
        for place, amounts in places:
            if any(a.qualifier == CUSTOMS_VALUE and a.value < 0 for a in amounts):
                raise ValueError(f"{place}: a customs value (UNTDID 5025 {CUSTOMS_VALUE}) is "
                                 "not negative")
        return self


def _customs_value(amounts: tuple[Amount, ...], currency: str) -> Decimal:
    return sum((a.value for a in amounts
                if a.qualifier == CUSTOMS_VALUE and a.currency == currency), Decimal(0))
