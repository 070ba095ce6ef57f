"""The envelope's service segment definitions (wire/edifact/service.py) are those of the shipped
schemas (schemas/edifact/service, generated from php-edifact-mapping Service_V3/V4), and the
quick pattern never lets a segment pass that the detailed walk would find fault with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.catalog.specs import segment_from_json
from gateway.model.edifact import Delimiters
from gateway.wire.edifact.lexer import Lexer
from gateway.wire.edifact.service import (
    SEGMENTS,
    ServiceChecker,
    ServiceValue,
    _patterns,
    segment_findings,
    value_problem,
)
from gateway.wire.edifact.syntax import PATTERN_SETS, REPERTOIRES

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "edifact" / "service"
#: Code lists the reader leaves to others: the syntax identifier to decoding (0085 2), the
#: message type, version and release to the catalog (14, 3).
JUDGED_ELSEWHERE = frozenset({"0001", "0065", "0052", "0054"})


@pytest.mark.parametrize("version", ["3", "4"])
def test_the_definitions_are_the_shipped_schemas(version: str) -> None:
    segments = json.loads((SCHEMAS / version / "segments.json").read_text("utf-8"))
    codes = json.loads((SCHEMAS / version / "codes.json").read_text("utf-8"))
    for tag, ours in SEGMENTS[version].items():
        theirs = segment_from_json(tag, segments[tag])
        assert [(e.id, e.mandatory) for e in ours.elements] == [
            (e.id, e.mandatory) for e in theirs.elements], tag
        for element, spec in zip(ours.elements, theirs.elements, strict=True):
            assert spec.repeat == 1 and element.composite == spec.composite
            shipped = [(c.id, c.mandatory, c.representation) for c in spec.components] or [
                (spec.id, spec.mandatory, spec.representation)]
            for value, (ident, mandatory, representation) in zip(element.values, shipped,
                                                                 strict=True):
                assert representation is not None
                assert (value.id, value.mandatory, value.representation) == (
                    ident, mandatory, representation)
                listed = None if ident in JUDGED_ELSEWHERE or ident not in codes \
                    else frozenset(codes[ident])
                assert value.codes == listed, (tag, ident)
                assert value.name  # every one has a name for the findings' texts


@pytest.mark.parametrize("version", ["3", "4"])
def test_every_listed_code_fits_its_representation(version: str) -> None:
    for segment in SEGMENTS[version].values():
        for element in segment.elements:
            for value in element.values:
                for code in value.codes or ():
                    assert value_problem(value, code, REPERTOIRES["UNOA"]) is None, code


#: What a partner may put in a service segment: codes, digits, letters of both cases and of
#: other scripts, digits of other scripts, the service characters (released or not), a NUL.
PIECES = ["UN", "ZZZ", "14", "ZZ", "1", "4", "A", "AA", "SECACK", "20261122", "0930", "261122",
          "R1", "x", "é", "٣", "²", "?+", "?:", "??", "?*", "+", ":", "*", "\x00", " ",
          "LONGVALUE" * 5]


def valid_values(value: ServiceValue) -> st.SearchStrategy[str]:
    """Values the definition takes: a listed code, or characters of its kind and length."""
    if value.codes is not None:
        return st.sampled_from(sorted(value.codes))
    representation = value.representation
    alphabet = {"n": "0123456789", "a": "ABCXYZ", "an": "AB09 ./-"}[representation.format]
    return st.text(alphabet, min_size=representation.min, max_size=min(representation.max, 40))


#: One character in place of another: of another kind, case or script, a control.
CHARACTERS = "xZ19é٣² \x00"


def off_by_one(value: str) -> st.SearchStrategy[str]:
    """A valid value with one character put in, or one changed (same length: what only the
    kind of characters or the code list can refuse)."""
    at = st.integers(0, max(len(value) - 1, 0))
    inserted = st.builds(lambda i, c: value[:i] + c + value[i:], at, st.sampled_from(PIECES))
    changed = st.builds(lambda i, c: value[:i] + c + value[i + 1:], at,
                        st.sampled_from(CHARACTERS))
    return st.one_of(inserted, changed)


@st.composite
def service_segments(draw: st.DrawFn) -> tuple[str, str, str]:
    """(syntax version, tag, segment text): a valid segment, its conditional values present or
    not, with a few values replaced by pieces, elements or components cut or added."""
    version = draw(st.sampled_from(["3", "4"]))
    tag = draw(st.sampled_from(sorted(SEGMENTS[version])))
    elements = []
    for element in SEGMENTS[version][tag].elements:
        values = [draw(valid_values(v)) if v.mandatory or draw(st.booleans()) else ""
                  for v in element.values]
        if not element.mandatory and draw(st.booleans()):
            values = [""]
        elements.append(values)
    for _ in range(draw(st.integers(0, 2))):
        values = elements[draw(st.integers(0, len(elements) - 1))]
        at = draw(st.integers(0, len(values)))
        piece = draw(st.lists(st.sampled_from(PIECES), max_size=2).map("".join))
        if at == len(values):
            values.append(piece)  # one component too many, or cut when the piece is empty
        else:
            values[at] = draw(st.one_of(st.just(piece), off_by_one(values[at])))
    cut = draw(st.integers(0, len(elements) + 1))
    texts = [":".join(values).rstrip(":") for values in elements[:cut]]
    if cut > len(elements):
        texts.append(draw(st.sampled_from(PIECES)))
    return version, tag, "+".join([tag, *texts])


IDENTIFIERS = ["UNOA", "UNOB", "UNOC", "UNOY"]


@settings(max_examples=1000, deadline=None)
@given(service_segments(), st.sampled_from(IDENTIFIERS))
def test_the_pattern_is_never_more_lenient_than_the_walk(case: tuple[str, str, str],
                                                         identifier: str) -> None:
    """Whatever the pattern lets pass, the walk finds nothing in; and the values the pattern's
    groups give are the values the lexer splits out."""
    agree(*case, identifier)


def first_valid(value: ServiceValue) -> str:
    if value.codes is not None:
        return min(value.codes)
    return {"n": "1", "a": "A", "an": "A"}[value.representation.format] * value.representation.min


@pytest.mark.parametrize("version", ["3", "4"])
def test_each_value_one_character_off(version: str) -> None:
    """Every value of every service segment, with one character changed, one added, or put
    aside for another code: the pattern and the walk agree on each (the random cases above
    seldom reach a given value)."""
    for tag, spec in SEGMENTS[version].items():
        values = [[first_valid(v) for v in element.values] for element in spec.elements]
        for number, element in enumerate(spec.elements):
            for index in range(len(element.values)):
                good = values[number][index]
                for changed in [*(c + good[1:] for c in CHARACTERS), good + "1", good + "A",
                                "ZZ", "99"]:
                    values[number][index] = changed
                    text = "+".join([tag, *(":".join(v) for v in values)])
                    for identifier in IDENTIFIERS:
                        agree(version, tag, text, identifier)
                values[number][index] = good


def agree(version: str, tag: str, text: str, identifier: str) -> None:
    delimiters = Delimiters() if version == "4" else Delimiters(repetition="")
    segment = Lexer(delimiters).segment(text, 1)
    checked = ServiceChecker(version, identifier, delimiters).check(segment)
    walked = list(segment_findings(segment, SEGMENTS[version][tag],
                                   REPERTOIRES.get(identifier)))
    assert checked.findings == walked
    for number, element in enumerate(SEGMENTS[version][tag].elements, start=1):
        for component in range(1, len(element.values) + 1):
            assert checked.values.get(number, component) == segment.value(number, component)


def test_patterns_are_kept_for_a_bounded_number_of_unas() -> None:
    """The UNA is the partner's to choose: a new one costs a few compiled patterns, and no
    more than PATTERN_SETS sets are ever kept (issue 9 item 4, for the envelope's patterns)."""
    for first in "!#$%&()[]{}<>|~^@":
        for second in "/\\;=":
            ServiceChecker("3", "UNOC", Delimiters(component=first, element=second))
    assert _patterns.cache_info().currsize <= PATTERN_SETS
