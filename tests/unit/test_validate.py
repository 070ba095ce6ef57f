"""The validator on hand-built CUSDECs: every ISO 9735 code it reports, where it reports it."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.catalog.specs import Representation
from gateway.model.arranged import Flat
from gateway.model.edifact import Delimiters
from gateway.model.findings import Finding
from gateway.model.findings import SyntaxErrorCode as Code
from gateway.pipeline.validate import (
    MAX_FINDINGS,
    REPERTOIRES,
    Report,
    Rules,
    Strictness,
    _Content,
    _faultless,
    format_error,
    segment_patterns,
    validate,
)
from gateway.wire.edifact.envelope import read_interchange
from gateway.wire.edifact.lexer import Lexer, unescape
from gateway.wire.edifact.syntax import CODECS, LEVEL_B
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


SYNTAX_3 = Delimiters(repetition="")


def detailed_errors(raw: str, syntax: str = "UNOC", delimiters: Delimiters = SYNTAX_3,
                    code_lists: Strictness = Strictness.ERROR) -> tuple[list[Finding], Flat]:
    """The detailed pass alone on one segment's text: its findings, and the values it reads,
    laid flat as the quick pass's groups lay them."""
    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    segment = Lexer(delimiters).segment(raw, 1)
    spec = compiled.segments[segment.tag]
    report = Report()
    _Content(segment, compiled, Rules(syntax, code_lists, delimiters), REPERTOIRES.get(syntax),
             report).check(spec.elements)
    values: list[str] = []
    for position, element in enumerate(spec.elements, start=1):
        width = max(1, len(element.components))
        values += [segment.value(position, index) for index in range(1, width + 1)]
    return report.errors, tuple(values)


#: The delimiters a partner may choose: level A in syntax 3 and 4, level B (no release
#: character), and UNAs that put a digit, a decimal mark, the sign, a non-ASCII digit or one
#: character twice among the service characters.
DELIMITERS = [
    SYNTAX_3, Delimiters(), LEVEL_B,
    Delimiters(component="1", repetition=""), Delimiters(element="-", repetition=""),
    Delimiters(component=",", decimal=".", repetition=""), Delimiters(release="5"),
    Delimiters(component="\u0663", element="\uff0b", release="\u00b2", repetition="*"),
    Delimiters(component="?", repetition=""), Delimiters(release="", repetition=""),
]
SEGMENTS = [s for s in cusdec_message(commodity_codes=("0303", "8471"))
            if not s.startswith(("UNH", "UNT"))] + [
    "NAT+2+NO:::Norwegian", "GID+1+10:CT::+2:PK", "DGS+IMD+3.2+1234+055:CEL",
    "CUX+2:USD:4+3:TWD:5:1.2+31.5", "QTY+47:-10,5:KGM", "DOC+861+CO-1++1+2"]
#: What a hostile partner puts in a value (issue 9): the digits of other scripts (Arabic-Indic,
#: extended Arabic-Indic, Devanagari, Bengali, Thai, full-width), superscripts, subscripts and
#: circled digits (``str.isdigit`` takes them, ``\\d`` does not), fractions and numerals, an
#: exponent, NUL and other C0 and C1 controls, the level B separators, the service characters
#: and decimal marks of level A, letters of several scripts.
MUTATION_CHARACTERS = (
    "+:?'*.,-0123456789AZaz \u00e9\u00d6"
    "\u0660\u0663\u0669\u06f3\u0966\u09e7\u0e53\uff10\uff15\uff19"
    "\u00b2\u00b3\u00b9\u2070\u2082\u2460\u2776\u00bd\u216b\u4e94Ee_"
    "\x00\x01\x09\x0a\x0d\x19\x1c\x1d\x1f\x7f\x85\x9f\xa0\ufeff")
SYNTAX_IDENTIFIERS = sorted(CODECS)


