"""Building blocks shared by canonical messages.  Codes keep the code list they come from in
their field name (e.g. ``role`` is UNTDID 3035) so agencies can look them up.

What routing reads (commodity codes and their HS chapters, countries of origin, customs
offices, trader identifications, amounts with their qualifier and currency) is held in one
spelling only: a value in another script's digits, full-width letters, lower case or with
control characters would otherwise slip past a rule written for the plain one (HS 0302 in
Arabic-Indic digits once skipped the quarantine rule for chapters 01-24).  The types below
normalise what has one plain spelling (lower-case letters, the dots of a commodity code) and
refuse the rest; the mapping puts each value through its field's type where it reads it, so
a refusal is answered at its segment and element.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from gateway.model.findings import shown
from gateway.model.numbers import MAX_NUMBER_DIGITS


class _Spelling:
    """Text with one plain spelling: put through ``prepare`` (ASCII only: ``str.upper`` would
    also turn a full-width letter into another full-width letter), then held to ``pattern``,
    else refused.  One object both checks the value (once) and tells the JSON Schema the
    pattern, so the pattern is written once."""

    __slots__ = ("_pattern", "_prepare", "_what")

    def __init__(self, pattern: str, what: str,
                 prepare: Callable[[str], str] = str.upper) -> None:
        self._pattern = re.compile(pattern)
        self._what = what
        self._prepare = prepare

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the field's own type refuses it
        plain = self._prepare(value) if value.isascii() else value
        if self._pattern.fullmatch(plain) is None:
            raise ValueError(f"{shown(value)} is not {self._what}")
        return plain

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = f"^{self._pattern.pattern}$"
        return json_schema


def _commodity_digits(text: str) -> str:
    return text.replace(".", "").replace(" ", "")


#: A Harmonized System / tariff code: the digits 0-9 only, at least the two of its chapter
#: (the dots and spaces partners write between the digit groups are dropped: 0303.55 is 030355).
CommodityCode = Annotated[str, _Spelling(
    "[0-9]{2,18}", "a commodity code (digits 0-9, dots or spaces between them; at least the "
    "two digits of its HS chapter)", _commodity_digits)]
#: ISO 3166-1 alpha-2, upper case.
CountryCode = Annotated[str, _Spelling(
    "[A-Z]{2}", "an ISO 3166-1 alpha-2 country code (two letters A-Z)")]
#: ISO 4217, upper case.
CurrencyCode = Annotated[str, _Spelling(
    "[A-Z]{3}", "an ISO 4217 currency code (three letters A-Z)")]
#: A code of a UN/EDIFACT code list (a qualifier such as UNTDID 5025's 40): letters A-Z and
#: digits 0-9, upper case.
ListCode = Annotated[str, _Spelling("[A-Z0-9]{1,17}", "a code (letters A-Z and digits 0-9)")]
#: A customs office (UN/LOCODE TWKHH, or a national office number such as NL000396).
OfficeCode = Annotated[str, _Spelling(
    "[A-Z0-9]{1,35}", "a customs office code (letters A-Z and digits 0-9)")]
#: A party's identification (GS1 GLN, EORI, a tax number ...): printable ASCII without control
#: characters, spaces at its ends dropped; kept in its case (registries compare it as is).
TraderId = Annotated[str, _Spelling(
    "[!-~](?:[ -~]{0,33}[!-~])?", "an identification (printable ASCII, at most 35 characters)",
    lambda text: text.strip(" "))]
#: An amount or quantity: what the numeric representation can carry (ISO 9735-1 clause 10):
#: finite, at most ``MAX_NUMBER_DIGITS`` digits.
Number = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=MAX_NUMBER_DIGITS)]


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
    id: TraderId | None = None
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
    value: Number | None = None
    unit: str | None = coded("UN/ECE Recommendation 20", "KGM kilogram")


class Amount(Frozen):
    """MOA: ``qualifier`` is UNTDID 5025 (e.g. 40 customs value); currency ISO 4217."""

    qualifier: ListCode = coded("UNTDID 5025", "40 customs value", required=True)
    value: Number
    currency: CurrencyCode | None = coded("ISO 4217", "USD")


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
    def responsible_trader_ids(self) -> frozenset[str]:
        """The identifications of the parties answerable for the message (a declaration's
        declarant, representative, importer or exporter): only these make it a trusted
        trader's (AEO) message."""
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
        """Harmonized System chapters (two digits) of the goods, for content routing: the
        first two digits of each commodity code (``CommodityCode``: digits only, at least
        two)."""
        return frozenset(code[:2] for code in self.commodity_codes)


class Equipment(Frozen):
    """EQD: a container or other transport equipment, with its seals (SEL)."""

    qualifier: str = coded("UNTDID 8053", "CN container", required=True)
    id: str | None = None
    size_type: str | None = coded("ISO 6346 size and type", "45G1")
    full_or_empty: str | None = coded("UNTDID 8169", "5 full, 4 empty")
    seals: tuple[str, ...] = ()
