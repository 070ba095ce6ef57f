"""The canonical licence (permit) a licensing agency issues: what the gateway checks the goods
items of a declaration against before it delivers the declaration (issue 15, G2G licence check;
docs/licences.md).

An agency publishes each version of a licence on the licences exchange; a higher
``amendment`` replaces the one held, and a revocation is an amendment with status
``revoked``.  Only the issuing agency may publish, amend or revoke it."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from gateway.model.canonical.common import Frozen, Number, TraderId, coded

#: UNTDID 1001 document name codes a goods item cites a licence with (CUSDEC SG37 DOC,
#: DEC-DMS AdditionalDocument TypeCode): 911 import licence, 811 export licence.
IMPORT_LICENCE = "911"
EXPORT_LICENCE = "811"
LICENCE_DOCUMENTS: dict[str, Literal["import", "export"]] = {
    IMPORT_LICENCE: "import", EXPORT_LICENCE: "export"}

LicenceKind = Literal["import", "export"]
LicenceStatus = Literal["active", "revoked"]

#: A licence number as agencies write it (printable ASCII, at most 35 characters: what a
#: CUSDEC DOC 1004 holds).
LicenceNumber = TraderId


class Licence(Frozen):
    """One version of a licence, as its issuing agency published it."""

    kind: Literal["Licence"] = "Licence"
    schema_version: str = "1"
    number: LicenceNumber
    holder: TraderId = Field(description="the trader the licence is issued to: the importer "
                             "(NAD+IM) of an import licence, the exporter (NAD+EX) of an export "
                             "licence")
    issuing_agency: str = Field(min_length=1, max_length=64)
    licence_kind: LicenceKind
    commodity_codes: tuple[str, ...] = Field(
        min_length=1, max_length=500, description="HS codes or prefixes covered, digits only "
        "(dots and spaces are ignored): '0303' covers every code starting 0303")
    quantity: Number = Field(gt=0)
    unit: str = coded("UN/ECE Recommendation 20", "KGM kilogram", required=True)
    valid_from: dt.date
    valid_until: dt.date
    status: LicenceStatus = "active"
    amendment: int = Field(default=0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _sane(self) -> Licence:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        for code in self.commodity_codes:
            digits = commodity_digits(code)
            if not 2 <= len(digits) <= 18:
                raise ValueError(f"commodity code {code[:20]!r}: 2 to 18 digits")
        if not 1 <= len(self.unit) <= 8 or not self.unit.isascii() or not self.unit.isalnum():
            raise ValueError("unit: a UN/ECE Recommendation 20 code (letters and digits)")
        return self


def commodity_digits(code: str) -> str:
    """A commodity code's digits, as ASCII (dots and spaces between them dropped); other
    characters are kept, so a code that is not digits never matches one that is."""
    return code.replace(".", "").replace(" ", "")
