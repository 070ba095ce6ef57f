"""Service string advice and character sets (ISO 9735-1 clauses 6 and 8, annex A)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from gateway.model.edifact import Delimiters

BYTE_ORDER_MARK = b"\xef\xbb\xbf"
#: "UNA" followed by the six service characters (ISO 9735-1 clause 8).
UNA_LENGTH = 9

#: Level A default separators (ISO 9735-1 clause 8.1): used when no UNA is given.
LEVEL_A = Delimiters()
#: Level B default separators are information separators IS1/IS3/IS4 (ISO 9735-1 annex A).
LEVEL_B = Delimiters(component="\x1f", element="\x1d", terminator="\x1c", repetition="\x19")

#: ISO 9735-1 annex A: the level A repertoire (upper-case letters, digits, space and
#: . , - ( ) / = ' + : ? ! " % & * ; < >); level B adds lower-case letters and more.  The
#: other syntax identifiers take their whole character set (CODECS) less INVALID characters.
LEVEL_A_REPERTOIRE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-()/='+:?!\"%&*;<>")
LEVEL_B_REPERTOIRE = LEVEL_A_REPERTOIRE | frozenset("abcdefghijklmnopqrstuvwxyz#@[]{}\\|~_^`$")
REPERTOIRES: dict[str, frozenset[str]] = {
    "UNOA": LEVEL_A_REPERTOIRE, "UNOB": LEVEL_B_REPERTOIRE,
    "IATA": LEVEL_A_REPERTOIRE, "IATB": LEVEL_B_REPERTOIRE}

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


#: Characters no EDIFACT character repertoire holds (ISO 9735-1 clause 6 and the 0001 code
#: list): levels A and B are the graphic characters of ISO 646, levels C to L those of the
#: ISO/IEC 8859 parts, UNOW/UNOY the characters of ISO/IEC 10646.  None has the C0 controls, DEL
#: or the C1 controls (U+0080-U+009F, which a Latin-1 decoder makes of bytes 0x80-0x9F, say
#: UTF-8 sent under UNOC); level B's information separators stand only as service characters.
CONTROL_CHARACTERS = frozenset(map(chr, [*range(0x20), 0x7F, *range(0x80, 0xA0)]))
#: ISO/IEC 10646 noncharacters (U+FDD0-U+FDEF and the last two code points of every plane):
#: reserved for a process's own use, never interchanged (Unicode 15.0 clause 23.7).
NONCHARACTERS = frozenset(
    [*map(chr, range(0xFDD0, 0xFDF0)),
     *(chr(plane + last) for plane in range(0, 0x110000, 0x10000) for last in (0xFFFE, 0xFFFF))])
#: What decoding makes of a byte the declared character set does not hold: U+DC80-U+DCFF, the
#: byte plus 0xDC00 (PEP 383 "surrogateescape"), a lone surrogate no decoded character can be.
UNDECODABLE = frozenset(map(chr, range(0xDC80, 0xDD00)))
UNDECODABLE_CHARACTER = re.compile("[\udc80-\udcff]")
DECODING_ERRORS = "surrogateescape"
#: Characters that may stand in a UNA besides graphic ones: level B's separators.
LEVEL_B_SEPARATORS = frozenset({LEVEL_B.component, LEVEL_B.element, LEVEL_B.terminator,
                                LEVEL_B.repetition})


def service_characters(delimiters: Delimiters) -> frozenset[str]:
    """The service characters an interchange uses (a space for "not used" is none)."""
    d = delimiters
    return frozenset({d.component, d.element, d.terminator, d.release, d.repetition} - {""})


@dataclass(frozen=True, slots=True)
class InvalidCharacters:
    """The characters that may not stand in the data of an interchange with given service
    characters: the controls no repertoire holds (except the service characters in use: level
    B separates with IS1-IS4), noncharacters, and undecodable bytes."""

    #: Every invalid character, one class: to locate and replace them.
    pattern: re.Pattern[str]
    #: The same without the noncharacters beyond U+FFFF, which make the class slow in ``re``.
    basic: re.Pattern[str]
    #: The valid characters of Latin-1 as bytes: ``bytes.translate`` deletes them.
    valid_latin1: bytes

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds an invalid character, in one C-speed pass: text within
        Latin-1 (every syntax but UNOW/UNOY, and most UTF-8 text) is encoded and screened with
        ``bytes.translate`` (ten times the speed of a regular expression); other text is
        searched, with the slow class only when it holds characters beyond U+FFFF."""
        try:
            octets = text.encode("latin-1")
        except UnicodeEncodeError:
            beyond = len(text.encode("utf-16-le", "surrogatepass")) > 2 * len(text)
            return (self.pattern if beyond else self.basic).search(text) is not None
        return bool(octets.translate(None, self.valid_latin1))