@st.composite
def hostile_segments(draw: st.DrawFn) -> tuple[str, Delimiters]:
    """A sample segment under drawn delimiters, with a few characters inserted, deleted or
    replaced after its tag."""
    delimiters = draw(st.sampled_from(DELIMITERS))
    d = delimiters
    raw = draw(st.sampled_from(SEGMENTS)).translate(
        {ord(":"): d.component, ord("+"): d.element, ord("?"): d.release or None})
    characters = MUTATION_CHARACTERS + d.component + d.element + d.release + d.repetition
    for _ in range(draw(st.integers(0, 4))):
        at = 3 + draw(st.integers(0, 80)) % max(len(raw) - 2, 1)  # leave the tag alone
        character = draw(st.sampled_from(characters))
        operation = draw(st.sampled_from(["insert", "delete", "replace"]))
        if operation == "insert":
            raw = raw[:at] + character + raw[at:]
        elif operation == "delete":
            raw = raw[:at] + raw[at + 1:]
        else:
            raw = raw[:at] + character + raw[at + 1:]
    if d.release and raw.endswith(d.release) and not raw.endswith(d.release * 2):
        raw = raw[:-1]  # a lone release character at the end would release the terminator
    return raw, delimiters


@settings(max_examples=int(os.environ.get("PATTERN_EXAMPLES", "1500")), deadline=None)
@given(hostile_segments(), st.sampled_from(SYNTAX_IDENTIFIERS),
       st.sampled_from([Strictness.ERROR, Strictness.OFF]))
def test_the_pattern_never_passes_what_the_detailed_check_rejects(
        segment: tuple[str, Delimiters], syntax: str, code_lists: Strictness) -> None:
    """The quick pass is never more lenient than the detailed check, whatever the characters,
    the delimiters or the syntax identifier, and reads the values the detailed pass reads."""
    raw, delimiters = segment
    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    rules = Rules(syntax, code_lists, delimiters)
    pattern = segment_patterns(compiled, delimiters).get(raw[:3])
    if pattern is None:
        return  # delimiters that make patterns ambiguous: the detailed check does it all
    values = _faultless(pattern, raw, rules, REPERTOIRES.get(syntax),
                        code_lists != Strictness.OFF)
    if values is not None:
        errors, read = detailed_errors(raw, syntax, delimiters, code_lists)
        assert errors == [], raw
        release = delimiters.release
        assert tuple(unescape(v or "", release) if release else v or "" for v in values) == \
            read, raw


def test_the_pattern_takes_the_common_cases() -> None:
    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    rules = Rules("UNOC", delimiters=SYNTAX_3)
    patterns = segment_patterns(compiled, rules.delimiters)
    for raw in SEGMENTS:
        pattern = patterns.get(raw[:3])
        assert pattern is not None and _faultless(pattern, raw, rules, None, True), raw


@pytest.mark.parametrize("raw", [
    "MOA+40:\u0661\u0660\u0660\u0660:USD",  # Arabic-Indic digits in n..18
    "MOA+40:\uff11\uff18\uff15\uff10\uff10:USD",  # full-width digits
    "MOA+40:1E5:USD", "MOA+40:Infinity:USD", "MOA+40:--5:USD", "MOA+40:1_000:USD",
    "MOA+40:10\u00b2:USD",  # a superscript
    "NAT+2+NO:::Norwegian\u00b2", "NAT+2+NO:::Norwegian\u0663",  # digits in a..35
])
@pytest.mark.parametrize("syntax", ["UNOW", "UNOY"])
def test_digits_of_other_scripts_fail_both_passes(raw: str, syntax: str) -> None:
    """Issue 9 item 3: the quick pass took Unicode digits as numbers (`\\d`) and a superscript
    as a letter; the detailed check did not."""
    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    rules = Rules(syntax, Strictness.OFF, SYNTAX_3)
    pattern = segment_patterns(compiled, SYNTAX_3).get(raw[:3])
    assert pattern is not None
    assert _faultless(pattern, raw, rules, None, False) is None
    errors, _ = detailed_errors(raw, syntax, code_lists=Strictness.OFF)
    assert [int(f.code) for f in errors] == [37], errors


