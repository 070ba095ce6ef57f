"""Characters no repertoire holds, found and placed (0085 = 21: invalid character(s)).

NUL, the other controls, noncharacters and undecodable bytes are in no EDIFACT character
repertoire (``syntax.invalid_characters``), whatever the syntax identifier.  Clean text costs
one C-speed pass over the segments' text; only when it finds something are the segments that
hold one split, to place a finding at each segment, data element and component concerned, and
never more findings than a level tells (so a file full of NULs costs no more than its size).
Undecodable bytes are replaced by U+FFFD, so no later stage (and no column) ever sees a lone
surrogate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from gateway.model.edifact import Segment
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.wire.edifact import syntax
from gateway.wire.edifact.decoding import DecodedInterchange
from gateway.wire.edifact.lexer import Lexed, Lexer

REPLACEMENT = "\ufffd"


@dataclass(frozen=True, slots=True)
class CharacterCheck:
    """An interchange lexed twice over: ``lexed`` for every later stage (undecodable bytes
    replaced), ``received`` as it came, where the invalid characters are looked for."""

    lexed: Lexed
    received: Lexed
    decoded: DecodedInterchange
    lexer: Lexer

    @property
    def clean(self) -> bool:
        return not self.received.screened

    def findings(self, first: int, last: int, limit: int) -> list[Finding]:
        """At most ``limit`` findings for the segments at positions ``first``..``last``
        (1-based, as lexed), and for the text after the last segment when ``last`` is past
        it."""
        if self.clean:
            return []
        return list(islice(self._findings(first, last), limit))

    def _findings(self, first: int, last: int) -> Iterator[Finding]:
        invalid = syntax.invalid_characters(self.decoded.delimiters).pattern
        segments = self.received.segments
        for segment in segments[max(first - 1, 0) : last]:
            if invalid.search(segment.raw) is not None:
                yield from _segment_findings(segment, self.lexer, invalid, self.decoded)
        if last > len(segments):
            found = invalid.search(self.received.unterminated)
            if found is not None:
                yield Finding(SyntaxErrorCode.INVALID_CHARACTERS,
                              f"{_what(found.group(), self.decoded)} after the last segment",
                              segment_position=len(segments) + 1)


def lex_checked(decoded: DecodedInterchange) -> CharacterCheck:
    """Lex the decoded text and screen its segments and the text after them for characters no
    repertoire holds.  White space between segments is not looked at: the lexer takes it away
    (CR LF after a terminator is common); inside a segment, CR, LF and TAB are as invalid as
    any other control character."""
    lexer = Lexer(decoded.delimiters)
    invalid = syntax.invalid_characters(decoded.delimiters)
    received = lexer.lex(decoded.text, screen=invalid.found_in)
    lexed = _repaired(received, lexer) if received.screened else received
    return CharacterCheck(lexed, received, decoded, lexer)


def _segment_findings(segment: Segment, lexer: Lexer, invalid: re.Pattern[str],
                      decoded: DecodedInterchange) -> Iterator[Finding]:
    """A finding for the tag, and for each component, that holds an invalid character."""
    tag = segment_tag(segment.tag)
    for element, text in enumerate(lexer.data_elements(segment.raw)):
        found = invalid.search(text)
        if found is None:
            continue
        if element == 0:
            yield Finding(SyntaxErrorCode.INVALID_CHARACTERS,
                          f"{_what(found.group(), decoded)} in the segment tag", tag,
                          segment.position)
            continue
        for occurrence in lexer.occurrences(text):
            components = lexer.components(occurrence)
            for number, component in enumerate(components, start=1):
                found = invalid.search(component)
                if found is not None:
                    # S011 0104 names a component of a composite; a simple element has none
                    yield Finding(SyntaxErrorCode.INVALID_CHARACTERS,
                                  _what(found.group(), decoded), tag, segment.position,
                                  element, number if len(components) > 1 else None)


def _what(character: str, decoded: DecodedInterchange) -> str:
    if character in syntax.UNDECODABLE:
        return (f"byte 0x{ord(character) - 0xDC00:02X} is not in the declared character set "
                f"({decoded.syntax_identifier}: {decoded.codec})")
    kind = "noncharacter" if character in syntax.NONCHARACTERS else "control character"
    return f"the {kind} U+{ord(character):04X} is in no EDIFACT character repertoire"


def _repaired(lexed: Lexed, lexer: Lexer) -> Lexed:
    """``lexed`` with each undecodable byte replaced by U+FFFD (segments rebuilt only where
    there is one)."""
    segments = [segment if (raw := _replace_undecodable(segment.raw)) is segment.raw
                else lexer.segment(raw, segment.position) for segment in lexed.segments]
    return Lexed(segments, _replace_undecodable(lexed.unterminated), lexed.screened)


def _replace_undecodable(text: str) -> str:
    if syntax.UNDECODABLE_CHARACTER.search(text) is None:
        return text
    return syntax.UNDECODABLE_CHARACTER.sub(REPLACEMENT, text)


def segment_tag(tag: str) -> str:
    """A segment tag fit to name in a finding: an ISO 9735 tag is three letters or digits;
    anything else a partner put there is left out (the position still says where)."""
    return tag if len(tag) == 3 and tag.isascii() and tag.isalnum() else ""
