"""Validate a message against its directory structure (ISO 9735-1 clauses 7-10, UNTDID).

Two passes over the segments of one message:
- structure: segment order and groups, mandatory segments and groups, repeats, segments that
  have no place here, walked level by level through the compiled structure (catalog.Level);
- content: each segment's data elements and components: too many, mandatory ones missing,
  a/an/n formats, lengths, characters of the declared repertoire and code-list values.

Every finding carries its ISO 9735 code (0085) and position; all are reported, up to a cap.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.catalog.catalog import CompiledMessage, Level
from gateway.catalog.specs import (
    ComponentSpec,
    ElementSpec,
    GroupSpec,
    Representation,
    SegmentRef,
)
from gateway.model.arranged import Arranged, Flat, Instance
from gateway.model.edifact import Components, Delimiters, Segment
from gateway.model.findings import Finding, SyntaxErrorCode, shown
from gateway.model.numbers import has_any_digit, numeric_length
from gateway.pipeline.patterns import SegmentPattern, SegmentPatterns
from gateway.wire.edifact.characters import segment_tag
from gateway.wire.edifact.syntax import PATTERN_SETS, REPERTOIRES, pattern_key

Code = SyntaxErrorCode
#: At most this many findings per message; one more says how many were left out.
MAX_FINDINGS = 100


class Strictness(StrEnum):
    """What a value outside its code list is: an error, a warning, or nothing."""

    ERROR = "error"
    WARNING = "warning"
    OFF = "off"


@dataclass
class Rules:
    """How to judge the messages of one interchange."""

    syntax_identifier: str = "UNOC"
    code_lists: Strictness = Strictness.ERROR
    delimiters: Delimiters = field(default_factory=Delimiters)


@dataclass
class Report:
    """Errors reject the message; warnings are only told."""

    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    left_out: int = 0
    #: The message in its groups and the values the quick pass matched, for the mapper.
    arranged: Arranged = field(default_factory=lambda: Arranged(Instance(), {}))

    def add(self, finding: Finding) -> None:
        if len(self.errors) < MAX_FINDINGS:
            self.errors.append(finding)
        else:
            self.left_out += 1

    def final(self) -> tuple[Finding, ...]:
        if not self.left_out:
            return tuple(self.errors)
        last = self.errors[-1]
        return (*self.errors, Finding(last.code, f"{self.left_out} more findings left out",
                                      last.segment_tag, last.segment_position))


def validate(segments: tuple[Segment, ...], compiled: CompiledMessage, rules: Rules) -> Report:
    """``segments`` runs from UNH to UNT."""
    report = Report()
    _Structure(segments, compiled, report).walk()
    repertoire = REPERTOIRES.get(rules.syntax_identifier)
    check_codes = rules.code_lists != Strictness.OFF  # a warning needs the detailed pass too
    patterns = segment_patterns(compiled, rules.delimiters)
    matched = report.arranged.flat
    for segment in segments:
        spec = compiled.segments.get(segment.tag)
        if spec is None or segment.tag not in compiled.tags:
            continue
        pattern = patterns.get(segment.tag)
        if pattern is not None:
            values = _faultless(pattern, segment.raw, rules, repertoire, check_codes)
            if values is not None:
                matched[segment.position] = values
                continue
        _Content(segment, compiled, rules, repertoire, report).check(spec.elements)
    return report


def arrange(segments: tuple[Segment, ...], compiled: CompiledMessage) -> Instance:
    """The segments in their segment groups as the structure walk places them (for a mapper
    that runs without the validator; the walk's findings are the validator's to report)."""
    report = Report()
    _Structure(segments, compiled, report).walk()
    return report.arranged.root


# --- the quick pass: does the segment's text match its pattern? ---------------------------

_PATTERNS = "segment patterns"


def segment_patterns(compiled: CompiledMessage, delimiters: Delimiters) -> SegmentPatterns:
    """The segment patterns of a message for one set of delimiters, kept for the
    ``PATTERN_SETS`` sets used last; a match's groups are the segment's values (the mapper
    reads them too)."""
    by_delimiters = compiled.derived.get(_PATTERNS)
    if by_delimiters is None:
        # functools.lru_cache is bounded and safe to share between the processor's threads
        by_delimiters = compiled.derived.setdefault(_PATTERNS, functools.lru_cache(
            maxsize=PATTERN_SETS)(functools.partial(SegmentPatterns, compiled)))
    patterns: SegmentPatterns = by_delimiters(pattern_key(delimiters))
    return patterns


def _faultless(pattern: SegmentPattern, raw: str, rules: Rules,
               repertoire: frozenset[str] | None, check_codes: bool) -> Flat | None:
    """The segment's values when the detailed pass would find nothing; None sends it there."""
    repetition = rules.delimiters.repetition
    if repetition and repetition in raw:
        return None  # syntax 4 repeats: the detailed pass handles them
    if repertoire is not None and not repertoire.issuperset(raw):
        return None
    match = pattern.regex.fullmatch(raw)
    if match is None:
        return None
    values = match.groups()
    if check_codes:
        for group, codes in pattern.coded:
            value = values[group - 1]
            if value and value not in codes:
                return None
    return values


