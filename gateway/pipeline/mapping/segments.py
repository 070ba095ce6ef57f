"""Readers for the segments many messages share: each turns one segment into a canonical part.

Element positions follow the UN/EDIFACT segment directory (D96B and D01B agree on these).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from gateway.errors import MappingError
from gateway.model.canonical import (
    Amount,
    DateValue,
    Document,
    Location,
    Measurement,
    Party,
    Reference,
    Transport,
)
from gateway.model.edifact import Segment


def optional(value: str) -> str | None:
    return value or None


def decimal(segment: Segment, element: int, component: int, decimal_mark: str) -> Decimal:
    """A numeric value; ISO 9735-1 clause 10: ',' and '.' are both decimal marks."""
    text = segment.value(element, component)
    try:
        return Decimal(text.replace(decimal_mark, ".").replace(",", "."))
    except InvalidOperation as exc:
        raise BadValue(segment, element, component, f"{text!r} is not a number") from exc


class BadValue(MappingError):
    """A value that cannot become its canonical type; says where it stands."""

    syntax_error_code = 12  # 0085: Invalid value

    def __init__(self, segment: Segment, element: int, component: int, reason: str,
                 syntax_error_code: int = 12) -> None:
        super().__init__(f"{segment.tag} element {element}.{component}: {reason}")
        self.syntax_error_code = syntax_error_code
        self.segment = segment
        self.element = element
        self.component = component


def party(nad: Segment) -> Party:
    """NAD: 3035, C082 (3039, 1131, 3055), C058, C080 (3036), C059 (3042), 3164, 3229, 3251,
    3207."""
    name = " ".join(c for c in nad.occurrences(4)[0] if c) if nad.occurrences(4) else ""
    address = nad.value(3, 1)
    return Party(
        role=nad.value(1),
        id=optional(nad.value(2, 1)),
        id_agency=optional(nad.value(2, 3)),
        name=optional(name or address),
        street=optional(nad.value(5, 1)),
        city=optional(nad.value(6)),
        postcode=optional(nad.value(8)),
        country=optional(nad.value(9)),
    )


def location(loc: Segment) -> Location:
    """LOC: 3227, C517 (3225, 1131, 3055, 3224)."""
    return Location(
        qualifier=loc.value(1),
        code=loc.value(2, 1),
        code_list=optional(loc.value(2, 2)),
        name=optional(loc.value(2, 4)),
    )


#: UNTDID 2379 date/time formats this reader turns into typed values.
_DATE_FORMATS = {"102": "%Y%m%d", "203": "%Y%m%d%H%M", "204": "%Y%m%d%H%M%S"}


def date(dtm: Segment) -> DateValue:
    """DTM: C507 (2005 qualifier, 2380 value, 2379 format)."""
    text, fmt = dtm.value(1, 2), dtm.value(1, 3)
    pattern = _DATE_FORMATS.get(fmt or "102")
    value: dt.datetime | dt.date | None = None
    if pattern is not None and text:
        try:
            parsed = dt.datetime.strptime(text, pattern)
        except ValueError as exc:
            raise BadValue(dtm, 1, 2, f"{text!r} is not a date in format {fmt or '102'}") from exc
        value = parsed.date() if (fmt or "102") == "102" else parsed
    return DateValue(qualifier=dtm.value(1, 1), text=text, format=optional(fmt), value=value)


def measurement(mea: Segment, decimal_mark: str) -> Measurement:
    """MEA: 6311, C502 (6313 dimension), C174 (6411 unit, 6314 value)."""
    has_value = bool(mea.value(3, 2))
    return Measurement(
        purpose=mea.value(1),
        dimension=optional(mea.value(2, 1)),
        value=decimal(mea, 3, 2, decimal_mark) if has_value else None,
        unit=optional(mea.value(3, 1)),
    )


def amount(moa: Segment, decimal_mark: str) -> Amount:
    """MOA: C516 (5025 qualifier, 5004 amount, 6345 currency)."""
    return Amount(
        qualifier=moa.value(1, 1),
        value=decimal(moa, 1, 2, decimal_mark),
        currency=optional(moa.value(1, 3)),
    )


def document(doc: Segment) -> Document:
    """DOC: C002 (1001), C503 (1004 document number)."""
    return Document(code=doc.value(1, 1), number=optional(doc.value(2, 1)))


def reference(rff: Segment) -> Reference:
    """RFF: C506 (1153 qualifier, 1154 reference)."""
    return Reference(qualifier=rff.value(1, 1), value=rff.value(1, 2))


def transport(tdt: Segment) -> Transport:
    """TDT: 8051, 8028, C220 (8067), C228 (8179), C040 (3127), 8101, C401, C222 (8213, 1131,
    3055, 8212, 8453)."""
    return Transport(
        stage=tdt.value(1),
        conveyance_reference=optional(tdt.value(2)),
        mode=optional(tdt.value(3, 1)),
        means_type=optional(tdt.value(4, 1)),
        carrier=optional(tdt.value(5, 1)),
        means_id=optional(tdt.value(8, 1)),
        means_name=optional(tdt.value(8, 4)),
        nationality=optional(tdt.value(8, 5)),
    )