def invalid_characters(delimiters: Delimiters) -> InvalidCharacters:
    """The invalid characters of an interchange with these delimiters."""
    return _invalid_characters("".join(sorted(service_characters(delimiters)
                                              & CONTROL_CHARACTERS)))


@lru_cache(maxsize=8)  # keyed by the control characters in use: level A, level B, a few others
def _invalid_characters(allowed: str) -> InvalidCharacters:
    characters = (CONTROL_CHARACTERS | NONCHARACTERS | UNDECODABLE) - set(allowed)
    return InvalidCharacters(
        pattern=_character_class(characters),
        basic=_character_class({ch for ch in characters if ch <= "\uffff"}),
        valid_latin1=bytes(code for code in range(0x100) if chr(code) not in characters),
    )


def _character_class(characters: set[str] | frozenset[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(characters)) + "]")


#: Position of each UNA character (ISO 9735-1 clause 8), 1-based as in UNA1..UNA6.
UNA_POSITIONS = ("component data element separator", "data element separator", "decimal mark",
                 "release character", "repetition separator", "segment terminator")
#: UNA4 and UNA5 may be a space: "not used" (syntax 3 reserves UNA5).
UNA_MAY_BE_SPACE = frozenset({4, 5})


def una_problem(advice: str) -> str | None:
    """What makes a UNA unusable, or None.  ISO 9735-1 clause 8 (and the UNA notes of the
    guides built on it): each of the six characters serves one purpose only, so no character
    stands in two positions; a separator, the decimal mark and the terminator are never a
    space; and a service character is a character of the repertoire or one of level B's
    separators, never another control character (NUL, CR, LF, DEL, a C1 control ...)."""
    chars = advice[3:UNA_LENGTH]
    used: dict[str, int] = {}
    for position, ch in enumerate(chars, start=1):
        name = f"UNA{position} ({UNA_POSITIONS[position - 1]})"
        if ch == " ":
            if position not in UNA_MAY_BE_SPACE:
                return f"{name} is a space"
            continue
        if ch in CONTROL_CHARACTERS - LEVEL_B_SEPARATORS:
            return f"{name} is the control character U+{ord(ch):04X}"
        if ch in used:
            return f"{name} repeats UNA{used[ch]}: {ch!r} serves two purposes"
        used[ch] = position
    return None


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


#: Sets of service characters whose segment patterns are kept, by the envelope reader and by
#: each message's validator (least recently used dropped first).  Partners use a few (level A
#: and B, with or without syntax 4's repetition separator); the UNA is the partner's to choose,
#: so what is kept must be bounded.
PATTERN_SETS = 8


def pattern_key(delimiters: Delimiters) -> Delimiters:
    """What a segment pattern depends on: the delimiters with the decimal mark and the
    terminator put back to level A's.  Neither changes a pattern (a number's pattern reads
    both marks; the terminator is not in a segment's text), so UNAs that differ only there
    share their patterns.  Asked per message: level A's own cost no copy."""
    if (delimiters.decimal, delimiters.terminator) == (LEVEL_A.decimal, LEVEL_A.terminator):
        return delimiters
    return replace(delimiters, decimal=LEVEL_A.decimal, terminator=LEVEL_A.terminator)


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