@pytest.mark.parametrize("delimiters", [
    Delimiters(component="1", repetition=""), Delimiters(element="-", repetition=""),
    Delimiters(release="5"), Delimiters(component="?", repetition=""),
])
def test_delimiters_a_number_may_hold_or_used_twice_get_the_detailed_check(
        delimiters: Delimiters) -> None:
    """A separator that is a digit or the sign, or a release character that is a digit, would
    let a number's pattern read across it (``MOA+40:1000`` with ``1`` as the component
    separator is four values to the lexer)."""
    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    assert segment_patterns(compiled, delimiters).get("MOA") is None


def test_the_pattern_cache_keeps_a_bounded_number_of_unas() -> None:
    """Issue 9 item 4: the patterns were kept for every UNA a partner sent (100 UNAs: 50 MB).
    After many UNAs, the patterns alive are those of at most ``PATTERN_SETS`` of them."""
    import gc

    from gateway.pipeline.patterns import SegmentPattern
    from gateway.pipeline.process import process_submission
    from gateway.wire.edifact.syntax import PATTERN_SETS
    from tests.support.pipeline import demo_context

    releases = [chr(0xC0 + n) for n in range(40)]  # 40 UNAs, each its own release character
    for release in releases:
        data = interchange([cusdec_message()]).replace(
            b"UNA:+.? '", f"UNA:+.{release} '".encode("latin-1"))
        assert process_submission(data, demo_context()).status.value == "accepted"
    gc.collect()
    alive = {release for o in gc.get_objects() if isinstance(o, SegmentPattern)
             for release in releases if release in o.regex.pattern}
    assert 0 < len(alive) <= PATTERN_SETS


def test_unas_that_differ_only_in_decimal_mark_or_terminator_share_their_patterns() -> None:
    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    assert segment_patterns(compiled, Delimiters(decimal=",", terminator="\n")) is \
        segment_patterns(compiled, Delimiters())
    assert segment_patterns(compiled, Delimiters(release="!")) is not \
        segment_patterns(compiled, Delimiters())


def test_a_finding_quotes_a_bounded_part_of_a_huge_value() -> None:
    """A 100,000-character value too long for its element was quoted whole in the finding,
    and so in the summary stored and logged for the submission."""
    (f,) = replaced("FTX+AAA+++Goods item 1", "FTX+AAA+++" + "A" * 100_000)
    assert where(f) == (39, "FTX", 4, 1)
    assert len(f.text) < 200 and "(100,036 characters)" in f.text


@pytest.mark.parametrize("tag", ["Z" * 100_000, "ZZ\u202eZ", "zz", "B\u0660M"])
def test_a_tag_no_directory_has_is_named_bounded_and_escaped(tag: str) -> None:
    """A segment the structure has no place for was named by its tag as sent, in the
    finding's tag and text: a segment without a data element separator made a tag of 100,000
    characters, twice in the stored summary; a bidirectional override or another script's
    digit went into it unescaped.  As the envelope does (``characters.segment_tag``), a tag
    that is not three letters or digits A-Z, 0-9 is left out of the finding's tag and quoted
    in its text; the position says where, for this segment and for one missing after it."""
    message = [s for s in cusdec_message() if not s.startswith("BGM")]
    message.insert(1, "@TAG@+1")
    message[-1] = f"UNT+{len(message)}+1"
    text = interchange([message], syntax="UNOW:4").decode("latin-1").replace("@TAG@", tag)
    (msg,) = read_interchange(text.encode("utf-8")).messages
    assert msg.accepted, msg.findings  # the envelope takes any tag: the structure may not
    compiled = shipped_catalog().message("CUSDEC", "D96B")
    assert compiled is not None
    (out_of_place, missing) = [
        f for f in validate(msg.segments, compiled, Rules("UNOW")).final()
        if f.code in (Code.NOT_SUPPORTED_IN_POSITION, Code.MISSING)]
    assert (out_of_place.segment_tag, out_of_place.segment_position) == ("", 3)
    assert missing.segment_position == 3 and "BGM" in missing.text
    for finding in (out_of_place, missing):
        assert len(finding.text) < 200 and finding.text.isprintable(), finding.text
