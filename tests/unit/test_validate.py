"""The validator on hand-built CUSDECs: every ISO 9735 code it reports, where it reports it."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.catalog.specs import Representation
from gateway.model.findings import Finding
from gateway.model.findings import SyntaxErrorCode as Code
from gateway.pipeline.validate import (
    MAX_FINDINGS,
    REPERTOIRES,
    Rules,
    Strictness,
    format_error,
    validate,
)
from gateway.wire.edifact.envelope import read_interchange
from tests.support.edifact import cusdec_message, interchange
from tests.support.pipeline import shipped_catalog


def findings(message: list[str], *, syntax: str = "UNOC:3", release: str = "D96B",
             code_lists: Strictness = Strictness.ERROR) -> list[Finding]:
    message[-1] = f"UNT+{len(message)}+{message[0].split('+')[1]}"
    parsed = read_interchange(interchange([message], syntax=syntax))
    (msg,) = parsed.messages
    assert msg.accepted, msg.findings  # the envelope is right; the body is under test
    compiled = shipped_catalog().message("CUSDEC", release)
    assert compiled is not None
    report = validate(msg.segments, compiled, Rules(syntax.split(":")[0], code_lists))
    return list(report.final())


def replaced(old: str, new: str, **kwargs: object) -> list[Finding]:
    message = [s.replace(old, new) if s.startswith(old.split("+")[0]) else s
               for s in cusdec_message(**kwargs)]  # type: ignore[arg-type]
    return findings(message)


def where(finding: Finding) -> tuple[int, str, int | None, int | None]:
    return int(finding.code), finding.segment_tag, finding.element, finding.component


def test_the_builders_cusdecs_are_valid_in_both_releases() -> None:
    assert findings(cusdec_message(commodity_codes=("0303", "8471"))) == []
    assert findings(cusdec_message(release="01B"), release="D01B") == []


def test_12_a_value_outside_its_code_list() -> None:
    (f,) = replaced("BGM+929+DEC-1+9", "BGM+929+DEC-1+99")
    assert where(f) == (12, "BGM", 3, None)


def test_code_list_strictness_per_partner() -> None:
    message = [s.replace("BGM+929+DEC-1+9", "BGM+929+DEC-1+99") for s in cusdec_message()]
    assert findings(list(message), code_lists=Strictness.WARNING) == []
    assert findings(list(message), code_lists=Strictness.OFF) == []


def test_13_mandatory_element_component_and_segment_missing() -> None:
    assert [where(f) for f in replaced("LOC+27+NO", "LOC++NO")] == [(13, "LOC", 1, None)]
    (f,) = replaced("MOA+40:1000:USD", "MOA+:1000:USD")
    assert where(f) == (13, "MOA", 1, 1)
    message = [s for s in cusdec_message() if not s.startswith("BGM")]
    (f,) = findings(message)
    assert (int(f.code), f.segment_position) == (13, 2)  # after UNH (interchange position 2)
    assert "BGM" in f.text


def test_15_a_segment_with_no_place_here() -> None:
    message = cusdec_message()
    message.insert(2, "ZZZ+1")  # unknown to CUSDEC
    message.insert(6, "BGM+929+AGAIN+9")  # known, but not after LOC/DTM
    assert [where(f)[:2] for f in findings(message)] == [(15, "ZZZ"), (15, "BGM")]


def test_16_too_many_data_elements_and_components() -> None:
    assert [where(f) for f in replaced("DTM+137:20261122:102", "DTM+137:20261122:102:9")] == [
        (16, "DTM", 1, 4)]
    assert [where(f) for f in replaced("UNS+S", "UNS+S+EXTRA")] == [(16, "UNS", 2, None)]


def test_21_a_character_outside_unoa() -> None:
    message = cusdec_message()
    errors = findings(message, syntax="UNOA:3")
    # lower case is outside level A: the free text and the party name
    assert {(int(f.code), f.segment_tag) for f in errors} == {(21, "FTX"), (21, "NAD")}


def test_35_and_36_too_many_repetitions() -> None:
    message = cusdec_message()
    at = message.index("LOC+22+TWKHH:139:6")
    message[at:at] = ["CST+1"] * 2  # CST may stand once in the heading
    assert (35, "CST") in {where(f)[:2] for f in findings(message)}
    many = cusdec_message()
    nad = next(s for s in many if s.startswith("NAD"))
    at = many.index(nad)
    many[at:at] = [nad] * 10  # SG6 NAD at most 10 in D96B: 11 now
    assert (36, "NAD") in {where(f)[:2] for f in findings(many)}


def test_37_39_40_formats_and_lengths() -> None:
    assert where(replaced("MOA+40:1000:USD", "MOA+40:12A:USD")[0]) == (37, "MOA", 1, 2)
    # 5004 is n..18: the sign and the decimal mark do not count towards the length
    assert replaced("MOA+40:1000:USD", f"MOA+40:-{'1' * 17}.5:USD") == []
    assert replaced("MOA+40:1000:USD", f"MOA+40:{'1' * 17},5:USD") == []
    assert where(replaced("MOA+40:1000:USD", f"MOA+40:{'1' * 19}:USD")[0]) == (
        39, "MOA", 1, 2)
    assert where(replaced("MOA+40:1000:USD", "MOA+40:1.2.3:USD")[0])[0] == 37
    assert where(replaced("BGM+929+DEC-1+9", "BGM+929+" + "X" * 36 + "+9")[0]) == (
        39, "BGM", 2, 1)


def test_40_too_short_for_a_fixed_length() -> None:
    """Fixed lengths (n4, an3) are rare in CUSDEC's segments; check the rule itself."""
    fixed = Representation("n", 4, 4)
    assert format_error(fixed, "1234") is None
    assert format_error(fixed, "-12.3") is not None  # three digits: the sign and mark do not count
    assert format_error(fixed, "123") == (Code.DATA_ELEMENT_TOO_SHORT,
                                           "'123' is shorter than n4")
    assert format_error(Representation("a", 1, 3), "A1")[0] == Code.INVALID_TYPE_OF_CHARACTERS  # type: ignore[index]


