"""Digits and counts as ISO 9735 spells them.

The EDIFACT numeric representation (ISO 9735-1 clause 10) is built from the digits 0-9 of the
basic repertoire only.  Python's ``str.isdigit`` and ``int`` accept far more: ``'²'.isdigit()`` is
true and ``int('²')`` raises; ``int('٠٣')`` is 3; ``int`` refuses a string of more than 4,300
digits.  Partner values go through these helpers instead, which never raise.
"""

from __future__ import annotations

ASCII_DIGITS = frozenset("0123456789")
#: No count in an interchange (UNT 0074 n..10, UNZ 0036 n..6) needs more digits than this.
MAX_COUNT_DIGITS = 18


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
