"""Values of a message <-> canonical values: numbers with the interchange's decimal mark, dates
and times by their UNTDID 2379 format, in both directions."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.model.findings import shown
from gateway.model.numbers import MAX_NUMBER_DIGITS, is_ascii_digits, parse_count, parse_decimal

#: UNTDID 2379 formats read and written: code -> (strptime pattern, has time, has zone).
DATE_FORMATS: dict[str, tuple[str, bool, bool]] = {
    "101": ("%y%m%d", False, False),        # YYMMDD
    "102": ("%Y%m%d", False, False),        # CCYYMMDD
    "201": ("%y%m%d%H%M", True, False),     # YYMMDDHHMM
    "203": ("%Y%m%d%H%M", True, False),     # CCYYMMDDHHMM
    "204": ("%Y%m%d%H%M%S", True, False),   # CCYYMMDDHHMMSS
    "303": ("%Y%m%d%H%M", True, True),      # CCYYMMDDHHMMZZZ
    "304": ("%Y%m%d%H%M%S", True, True),    # CCYYMMDDHHMMSSZZZ
}
#: What rendering writes: a zone-aware date and time, to the second.
WRITE_DATETIME = "304"
WRITE_DATE = "102"

#: 2379 leaves the form of ZZZ open: read a zone name of UTC or a signed offset (+01, +0100,
#: +01:00); write the offset as +HHMM.  ASCII digits only ("\\d" takes any script's).
_ZONE = re.compile(r"(?:(?P<utc>UTC|GMT|Z)|(?P<sign>[+-])(?P<h>[0-9]{2}):?(?P<m>[0-9]{2})?)")
_UTC_NAMES = ("UTC", "GMT", "Z")
MAX_OFFSET_HOURS = 14


class ConversionError(ValueError):
    """A value that is not what its conversion reads; the caller says where it stood, with
    ``syntax_error_code`` (0085): 12 invalid value, 37 invalid type of characters."""

    def __init__(self, text: str, syntax_error_code: int = 12) -> None:
        super().__init__(text)
        self.syntax_error_code = syntax_error_code


def to_decimal(text: str) -> Decimal:
    """The numeric representation only (ISO 9735-1 clause 10): digits 0-9, a decimal mark
    ('.' or ',', whichever the UNA names: both are read), a leading minus; no exponent, no
    infinity, no digits of other scripts, no more digits than a numeric element holds."""
    value = parse_decimal(text)
    if value is None:
        raise ConversionError(f"{shown(text)} is not a number (digits 0-9, one decimal mark, "
                              f"a leading minus, at most {MAX_NUMBER_DIGITS} digits)", 37)
    return value


def to_integer(text: str) -> int:
    value = parse_count(text)
    if value is None:
        raise ConversionError(f"{shown(text)} is not a whole number (digits 0-9)", 37)
    return value


def from_decimal(value: Decimal) -> str:
    """Plain notation (never 1E+3): EDIFACT numbers have no exponent."""
    return format(value, "f")


def supported_format(code: str) -> bool:
    return code in DATE_FORMATS


def to_date(text: str, code: str, zone: ZoneInfo) -> dt.datetime | dt.date:
    """A date (for date-only formats) or a zone-aware datetime; a time without a zone is in
    ``zone`` (the mapping's ``time_zone``)."""
    pattern, has_time, has_zone = DATE_FORMATS[code]
    body, zone_text = text, ""
    if has_zone:
        split = _zone_start(text)
        body, zone_text = text[:split], text[split:]
    wrong = ConversionError(f"{shown(text)} is not a date in UNTDID 2379 format {code}")
    # strptime reads any script's digits, a one-digit month or day and a day after a space
    # ("2026112" is 2 November): the 2379 formats are fixed-width ASCII digits
    if not (is_ascii_digits(body) and len(body) == _width(pattern)):
        raise wrong
    try:
        parsed = dt.datetime.strptime(body, pattern)
    except ValueError as exc:
        raise wrong from exc
    if not has_time:
        return parsed.date()
    return parsed.replace(tzinfo=_zone(zone_text, text) if has_zone else zone)


def from_date(value: dt.datetime | dt.date) -> tuple[str, str]:
    """(text, 2379 code) for a canonical date or datetime."""
    if not isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d"), WRITE_DATE
    if value.tzinfo is None:
        return value.strftime("%Y%m%d%H%M%S"), "204"
    offset = value.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return value.strftime("%Y%m%d%H%M%S") + f"{sign}{hours:02d}{rest:02d}", WRITE_DATETIME


def _width(pattern: str) -> int:
    """Digits a strptime pattern of the 2379 formats reads: four for %Y, two for the rest."""
    return sum(4 if directive == "Y" else 2 for directive in pattern[1::2])


def _zone_start(text: str) -> int:
    for name in _UTC_NAMES:
        if text.endswith(name):
            return len(text) - len(name)
    for index in range(len(text) - 1, -1, -1):
        if text[index] in "+-":
            return index
    return len(text)


def _zone(text: str, whole: str) -> dt.tzinfo:
    found = _ZONE.fullmatch(text)
    if not found:
        raise ConversionError(f"{shown(whole)}: {shown(text)} is not a time zone (UTC, +01, "
                              "+0100)")
    if found.group("utc"):
        return dt.UTC
    hours, minutes = int(found.group("h")), int(found.group("m") or 0)
    if hours > MAX_OFFSET_HOURS or minutes >= 60:  # UTC offsets in use run from -12 to +14
        raise ConversionError(f"{shown(whole)}: {shown(text)} is not a time zone offset")
    sign = -1 if found.group("sign") == "-" else 1
    return dt.timezone(dt.timedelta(minutes=sign * (hours * 60 + minutes)))