def test_all_findings_not_just_the_first_and_a_cap() -> None:
    message = cusdec_message(commodity_codes=tuple(f"{n:04d}" for n in range(1, 160)))
    message = [s.replace("MOA+40:1000:USD", "MOA+40:ten:USD") for s in message]
    errors = findings(message)
    assert len(errors) == MAX_FINDINGS + 1
    assert "more findings left out" in errors[-1].text


@pytest.mark.parametrize("release", ["D96B", "D01B"])
def test_contrl_messages_are_in_the_catalog(release: str) -> None:
    assert shipped_catalog().message("CUSDEC", release) is not None
    assert shipped_catalog().message("CONTRL", "D3") is not None
    assert shipped_catalog().message("CONTRL", "41") is not None


def detailed_errors(raw: str, syntax: str = "UNOC") -> list[Finding]:
    """The detailed pass alone on one segment's text."""
    from gateway.model.edifact import Delimiters
    from gateway.pipeline.validate import Report, _Content
    from gateway.wire.edifact.lexer import Lexer

    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    segment = Lexer(Delimiters(repetition="")).segment(raw, 1)
    spec = compiled.segments[segment.tag]
    report = Report()
    _Content(segment, compiled, Rules(syntax), REPERTOIRES.get(syntax), report).check(
        spec.elements)
    return report.errors


SEGMENTS = [s for s in cusdec_message(commodity_codes=("0303", "8471"))
            if not s.startswith(("UNH", "UNT"))]
MUTATION_CHARACTERS = "+:?'*.,-0123456789AZaz éÖ"


@settings(max_examples=int(os.environ.get('PATTERN_EXAMPLES', '600')), deadline=None)
@given(st.sampled_from(SEGMENTS), st.lists(st.tuples(
    st.integers(0, 80), st.sampled_from(["insert", "delete", "replace"]),
    st.sampled_from(MUTATION_CHARACTERS)), max_size=4), st.sampled_from(["UNOC", "UNOA"]))
def test_the_pattern_never_passes_what_the_detailed_check_rejects(
        original: str, mutations: list[tuple[int, str, str]], syntax: str) -> None:
    from gateway.model.edifact import Delimiters
    from gateway.pipeline.validate import _faultless, segment_patterns

    raw = original
    for at, operation, character in mutations:
        at = 3 + at % max(len(raw) - 2, 1)  # leave the tag alone
        if operation == "insert":
            raw = raw[:at] + character + raw[at:]
        elif operation == "delete":
            raw = raw[:at] + raw[at + 1:]
        else:
            raw = raw[:at] + character + raw[at + 1:]
    if raw.endswith("?") and not raw.endswith("??"):
        raw = raw[:-1]  # a lone release character at the end would release the terminator
    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    rules = Rules(syntax, delimiters=Delimiters(repetition=""))
    pattern = segment_patterns(compiled, rules.delimiters)[raw[:3]]
    if _faultless(pattern, raw, rules, REPERTOIRES.get(syntax), True):
        assert detailed_errors(raw, syntax) == [], raw


def test_the_pattern_takes_the_common_cases() -> None:
    from gateway.model.edifact import Delimiters
    from gateway.pipeline.validate import _faultless, segment_patterns

    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    rules = Rules("UNOC", delimiters=Delimiters(repetition=""))
    patterns = segment_patterns(compiled, rules.delimiters)
    for raw in SEGMENTS:
        assert _faultless(patterns[raw[:3]], raw, rules, None, True), raw
