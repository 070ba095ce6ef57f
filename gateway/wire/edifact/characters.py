"""Characters no repertoire holds, found and placed (0085 = 21: invalid character(s)).

NUL, the other controls, noncharacters and undecodable bytes are in no EDIFACT character
repertoire (``syntax.invalid_characters``), whatever the syntax identifier.  Clean text costs
one C-speed pass over the segments' text; only when it finds something are the segments that
hold one split, to place a finding at each segment, data element and component concerned.
Undecodable bytes are then replaced by U+FFFD, so no later stage (and no column) ever sees a
lone surrogate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.model.edifact import Segment
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.wire.edifact import syntax
from gateway.wire.edifact.decoding import DecodedInterchange
from gateway.wire.edifact.lexer import Lexed, Lexer

#: How much of a partner's value a finding's text shows.
SHOWN_LENGTH = 35
REPLACEMENT = "\ufffd"


@dataclass(frozen=True, slots=True)
class Checked:
    """The segments (undecodable bytes replaced) and a finding for each component, segment
    tag or unterminated rest that holds a character no repertoire holds."""

    lexed: Lexed
    findings: tuple[Finding, ...]


def lex_checked(decoded: DecodedInterchange) -> Checked:
    """Lex the decoded text and find the characters no repertoire holds in its segments and in
    the text after them.  White space between segments is not looked at: the lexer takes it
    away (CR LF after a terminator is common); inside a segment, CR, LF and TAB are as invalid
    as any other control character."""
    lexer = Lexer(decoded.delimiters)
    invalid = syntax.invalid_characters(decoded.delimiters)
    lexed = lexer.lex(decoded.text, screen=invalid.found_in)
    if not lexed.screened:
        return Checked(lexed, ())
    return _located(lexed, lexer, invalid.pattern, decoded)


def _located(lexed: Lexed, lexer: Lexer, invalid: re.Pattern[str],
             decoded: DecodedInterchange) -> Checked:
    findings: list[Finding] = []
    segments = list(lexed.segments)
    for index, segment in enumerate(segments):
        if invalid.search(segment.raw) is not None:
            findings += _segment_findings(segment, lexer, invalid, decoded)
            segments[index] = _repaired(segment, lexer)
    unterminated = lexed.unterminated
    found = invalid.search(unterminated)
    if found is not None:
        findings.append(Finding(SyntaxErrorCode.INVALID_CHARACTERS,
                                f"{_what(found.group(), decoded)} after the last segment",
                                segment_position=len(segments) + 1))
        unterminated = _replace_undecodable(unterminated)
    return Checked(Lexed(segments, unterminated, screened=True), tuple(findings))


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


def _repaired(segment: Segment, lexer: Lexer) -> Segment:
    raw = _replace_undecodable(segment.raw)
    return segment if raw is segment.raw else lexer.segment(raw, segment.position)


def _replace_undecodable(text: str) -> str:
    """``text`` with each undecodable byte (U+DC80-U+DCFF) replaced by U+FFFD."""
    if syntax.UNDECODABLE_CHARACTER.search(text) is None:
        return text
    return syntax.UNDECODABLE_CHARACTER.sub(REPLACEMENT, text)


def segment_tag(tag: str) -> str:
    """A segment tag fit to name in a finding: an ISO 9735 tag is three letters or digits;
    anything else a partner put there is left out (the position still says where)."""
    return tag if len(tag) == 3 and tag.isascii() and tag.isalnum() else ""


def shown(value: str, limit: int = SHOWN_LENGTH) -> str:
    """A partner's value quoted for a finding's text: bounded, and every control character
    escaped (``repr``), so a text never carries what the value could not."""
    return repr(value[:limit]) + ("..." if len(value) > limit else "")