class _Structure:
    """Match segments to the structure, greedily and level by level."""

    def __init__(self, segments: tuple[Segment, ...], compiled: CompiledMessage,
                 report: Report) -> None:
        self._segments = segments
        self._compiled = compiled
        self._report = report
        self._index = 0

    def walk(self) -> None:
        self._level(self._compiled.root, 0, self._report.arranged.root)

    def _level(self, level: Level, depth: int, instance: Instance) -> None:
        """Walk one level; every segment placed is recorded in ``instance``, its level or
        group instance, as the mapper will read it."""
        counts = [0] * len(level.nodes)
        at = 0
        while self._index < len(self._segments):
            segment = self._segments[self._index]
            found = _find(level.keys, at, segment.tag)
            if found is None:
                if depth and segment.tag in self._compiled.tags:
                    break  # it may belong to an enclosing level
                self._out_of_place(segment)  # no place for it anywhere: skip it, go on here
                self._index += 1
                continue
            self._missing(level, counts, at, found)
            at = found
            counts[found] += 1
            node = level.nodes[found]
            if counts[found] > node.repeat:
                code = Code.TOO_MANY_SEGMENT_REPETITIONS if isinstance(node, SegmentRef) \
                    else Code.TOO_MANY_GROUP_REPETITIONS
                self._report.add(Finding(code, f"{segment.tag} repeats more than "
                                         f"{node.repeat} times here", segment.tag,
                                         segment.position))
            self._index += 1
            child = level.children[found]
            if child is None:
                same = instance.segments.get(segment.tag)
                if same is None:
                    instance.segments[segment.tag] = [segment]
                else:
                    same.append(segment)
                continue
            assert isinstance(node, GroupSpec)
            opened = Instance(segments={segment.tag: [segment]}, trigger=segment)
            instance.groups.setdefault(node.name, []).append(opened)
            self._level(child, depth + 1, opened)
        self._missing(level, counts, at, len(level.nodes))

    def _missing(self, level: Level, counts: list[int], start: int, end: int) -> None:
        """Mandatory nodes skipped between ``start`` and ``end`` (ISO 9735-4 0096: a missing
        segment is reported at the last segment processed before it)."""
        before = self._segments[max(self._index - 1, 0)]
        for k in range(start, end):
            node = level.nodes[k]
            if node.mandatory and counts[k] == 0:
                what = node.tag if isinstance(node, SegmentRef) else \
                    f"{node.trigger} (segment group {node.name.removeprefix('SG')})"
                # No tag: the finding is about the missing segment, not the one before it,
                # so the CONTRL reports it with UCS even after UNH.
                self._report.add(Finding(Code.MISSING, f"mandatory {what} is missing after "
                                         f"{_named(before.tag)}", "", before.position))
                counts[k] = -1  # report once

    def _out_of_place(self, segment: Segment) -> None:
        self._report.add(Finding(Code.NOT_SUPPORTED_IN_POSITION,
                                 f"segment {_named(segment.tag)} is not allowed here",
                                 segment_tag(segment.tag), segment.position))


def _named(tag: str) -> str:
    """A tag as a finding's text names it: as it is when ISO 9735 could spell it, else quoted
    (bounded and escaped: a segment without a data element separator is all tag)."""
    return segment_tag(tag) or shown(tag)


def _find(keys: tuple[str, ...], start: int, tag: str) -> int | None:
    for k in range(start, len(keys)):
        if keys[k] == tag:
            return k
    return None


