"""Digits, numbers and counts as ISO 9735 spells them.

The EDIFACT numeric representation (ISO 9735-1 clause 10) is built from the digits 0-9 of the
basic repertoire only.  Python's ``str.isdigit``, ``int``, ``Decimal`` and the regular-expression
class ``\\d`` accept far more: ``'²'.isdigit()`` is true and ``int('²')`` raises; ``int('٠٣')``
is 3; ``Decimal`` reads full-width digits (U+FF10..FF19), ``1E999999999``, ``Infinity`` and
``1_000``; ``int`` refuses a string of more than 4,300 digits.  Partner values go through these
helpers instead, which never raise.

The character classes are defined here once, as the bodies of regular-expression classes, and
used both by the validator's quick pass (``pipeline/patterns.py``) and by its detailed check
(``pipeline/validate.format_error``), so the two can never disagree on what a digit is.
"""

from __future__ import annotations

import functools
import re
import sys
from decimal import Decimal

ASCII_DIGITS = frozenset("0123456789")
#: No count in an interchange (UNT 0074 n..10, UNZ 0036 n..6) needs more digits than this.
MAX_COUNT_DIGITS = 18
#: The digits of the numeric representation, as the body of a regular-expression class.
DIGIT = "0-9"
#: ISO 9735-1 clause 10: the decimal mark is a full stop or a comma (the UNA names one; both
#: are read), also as the body of a regular-expression class.
DECIMAL_MARKS = ".,"
#: The sign of a negative number: a leading minus, never a plus (ISO 9735-1 clause 10).
MINUS = "-"
#: The longest numeric representation of the directories (n..35, e.g. D01B 5004): no number a
#: partner sends may have more digits.
MAX_NUMBER_DIGITS = 35
#: The unsigned part of a number: digits with at most one decimal mark, at least one digit.
UNSIGNED = rf"(?:[{DIGIT}]+(?:[{DECIMAL_MARKS}][{DIGIT}]*)?|[{DECIMAL_MARKS}][{DIGIT}]+)"
_NUMERIC = re.compile(rf"{MINUS}?{UNSIGNED}")


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty string of the digits 0-9 and nothing else."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_count(text: str) -> int | None:
    """A partner's count or numeric reference as an int; None when it is not one (empty,
    signed, non-ASCII digits, or longer than any count can be once leading zeros are gone)."""
    if not is_ascii_digits(text):
        return None
    significant = text.lstrip("0")
    if len(significant) > MAX_COUNT_DIGITS:
        return None
    return int(significant or "0")


def numeric_length(text: str) -> int | None:
    """The length of a number in the numeric representation, which leaves out the sign and
    the decimal mark (ISO 9735-1 clause 10); None when ``text`` is not one: no exponent, no
    infinity or NaN, no plus, no white space, no digits but 0-9."""
    if _NUMERIC.fullmatch(text) is None:
        return None
    marks = 1 if "." in text or "," in text else 0
    return len(text) - text.startswith(MINUS) - marks


def parse_decimal(text: str) -> Decimal | None:
    """A partner's number as a Decimal, or None when it is not in the numeric representation
    or has more digits than any numeric data element (``MAX_NUMBER_DIGITS``)."""
    length = numeric_length(text)
    if length is None or length > MAX_NUMBER_DIGITS:
        return None
    return Decimal(text.replace(",", "."))  # only 0-9, one mark and a sign: always a number


@functools.cache
def any_digit_class() -> str:
    """Every character ``str.isdigit`` takes (the digits of every script, superscripts,
    circled digits ...) as the body of a regular-expression class: what an alphabetic (``a``)
    value must not hold.  Worked out once from the Unicode database of this Python."""
    ranges: list[tuple[int, int]] = []
    for point in range(sys.maxunicode + 1):
        if chr(point).isdigit():
            if ranges and ranges[-1][1] == point - 1:
                ranges[-1] = (ranges[-1][0], point)
            else:
                ranges.append((point, point))
    return "".join(re.escape(chr(first)) + (f"-{re.escape(chr(last))}" if last > first else "")
                   for first, last in ranges)


@functools.cache
def _any_digit() -> re.Pattern[str]:
    return re.compile(f"[{any_digit_class()}]")


def has_any_digit(text: str) -> bool:
    """True when ``text`` holds a digit of any script (``any_digit_class``)."""
    return _any_digit().search(text) is not None
