"""Service string advice and character sets (ISO 9735-1 clauses 6 and 8, annex A)."""

from __future__ import annotations

from gateway.model.edifact import Delimiters

BYTE_ORDER_MARK = b"\xef\xbb\xbf"
#: "UNA" followed by the six service characters (ISO 9735-1 clause 8).
UNA_LENGTH = 9

#: Level A default separators (ISO 9735-1 clause 8.1): used when no UNA is given.
LEVEL_A = Delimiters()
#: Level B default separators are information separators IS1/IS3/IS4 (ISO 9735-1 annex A).
LEVEL_B = Delimiters(component="\x1f", element="\x1d", terminator="\x1c", repetition="\x19")

#: Syntax identifier (UNB S001 0001) -> Python codec.  UNOA/UNOB are subsets of ISO 646
#: (ASCII); UNOC..UNOK are ISO 8859 parts 1-9; UNOW/UNOY are ISO 10646 in UTF-8 (syntax 4).
#: IATA/IATB are the IATA variants of level A/B used by airline messages.
CODECS: dict[str, str] = {
    "UNOA": "ascii",
    "UNOB": "ascii",
    "UNOC": "latin-1",
    "UNOD": "iso8859_2",
    "UNOE": "iso8859_5",
    "UNOF": "iso8859_7",
    "UNOG": "iso8859_3",
    "UNOH": "iso8859_4",
    "UNOI": "iso8859_6",
    "UNOJ": "iso8859_8",
    "UNOK": "iso8859_9",
    "UNOL": "iso8859_15",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
    "IATA": "ascii",
    "IATB": "ascii",
}


def parse_una(advice: str) -> Delimiters:
    """Read the six service characters of a UNA (component, element, decimal, release,
    repetition or reserved, terminator).  A space in the release position means "no release
    character" (ISO 9735-1 clause 8); a space in the repetition position means syntax 3's
    "reserved, not used"."""
    chars = advice[3:UNA_LENGTH]
    return Delimiters(
        component=chars[0],
        element=chars[1],
        decimal=chars[2],
        release="" if chars[3] == " " else chars[3],
        repetition="" if chars[4] == " " else chars[4],
        terminator=chars[5],
    )


def default_delimiters(after_tag: str) -> Delimiters:
    """The defaults for an interchange without UNA, told apart by the byte after ``UNB``."""
    return LEVEL_B if after_tag == LEVEL_B.element else LEVEL_A


def for_syntax_version(delimiters: Delimiters, version: str) -> Delimiters:
    """Syntax version 3 has no repetition separator: drop it so ``*`` stays data."""
    if version.strip() in {"1", "2", "3"} and delimiters.repetition:
        return Delimiters(
            component=delimiters.component,
            element=delimiters.element,
            decimal=delimiters.decimal,
            release=delimiters.release,
            repetition="",
            terminator=delimiters.terminator,
        )
    return delimiters