@dataclass
class _Content:
    segment: Segment
    compiled: CompiledMessage
    rules: Rules
    repertoire: frozenset[str] | None
    report: Report

    def check(self, elements: tuple[ElementSpec, ...]) -> None:
        segment = self.segment
        if segment.element_count > len(elements):
            self._add(Code.TOO_MANY_CONSTITUENTS, f"{segment.tag} has "
                      f"{segment.element_count} data elements; at most {len(elements)}",
                      len(elements) + 1)
        for position, spec in enumerate(elements, start=1):
            occurrences = segment.occurrences(position)
            if not any(any(c) for c in occurrences):
                if spec.mandatory:
                    self._add(Code.MISSING, f"mandatory {spec.id} {spec.name.lower()} is "
                              "missing", position)
                continue
            if len(occurrences) > spec.repeat:
                self._add(Code.TOO_MANY_CONSTITUENTS, f"{spec.id} repeats "
                          f"{len(occurrences)} times; at most {spec.repeat}", position)
            for occurrence in occurrences:
                self._element(spec, occurrence, position)

    def _element(self, spec: ElementSpec, value: Components, position: int) -> None:
        if not spec.composite:
            if len(value) > 1:
                self._add(Code.TOO_MANY_CONSTITUENTS, f"{spec.id} is not a composite",
                          position, 2)
            assert spec.representation is not None
            self._value(spec.id, spec.representation, value[0], position, None)
            return
        if len(value) > len(spec.components):
            self._add(Code.TOO_MANY_CONSTITUENTS, f"{spec.id} has {len(value)} components; "
                      f"at most {len(spec.components)}", position, len(spec.components) + 1)
        for index, component in enumerate(spec.components, start=1):
            text = value[index - 1] if index <= len(value) else ""
            self._component(component, text, position, index,
                            _un_listed(spec.components, value, index))

    def _component(self, spec: ComponentSpec, text: str, position: int, index: int,
                   un_listed: bool) -> None:
        if not text:
            if spec.mandatory:
                self._add(Code.MISSING, f"mandatory {spec.id} {spec.name.lower()} is missing",
                          position, index)
            return
        self._value(spec.id, spec.representation, text, position, index, un_listed)

    def _value(self, element_id: str, representation: Representation, text: str,
               position: int, component: int | None, un_listed: bool = True) -> None:
        if not text:
            return
        where = (position, component)
        if self.repertoire is not None:
            bad = sorted(set(text) - self.repertoire)
            if bad:
                self._add(Code.INVALID_CHARACTERS, f"{element_id}: {shown(''.join(bad))} is not "
                          f"in the {self.rules.syntax_identifier} repertoire", *where)
                return
        size = format_error(representation, text)
        if size is not None:
            self._add(*size, *where)
            return
        codes = self.compiled.codes.get(element_id) if un_listed else None
        if codes is not None and text not in codes and self.rules.code_lists != Strictness.OFF:
            finding = Finding(Code.INVALID_VALUE, f"{element_id}: {shown(text)} is not in its "
                              "code list", self.segment.tag, self.segment.position, position,
                              component)
            if self.rules.code_lists == Strictness.ERROR:
                self.report.add(finding)
            else:
                self.report.warnings.append(finding)

    def _add(self, code: Code, text: str, element: int, component: int | None = None) -> None:
        self.report.add(Finding(code, text, self.segment.tag, self.segment.position, element,
                                component))


#: UNTDID 3055 code list responsible agency 6: UN/ECE; an empty 3055 means the same.
UN_ECE = "6"


def _un_listed(components: tuple[ComponentSpec, ...], value: Components, index: int) -> bool:
    """Whether a coded component's value comes from the UN code list: not when the 3055
    following it in its composite names another agency (C224 8155 ``45G1:102:5`` is an ISO
    6346 code, agency 5 ISO), which publishes its own codes."""
    for offset in (1, 2):
        at = index + offset
        if at <= len(components) and components[at - 1].id == "3055":
            agency = value[at - 1] if at <= len(value) else ""
            return agency in ("", UN_ECE)
    return True



def format_error(representation: Representation, text: str) -> tuple[Code, str] | None:
    """a/an/n and length (ISO 9735-1 clause 10: a numeric length leaves out the sign and the
    decimal mark).  The character classes are ``model/numbers.py``'s, which the quick pass's
    patterns use too."""
    kind = representation.format
    if kind == "n":
        length = numeric_length(text)
        if length is None:
            return Code.INVALID_TYPE_OF_CHARACTERS, f"{shown(text)} is not numeric"
    else:
        if kind == "a" and has_any_digit(text):
            return Code.INVALID_TYPE_OF_CHARACTERS, (f"{shown(text)} holds digits "
                                                     "(alphabetic only)")
        length = len(text)
    if length > representation.max:
        return Code.DATA_ELEMENT_TOO_LONG, f"{shown(text)} is longer than {representation}"
    if length < representation.min:
        return Code.DATA_ELEMENT_TOO_SHORT, f"{shown(text)} is shorter than {representation}"
    return None
