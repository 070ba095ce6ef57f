"""Building blocks shared by canonical messages.  Codes keep the code list they come from in
their field name (e.g. ``role`` is UNTDID 3035) so agencies can look them up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def coded(code_list: str, example: str = "", *, required: bool = False) -> Any:
    """A field holding a code of ``code_list`` (named in the JSON Schema as ``codeList`` so
    agency teams know where to look it up); the value is kept as sent."""
    description = f"{code_list}, e.g. {example}" if example else code_list
    extra: dict[str, Any] = {"codeList": code_list}
    if required:
        return Field(description=description, json_schema_extra=extra)
    return Field(default=None, description=description, json_schema_extra=extra)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(Frozen):
    """Where a canonical message came from: enough to trace it back to the submission."""

    syntax: str
    message_type: str
    release: str
    sender: str
    recipient: str
    interchange_reference: str
    message_reference: str


class Party(Frozen):
    """NAD: ``role`` is UNTDID 3035 (e.g. DT declarant, CN consignee, CZ consignor)."""

    role: str = coded("UNTDID 3035", "DT declarant, CN consignee, CZ consignor", required=True)
    id: str | None = None
    id_agency: str | None = coded("UNTDID 3055", "9 GS1, 5 ISO, ZZZ mutually defined")
    name: str | None = None
    street: str | None = None
    city: str | None = None
    postcode: str | None = None
    country: str | None = coded("ISO 3166-1 alpha-2")


class Location(Frozen):
    """LOC: ``qualifier`` is UNTDID 3227 (e.g. 22 customs office of clearance, 27 origin)."""

    qualifier: str = coded("UNTDID 3227", "22 customs office, 27 country of origin",
                           required=True)
    code: str
    code_list: str | None = coded("UNTDID 1131", "139 port (UN/LOCODE)")
    name: str | None = None


class DateValue(Frozen):
    """DTM: ``qualifier`` is UNTDID 2005; ``value`` is the date when its 2379 format is known."""

    qualifier: str = coded("UNTDID 2005", "137 document date", required=True)
    text: str = ""
    format: str | None = coded("UNTDID 2379", "102 CCYYMMDD, 203 CCYYMMDDHHMM")
    value: dt.datetime | dt.date | None = None


class Measurement(Frozen):
    """MEA: purpose (6311), dimension (6313), value with its unit (6411)."""

    purpose: str = coded("UNTDID 6311", "WT weights", required=True)
    dimension: str | None = coded("UNTDID 6313", "G gross weight, AAA net weight")
    value: Decimal | None = None
    unit: str | None = coded("UN/ECE Recommendation 20", "KGM kilogram")


class Amount(Frozen):
    """MOA: ``qualifier`` is UNTDID 5025 (e.g. 40 customs value); currency ISO 4217."""

    qualifier: str = coded("UNTDID 5025", "40 customs value", required=True)
    value: Decimal
    currency: str | None = coded("ISO 4217", "USD")


class Document(Frozen):
    """DOC: document name code (1001) and number."""

    code: str = coded("UNTDID 1001", "861 certificate of origin", required=True)
    number: str | None = None


class Reference(Frozen):
    """RFF: ``qualifier`` is UNTDID 1153."""

    qualifier: str = coded("UNTDID 1153", "BM bill of lading", required=True)
    value: str


class Transport(Frozen):
    """TDT: stage (8051), mode (8067), means identification and nationality."""

    stage: str = coded("UNTDID 8051", "20 main carriage", required=True)
    conveyance_reference: str | None = None
    mode: str | None = coded("UN/ECE Recommendation 19", "1 maritime, 3 road")
    means_type: str | None = coded("UNTDID 8179")
    carrier: str | None = None
    means_id: str | None = None
    means_name: str | None = None
    nationality: str | None = coded("ISO 3166-1 alpha-2")


class Canonical(Frozen):
    """What every canonical message has: its kind, the version of its schema, where it came
    from; and what routing and tracing read from any kind."""

    schema_version: str = "1"
    source: Source

    @property
    def document_reference(self) -> str | None:
        """The business reference ops search by (declaration number, report number ...)."""
        return None

    @property
    def commodity_codes(self) -> tuple[str, ...]:
        return ()

    @property
    def origin_countries(self) -> frozenset[str]:
        return frozenset()

    @property
    def trader_ids(self) -> frozenset[str]:
        """The identifications of the parties (declarant, importer ...) the message names."""
        return frozenset()

    @property
    def customs_office_codes(self) -> frozenset[str]:
        return frozenset()

    @property
    def function_name(self) -> str | None:
        """original, replacement, cancellation ... where the kind has a message function."""
        return None

    def customs_value(self, currency: str) -> Decimal:
        """The declared customs value in ``currency`` (amounts in other currencies left out)."""
        return Decimal(0)

    @property
    def hs_chapters(self) -> frozenset[str]:
        """Harmonized System chapters (two digits) of the goods, for content routing."""
        chapters = set()
        for code in self.commodity_codes:
            digits = code.replace(".", "").strip()
            if len(digits) >= 2 and digits[:2].isdigit():
                chapters.add(digits[:2])
        return frozenset(chapters)


class Equipment(Frozen):
    """EQD: a container or other transport equipment, with its seals (SEL)."""

    qualifier: str = coded("UNTDID 8053", "CN container", required=True)
    id: str | None = None
    size_type: str | None = coded("ISO 6346 size and type", "45G1")
    full_or_empty: str | None = coded("UNTDID 8169", "5 full, 4 empty")
    seals: tuple[str, ...] = ()
