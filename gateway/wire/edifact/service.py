"""The service segments of the envelope (UNB, UNG, UNH, UNT, UNE, UNZ) as ISO 9735 defines
them, per syntax version: what the envelope reader checks each one against, and what the CONTRL
writer may echo of them (a value it writes back must be valid where it stands).

The definitions are those of ``schemas/edifact/service/<version>/segments.json`` and
``codes.json`` (generated from ``directories/php-edifact-mapping`` Service_V3/Service_V4), read
here without I/O: ``tests/unit/test_wire_service.py`` holds the two to the same ids, statuses,
representations and code lists.  Syntax versions 1 and 2 are read with version 3's definitions
(ISO 9735:1988 and its amendment 1 are version 3's predecessors; version 3 only widened them).

Speed: each segment is first matched whole against one precompiled pattern (per syntax version
and set of service characters), whose groups are its values, so a clean UNH or UNT costs one C
call and no split; only a segment the pattern refuses is walked element by element to say what
is wrong.  The pattern may refuse more than the walk (an alphabetic value in other letters than
A-Z, a released character in a code), never less: the walk decides.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.model.edifact import Delimiters, Representation, Segment
from gateway.model.findings import Finding, SyntaxErrorCode, shown
from gateway.model.numbers import has_any_digit, is_ascii_digits
from gateway.wire.edifact.characters import REPLACEMENT, segment_tag
from gateway.wire.edifact.syntax import (
    CONTROL_CHARACTERS,
    NONCHARACTERS,
    PATTERN_SETS,
    REPERTOIRES,
    pattern_key,
    service_characters,
)

Code = SyntaxErrorCode

#: ISO 9735 (syntax 3) and ISO 9735-2 (syntax 4) service segments, element by element:
#: ``id status representation`` for a simple data element, ``id status: component | ...`` for
#: a composite (M mandatory, C conditional; an..14 alphanumeric up to 14, n6 numeric of 6).
_DEFINITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "3": {
        "UNB": ("S001 M: 0001 M a4 | 0002 M n1",
                "S002 M: 0004 M an..35 | 0007 C an..4 | 0008 C an..14",
                "S003 M: 0010 M an..35 | 0007 C an..4 | 0014 C an..14",
                "S004 M: 0017 M n6 | 0019 M n4",
                "0020 M an..14",
                "S005 C: 0022 M an..14 | 0025 C an2",
                "0026 C an..14", "0029 C a1", "0031 C n1", "0032 C an..35", "0035 C n1"),
        "UNG": ("0038 M an..6",
                "S006 M: 0040 M an..35 | 0007 C an..4",
                "S007 M: 0044 M an..35 | 0007 C an..4",
                "S004 M: 0017 M n6 | 0019 M n4",
                "0048 M an..14", "0051 M an..2",
                "S008 M: 0052 M an..3 | 0054 M an..3 | 0057 C an..6",
                "0058 C an..14"),
        "UNH": ("0062 M an..14",
                "S009 M: 0065 M an..6 | 0052 M an..3 | 0054 M an..3 | 0051 M an..2 "
                "| 0057 C an..6",
                "0068 C an..35",
                "S010 C: 0070 M n..2 | 0073 C a1"),
        "UNT": ("0074 M n..6", "0062 M an..14"),
        "UNE": ("0060 M n..6", "0048 M an..14"),
        "UNZ": ("0036 M n..6", "0020 M an..14"),
    },
    "4": {
        "UNB": ("S001 M: 0001 M a4 | 0002 M an1 | 0080 C an..6 | 0133 C an..3 | 0076 C an2",
                "S002 M: 0004 M an..35 | 0007 C an..4 | 0008 C an..35 | 0042 C an..35",
                "S003 M: 0010 M an..35 | 0007 C an..4 | 0014 C an..35 | 0046 C an..35",
                "S004 M: 0017 M n8 | 0019 M n4",
                "0020 M an..14",
                "S005 C: 0022 M an..14 | 0025 C an2",
                "0026 C an..14", "0029 C a1", "0031 C n1", "0032 C an..35", "0035 C n1"),
        "UNG": ("0038 C an..6",
                "S006 C: 0040 M an..35 | 0007 C an..4",
                "S007 C: 0044 M an..35 | 0007 C an..4",
                "S004 C: 0017 M n8 | 0019 M n4",
                "0048 M an..14", "0051 C an..3",
                "S008 C: 0052 M an..3 | 0054 M an..3 | 0057 C an..6",
                "0058 C an..14"),
        "UNH": ("0062 M an..14",
                "S009 M: 0065 M an..6 | 0052 M an..3 | 0054 M an..3 | 0051 M an..3 "
                "| 0057 C an..6 | 0110 C an..6 | 0113 C an..6",
                "0068 C an..35",
                "S010 C: 0070 M n..2 | 0073 C a1",
                "S016 C: 0115 M an..14 | 0116 C an..3 | 0118 C an..3 | 0051 C an..3",
                "S018 C: 0127 M an..14 | 0128 C an..3 | 0130 C an..3 | 0051 C an..3"),
        "UNT": ("0074 M n..10", "0062 M an..14"),
        "UNE": ("0060 M n..6", "0048 M an..14"),
        "UNZ": ("0036 M n..6", "0020 M an..14"),
    },
}

#: The service code lists of the coded service data elements in these segments.
_CODE_LISTS: dict[str, dict[str, str]] = {
    "3": {
        "0002": "1 2 3",
        "0007": "1 4 5 8 9 12 14 18 22 30 31 33 34 51 52 53 54 55 56 57 58 59 61 63 65 80 82 "
                "84 85 86 87 89 90 91 92 ZZZ",
        "0025": "AA BB", "0029": "A", "0031": "1", "0035": "1",
        "0051": "AA AB AC AD CC CE EC ED EE EN ER EU EX IA KE LI OD RI RT UN",
        "0073": "C F",
    },
    "4": {
        "0002": "1 2 3 4",
        "0007": "1 4 5 8 9 12 14 18 22 30 31 33 34 51 52 53 54 55 56 57 58 59 61 63 65 80 82 "
                "84 85 86 87 89 90 91 92 103 128 129 ZZZ",
        "0025": "AA BB", "0029": "A", "0031": "1 2", "0035": "1 2 3 4",
        "0051": "AA AB AC AD AE AF CC CE EC ED EE EN ER EU EX IA KE LI OD RI RT UN",
        "0073": "C F", "0113": "SECACK SECAUT", "0133": "1 2 3 4 ZZZ",
    },
}

#: Code lists the reader does not hold a partner to, and why.  The writer still echoes only
#: listed codes (our answer is checked against them), leaving a conditional one out.
NOT_ENFORCED = {
    # The partner identification code qualifier names whose scheme an identification is in;
    # the interchange agreement (config/partners.py) decides which identities a partner may
    # use, and ISO's list grows with every directory while agreements name their own (the
    # corpus' real interchanges carry ZZ, 31B, 16 and 01).
    "0007",
}
#: The 0085 code for a value outside its code list: 12 (invalid value), but a syntax version
#: no list holds is one the gateway does not support (2).
_OUTSIDE_LIST = {"0002": Code.SYNTAX_VERSION_NOT_SUPPORTED}

#: Names of the service data elements, for finding texts.
NAMES = {
    "S001": "syntax identifier", "0001": "syntax identifier", "0002": "syntax version number",
    "0080": "service code list directory version number", "0133": "character encoding",
    "0076": "syntax release number", "S002": "interchange sender",
    "0004": "interchange sender identification", "0007": "identification code qualifier",
    "0008": "interchange sender internal identification",
    "0042": "interchange sender internal sub-identification", "S003": "interchange recipient",
    "0010": "interchange recipient identification",
    "0014": "interchange recipient internal identification",
    "0046": "interchange recipient internal sub-identification",
    "S004": "date and time of preparation", "0017": "date", "0019": "time",
    "0020": "interchange control reference", "S005": "recipient reference/password details",
    "0022": "recipient reference/password", "0025": "recipient reference/password qualifier",
    "0026": "application reference", "0029": "processing priority code",
    "0031": "acknowledgement request", "0032": "interchange agreement identifier",
    "0035": "test indicator", "0038": "message group identification",
    "S006": "application sender identification", "0040": "application sender identification",
    "S007": "application recipient identification",
    "0044": "application recipient identification", "0048": "group reference number",
    "0051": "controlling agency", "S008": "message version", "0052": "message version number",
    "0054": "message release number", "0057": "association assigned code",
    "0058": "application password", "0062": "message reference number",
    "S009": "message identifier", "0065": "message type",
    "0110": "code list directory version number",
    "0113": "message type sub-function identification", "0068": "common access reference",
    "S010": "status of the transfer", "0070": "sequence of transfers",
    "0073": "first and last transfer", "S016": "message subset identification",
    "0115": "message subset identification", "0116": "message subset version number",
    "0118": "message subset release number", "S018": "scenario identification",
    "0127": "scenario identification", "0128": "scenario version number",
    "0130": "scenario release number", "0074": "number of segments in the message",
    "0060": "group control count", "0036": "interchange control count",
}


@dataclass(frozen=True, slots=True)
class ServiceValue:
    """A simple data element, or one component of a composite."""

    id: str
    mandatory: bool
    #: a (alphabetic), an (alphanumeric) or n (numeric: here counts, dates and codes, ASCII
    #: digits only, ISO 9735-1 clause 10), and the length
    representation: Representation
    #: Its service code list, when it has one.
    codes: frozenset[str] | None = None
    #: Whether the reader holds a partner to ``codes`` (``NOT_ENFORCED``).
    enforced: bool = True

    @property
    def name(self) -> str:
        return f"{self.id} {NAMES[self.id]}"


@dataclass(frozen=True, slots=True)
class ServiceElement:
    id: str
    mandatory: bool
    #: The components of a composite, or the one value of a simple data element.
    values: tuple[ServiceValue, ...]
    composite: bool

    @property
    def name(self) -> str:
        return f"{self.id} {NAMES[self.id]}"


@dataclass(frozen=True, slots=True)
class ServiceSegment:
    tag: str
    elements: tuple[ServiceElement, ...]
    #: Where each element's first value is in a flat list of all values.
    offsets: tuple[int, ...]

    def value(self, element: int, component: int = 1) -> ServiceValue:
        """The definition at an (element, component) position, 1-based as in S011."""
        return self.elements[element - 1].values[component - 1]


_VALUE = re.compile(r"([0-9]{4}) ([MC]) (\S+)")
_COMPOSITE = re.compile(r"(S\d{3}) ([MC]): (.+)")


def _value(text: str, codes: dict[str, str]) -> ServiceValue:
    found = _VALUE.fullmatch(text.strip())
    assert found is not None, text
    ident, status, representation = found.groups()
    listed = codes.get(ident)
    return ServiceValue(ident, status == "M", Representation.parse(representation),
                        frozenset(listed.split()) if listed else None,
                        ident not in NOT_ENFORCED)


def _element(text: str, codes: dict[str, str]) -> ServiceElement:
    composite = _COMPOSITE.fullmatch(text)
    if composite is None:
        value = _value(text, codes)
        return ServiceElement(value.id, value.mandatory, (value,), False)
    ident, status, components = composite.groups()
    return ServiceElement(ident, status == "M",
                          tuple(_value(c, codes) for c in components.split("|")), True)


def _segment(tag: str, lines: tuple[str, ...], codes: dict[str, str]) -> ServiceSegment:
    elements = tuple(_element(line, codes) for line in lines)
    offsets = []
    at = 0
    for element in elements:
        offsets.append(at)
        at += len(element.values)
    return ServiceSegment(tag, elements, tuple(offsets))


SEGMENTS: dict[str, dict[str, ServiceSegment]] = {
    version: {tag: _segment(tag, lines, _CODE_LISTS[version]) for tag, lines in tags.items()}
    for version, tags in _DEFINITIONS.items()
}


def service_version(syntax_version: str) -> str:
    """The definitions an interchange is read with, and its CONTRL written in: "4" for
    syntax version 4, "3" for any other (1, 2, 3, or one the reader refuses with code 2)."""
    return "4" if syntax_version.strip() == "4" else "3"


# --- checking one value --------------------------------------------------------------------

#: Characters the envelope reader reports on their own (0085 = 21, characters.py) wherever they
#: stand: a value holding one is not told again for its repertoire.
_REPORTED_APART = CONTROL_CHARACTERS | NONCHARACTERS | frozenset(REPLACEMENT)


def value_problem(spec: ServiceValue, text: str, repertoire: frozenset[str] | None, *,
                  every_list: bool = False) -> tuple[Code, str] | None:
    """What is wrong with a value that is present (ISO 9735-1 clauses 6 and 10): a character
    outside the repertoire, the wrong kind of characters, the length, a code outside its
    list (only the lists the reader enforces, unless ``every_list``)."""
    if repertoire is not None and not repertoire.issuperset(text):
        bad = "".join(sorted(set(text) - repertoire - _REPORTED_APART))
        if bad:
            return Code.INVALID_CHARACTERS, f"{shown(bad)} is not in the character repertoire"
    representation = spec.representation
    if representation.format == "n" and not is_ascii_digits(text):
        return Code.INVALID_TYPE_OF_CHARACTERS, f"{shown(text)} is not numeric (digits 0-9)"
    if representation.format == "a" and has_any_digit(text):
        return Code.INVALID_TYPE_OF_CHARACTERS, f"{shown(text)} holds digits (alphabetic only)"
    if len(text) > representation.max:
        return Code.DATA_ELEMENT_TOO_LONG, f"{shown(text)} is longer than {representation}"
    if len(text) < representation.min:
        return Code.DATA_ELEMENT_TOO_SHORT, f"{shown(text)} is shorter than {representation}"
    if spec.codes is not None and (spec.enforced or every_list) and text not in spec.codes:
        return _OUTSIDE_LIST.get(spec.id, Code.INVALID_VALUE), \
            f"{shown(text)} is not in the code list of {spec.id}"
    return None


# --- checking a segment ---------------------------------------------------------------------


class Values:
    """The values of a checked service segment by (element, component), 1-based; "" when
    absent.  From the pattern's groups when it matched, else from the segment's split."""

    __slots__ = ("_flat", "_segment", "_spec")

    def __init__(self, segment: Segment, spec: ServiceSegment,
                 flat: tuple[str | None, ...] | None) -> None:
        self._segment = segment
        self._spec = spec
        self._flat = flat

    def get(self, element: int, component: int = 1) -> str:
        flat = self._flat
        if flat is None:
            return self._segment.value(element, component)
        spec = self._spec
        if element > len(spec.elements) or component > len(spec.elements[element - 1].values):
            return ""
        return flat[spec.offsets[element - 1] + component - 1] or ""


@dataclass(frozen=True, slots=True)
class Checked:
    values: Values
    findings: list[Finding]


class ServiceChecker:
    """Checks the service segments of one interchange against their definitions in its
    syntax version, in its character repertoire, with its service characters."""

    def __init__(self, syntax_version: str, syntax_identifier: str,
                 delimiters: Delimiters) -> None:
        self.version = service_version(syntax_version)
        self.segments = SEGMENTS[self.version]
        self._repertoire = REPERTOIRES.get(syntax_identifier)
        #: What a segment's text may hold for the pattern to be tried: the repertoire and the
        #: service characters (level B's are controls), or anything (the other charsets).
        self._screen = None if self._repertoire is None else (
            self._repertoire | service_characters(delimiters))
        self._release = delimiters.release
        self._patterns = _patterns(self.version, pattern_key(delimiters))

    def check(self, segment: Segment) -> Checked:
        spec = self.segments[segment.tag]
        raw = segment.raw
        pattern = self._patterns.get(segment.tag) if self._patterns else None
        if pattern is not None and (self._screen is None or self._screen.issuperset(raw)):
            found = pattern.fullmatch(raw)
            if found is not None:
                released = bool(self._release) and self._release in raw
                return Checked(Values(segment, spec, None if released else found.groups()), [])
        return Checked(Values(segment, spec, None),
                       list(segment_findings(segment, spec, self._repertoire)))


def segment_findings(segment: Segment, spec: ServiceSegment,
                     repertoire: frozenset[str] | None) -> Iterator[Finding]:
    """The detailed check: walk the segment along its definition (ISO 9735-1 clause 7:
    trailing absent elements and components may be left out, and an element is absent when
    all its components are)."""
    tag, position = segment_tag(segment.tag), segment.position

    def finding(code: Code, text: str, element: int, component: int | None = None) -> Finding:
        return Finding(code, f"{tag} {text}", tag, position, element, component)

    elements = segment.elements
    if len(elements) > len(spec.elements):
        yield finding(Code.TOO_MANY_CONSTITUENTS, f"has {len(elements)} data elements; at "
                      f"most {len(spec.elements)}", len(spec.elements) + 1)
    for number, element in enumerate(spec.elements, start=1):
        occurrences = elements[number - 1] if number <= len(elements) else ()
        if not any(any(c) for c in occurrences):
            if element.mandatory:
                yield finding(Code.MISSING, f"{element.name} is missing", number)
            continue
        if len(occurrences) > 1:  # syntax 4 repeats: no service data element repeats
            yield finding(Code.TOO_MANY_CONSTITUENTS,
                          f"{element.name} repeats {len(occurrences)} times", number)
        components = occurrences[0]
        if len(components) > len(element.values):
            yield finding(Code.TOO_MANY_CONSTITUENTS,
                          f"{element.name} has {len(components)} components; at most "
                          f"{len(element.values)}", number,
                          len(element.values) + 1 if element.composite else None)
        for index, value in enumerate(element.values, start=1):
            text = components[index - 1] if index <= len(components) else ""
            where = index if element.composite else None
            if not text:
                if value.mandatory:
                    yield finding(Code.MISSING, f"{value.name} is missing", number, where)
                continue
            problem = value_problem(value, text, repertoire)
            if problem is not None:
                yield finding(problem[0], f"{value.name}: {problem[1]}", number, where)


# --- the patterns ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=PATTERN_SETS)
def _patterns(version: str, delimiters: Delimiters) -> dict[str, re.Pattern[str]] | None:
    """One pattern per service segment, or None when a service character is a letter or a
    digit (a pattern could then read a separator as part of a value: every segment is walked)."""
    if any(ch.isascii() and ch.isalnum() for ch in service_characters(delimiters)):
        return None
    return {tag: _Pattern(delimiters).segment(spec)
            for tag, spec in SEGMENTS[version].items()}


class _Pattern:
    def __init__(self, d: Delimiters) -> None:
        self._element = re.escape(d.element)
        self._component = re.escape(d.component)
        excluded = "".join(re.escape(c) for c in sorted({d.element, d.component,
                                                         d.repetition, d.release} - {""}))
        release = re.escape(d.release)
        self._unit = f"(?:[^{excluded}]|{release}.)" if d.release else f"[^{excluded}]"

    def segment(self, spec: ServiceSegment) -> re.Pattern[str]:
        tail = ""
        for index in range(len(spec.elements) - 1, -1, -1):
            required = any(e.mandatory for e in spec.elements[index:])
            tail = f"(?:{self._element}{self._composite(spec.elements[index])}{tail})" + (
                "" if required else "?")
        regex = re.compile(re.escape(spec.tag) + tail, re.DOTALL)
        assert regex.groups == sum(len(e.values) for e in spec.elements)  # one per value
        return regex

    def _composite(self, element: ServiceElement) -> str:
        values = element.values
        assert not element.mandatory or values[0].mandatory  # present means not empty
        tail = ""
        for index in range(len(values) - 1, 0, -1):
            required = any(v.mandatory for v in values[index:])
            tail = f"(?:{self._component}{self._value(values[index])}{tail})" + (
                "" if required else "?")
        body = self._value(values[0]) + tail
        return body if element.mandatory else f"(?:{body})?"

    def _value(self, value: ServiceValue) -> str:
        """One capturing group; its body stricter than ``value_problem`` where simpler
        (letters A-Z only, codes without release characters), never more lenient."""
        representation = value.representation
        size = f"{{{representation.min},{representation.max}}}"
        if value.codes is not None and value.enforced:
            body = "|".join(re.escape(code) for code in sorted(value.codes))
        elif representation.format == "n":
            body = f"[0-9]{size}"
        elif representation.format == "a":
            body = f"[A-Za-z]{size}"
        else:
            body = f"{self._unit}{size}"
        return f"({body})" if value.mandatory else f"({body})?"
