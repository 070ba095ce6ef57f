"""Building blocks shared by canonical messages.  Codes keep the code list they come from in
their field name (e.g. ``role`` is UNTDID 3035) so agencies can look them up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


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

    role: str
    id: str | None = None
    id_agency: str | None = None
    name: str | None = None
    street: str | None = None
    city: str | None = None
    postcode: str | None = None
    country: str | None = None


class Location(Frozen):
    """LOC: ``qualifier`` is UNTDID 3227 (e.g. 22 customs office of clearance, 27 origin)."""

    qualifier: str
    code: str
    code_list: str | None = None
    name: str | None = None


class DateValue(Frozen):
    """DTM: ``qualifier`` is UNTDID 2005; ``value`` is the date when its 2379 format is known."""

    qualifier: str
    text: str = ""
    format: str | None = None
    value: dt.datetime | dt.date | None = None


class Measurement(Frozen):
    """MEA: purpose (6311), dimension (6313), value with its unit (6411)."""

    purpose: str
    dimension: str | None = None
    value: Decimal | None = None
    unit: str | None = None


class Amount(Frozen):
    """MOA: ``qualifier`` is UNTDID 5025 (e.g. 40 customs value); currency ISO 4217."""

    qualifier: str
    value: Decimal
    currency: str | None = None


class Document(Frozen):
    """DOC: document name code (1001) and number."""

    code: str
    number: str | None = None


class Reference(Frozen):
    """RFF: ``qualifier`` is UNTDID 1153."""

    qualifier: str
    value: str


class Transport(Frozen):
    """TDT: stage (8051), mode (8067), means identification and nationality."""

    stage: str
    conveyance_reference: str | None = None
    mode: str | None = None
    means_type: str | None = None
    carrier: str | None = None
    means_id: str | None = None
    means_name: str | None = None
    nationality: str | None = None


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

    qualifier: str = Field(description="UNTDID 8053 equipment qualifier, e.g. CN container")
    id: str | None = None
    size_type: str | None = Field(default=None, description="ISO 6346 size-type code")
    full_or_empty: str | None = Field(default=None, description="UNTDID 8169, e.g. 5 full")
    seals: tuple[str, ...] = ()
