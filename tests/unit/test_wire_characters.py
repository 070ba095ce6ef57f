"""Characters no EDIFACT repertoire holds are the partner's fault, answered 0085 = 21 where they
stand, under every syntax identifier; the answer itself never carries one (issue 9 item 1)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import EnvelopeError
from gateway.model.findings import Finding
from gateway.model.findings import SyntaxErrorCode as Code
from gateway.model.outcome import Status
from gateway.pipeline.process import process_submission
from gateway.pipeline.report import error_report
from gateway.wire.edifact.envelope import MAX_FINDINGS, read_interchange
from gateway.wire.edifact.syntax import CODECS, CONTROL_CHARACTERS
from tests.support.edifact import cusdec, cusdec_message, interchange
from tests.support.pipeline import demo_context
from tests.unit.test_process import contrl_segments, partner_contrl

#: Every syntax identifier we read, and ones we do not (read as Latin-1, answered 0085 = 2).
IDENTIFIERS = [*CODECS, "XXXX", "UNOZ"]
CONTROLS = sorted(CONTROL_CHARACTERS)


def encoded(text: str, identifier: str) -> bytes:
    return text.encode(CODECS.get(identifier, "latin-1"))


def with_value(identifier: str, old: str, new: str) -> bytes:
    """A good CUSDEC under ``identifier`` (syntax 4 for UNOW/UNOY) with ``old`` made ``new``."""
    version = "4" if identifier in ("UNOW", "UNOY") else "3"
    text = cusdec(syntax=f"{identifier}:{version}").decode("latin-1")
    assert old in text
    return encoded(text.replace(old, new), identifier)


def invalid(findings: tuple[Finding, ...] | list[Finding]) -> list[tuple[str, int | None,
                                                                         int | None]]:
    return [(f.segment_tag, f.element, f.component) for f in findings
            if f.code is Code.INVALID_CHARACTERS]


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_a_nul_in_the_unb_control_reference_rejects_the_interchange(identifier: str) -> None:
    data = with_value(identifier, "ICR0001", "ICR\x000001")
    parsed = read_interchange(data)
    assert invalid(parsed.findings) == [("UNB", 5, None), ("UNZ", 2, None)]
    outcome = process_submission(data, demo_context())
    assert outcome.status is Status.REJECTED
    (uci,) = contrl_segments(outcome.acknowledgement.body)["UCI"]  # valid, and no NUL in it
    assert uci[:4] == ["ICR.0001", "DEMOVAN:ZZZ", "SWGATEWAY:ZZZ", "4"]
    # the first finding is told: an unknown syntax identifier (2) comes before
    assert uci[4:] == (["21", "UNB", "6"] if identifier in CODECS else ["2", "UNB", "2:1"])


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_a_nul_in_the_message_reference_rejects_the_interchange(identifier: str) -> None:
    """UNH 0062 names the message in its UCM, where it is mandatory (syntax 3): echoed with
    its NUL replaced it would name another message, so the interchange is rejected, the UCI
    saying where (21, UNH, 0062).  The NUL in UNT's 0062 stays the message's own finding."""
    text = interchange([cusdec_message("1"), cusdec_message("2")]).decode("latin-1")
    text = text.replace("UNH+1+", "UNH+1\x00+").replace("+1'\nUNH+2", "+1\x00'\nUNH+2")
    version = "4" if identifier[-1] in "WY" else "3"
    text = text.replace("UNB+UNOC:3", f"UNB+{identifier}:{version}")
    if version == "4":
        text = text.replace("+261122:0930+", "+20261122:0930+")
    data = encoded(text, identifier)
    parsed = read_interchange(data)
    first, second = parsed.messages
    assert invalid(parsed.findings) == [("UNH", 1, None)]
    assert invalid(first.findings) == [("UNT", 2, None)] and second.accepted
    outcome = process_submission(data, demo_context())
    assert outcome.status is Status.REJECTED
    if identifier in CODECS:  # else the identifier (2) is what the UCI tells
        (uci,) = contrl_segments(outcome.acknowledgement.body)["UCI"]
        assert uci[3:] == ["4", "21", "UNH", "2"]


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_a_nul_in_bgm_1004_is_located_at_its_element(identifier: str) -> None:
    data = with_value(identifier, "BGM+929+DEC-1+9", "BGM+929+DEC\x00-1+9")
    (message,) = read_interchange(data).messages
    assert invalid(message.findings) == [("BGM", 2, None)]
    outcome = process_submission(data, demo_context())
    assert outcome.status is Status.REJECTED
    if identifier in CODECS:  # else the interchange is rejected for its identifier (2)
        contrl = contrl_segments(outcome.acknowledgement.body)
        assert contrl["UCS"] == [["2"]] and contrl["UCD"] == [["21", "3"]]


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_control_character_is_invalid_inside_a_segment(control: str) -> None:
    """C0 (CR, LF and TAB too: white space is allowed between segments, not in them), DEL and
    C1; in a component of a composite the component is named."""
    data = with_value("UNOC", "NAD+DT+12345678::ZZZ", f"NAD+DT+1234{control}5678::ZZZ")
    (message,) = read_interchange(data).messages
    assert invalid(message.findings) == [("NAD", 2, 1)]


def test_white_space_between_segments_is_not_a_finding() -> None:
    for between in ("\n", "\r\n", "\t", " \r\n  "):
        data = cusdec().replace(b"'\n", b"'" + between.encode())
        parsed = read_interchange(data)
        assert parsed.accepted and all(m.accepted for m in parsed.messages), between


def test_level_b_separators_are_service_characters_and_a_nul_is_not() -> None:
    good = (b"UNB\x1dUNOB\x1f3\x1dA\x1dB\x1d261122\x1f0930\x1dR1\x1c"
            b"UNH\x1d1\x1dCUSDEC\x1fD\x1f96B\x1fUN\x1cUNT\x1d2\x1d1\x1cUNZ\x1d1\x1dR1\x1c")
    assert read_interchange(good).accepted
    (message,) = read_interchange(good.replace(b"UNT\x1d2", b"UNT\x1d2\x00")).messages
    assert invalid(message.findings) == [("UNT", 1, None)]


@pytest.mark.parametrize("character", ["\ufffe", "\uffff", "\ufdd0", "\U0001fffe",
                                       "\U0010ffff"])
def test_noncharacters_are_invalid_in_utf8(character: str) -> None:
    data = with_value("UNOY", "Formosa", f"For{character}mosa")
    (message,) = read_interchange(data).messages
    assert invalid(message.findings) == [("NAD", 4, None)]


def test_characters_of_every_plane_are_valid_in_utf8() -> None:
    data = with_value("UNOY", "Formosa", "台灣 \U0001f6a2 \U00020000 Ελλάδα \u00a0")
    parsed = read_interchange(data)
    assert parsed.accepted and parsed.messages[0].accepted


def test_an_undecodable_byte_is_placed_after_released_terminators() -> None:
    """The old placement counted terminator bytes, released ones too, so the finding landed on
    a later segment (or outside the message)."""
    message = [s.replace("Goods item 1?:", "it?'s ?'item?' 1?:") for s in cusdec_message()]
    loc = next(i for i, s in enumerate(message) if s.startswith("LOC+27"))
    message[loc] = "LOC+27+N\xd6"
    data = interchange([message], syntax="UNOA:3")
    (found,) = read_interchange(data).messages[0].findings
    assert (found.code, found.segment_tag, found.element) == (Code.INVALID_CHARACTERS, "LOC", 2)
    assert found.segment_position == loc + 2  # UNB is 1, UNH 2
    assert "0xD6" in found.text
    segment = read_interchange(data).messages[0].segments[loc]
    assert segment.value(2) == "N\ufffd"  # no lone surrogate goes further


def test_a_control_character_after_the_last_segment_is_found() -> None:
    parsed = read_interchange(cusdec() + b"UNZ\x00")
    assert Code.INVALID_CHARACTERS in [f.code for f in parsed.findings]
    assert parsed.findings[0].segment_position == parsed.segment_count + 1


@pytest.mark.parametrize("identifier", ["UNOC", "UNOY"])
def test_utf8_sent_as_unoc_shows_c1_controls(identifier: str) -> None:
    """"Ë" in UTF-8 is C3 8B; ISO 8859-1 reads 0x8B as the C1 control U+008B."""
    data = cusdec(syntax=f"{identifier}:3").replace(b"Formosa", "FËrmosa".encode())
    codes = [f.code for f in read_interchange(data).messages[0].findings]
    assert codes == ([Code.INVALID_CHARACTERS] if identifier == "UNOC" else [])


@pytest.mark.parametrize(("una", "problem"), [
    ("UNA:+.?\x00'", "UNA5"),
    ("UNA:\x00.? '", "UNA2"),
    ("UNA:+.? \n", "UNA6"),
    ("UNA:+.? \x85", "UNA6"),
    ("UNA:+:? '", "UNA3"),
    ("UNA:+.+ '", "UNA4"),
    ("UNA::.? '", "UNA2"),
    ("UNA:+.??'", "UNA5"),
    ("UNA +.? '", "UNA1"),
    ("UNA:+.? +", "UNA6"),
])
def test_a_una_that_names_a_control_or_repeats_a_character_is_refused(una: str,
                                                                     problem: str) -> None:
    """ISO 9735-1 clause 8: each UNA character serves one purpose; a separator is no space
    and no control character (0085 = 20: character invalid as service character)."""
    data = una.encode("latin-1") + cusdec(una=False)
    with pytest.raises(EnvelopeError) as raised:
        read_interchange(data)
    assert raised.value.syntax_error_code == Code.CHARACTER_INVALID_AS_SERVICE_CHARACTER
    assert problem in str(raised.value)
    outcome = process_submission(data, demo_context())
    assert outcome.acknowledgement.kind == "ERROR_REPORT"
    assert "0085): 20" in outcome.acknowledgement.body.decode()


def test_level_b_separators_may_be_advised_in_a_una() -> None:
    data = (b"UNA\x1f\x1d.? \x1cUNB\x1dUNOB\x1f3\x1dA\x1dB\x1d261122\x1f0930\x1dR1\x1c"
            b"UNH\x1d1\x1dCUSDEC\x1fD\x1f96B\x1fUN\x1cUNT\x1d2\x1d1\x1cUNZ\x1d1\x1dR1\x1c")
    assert read_interchange(data).accepted


def test_una_characters_are_read_in_the_declared_charset() -> None:
    """ISO 8859-5 reads byte 0xC0 as a Cyrillic letter: so does the lexer, and so must the
    delimiters.  UTF-8 and ASCII have no one-byte character above 0x7F at all."""
    cyrillic = (b"UNA\xc0+.? 'UNB+UNOE\xc03+A+B+261122\xc00930+R1'UNH+1+CUSDEC\xc0D\xc096B\xc0UN'"
                b"UNT+2+1'UNZ+1+R1'")
    parsed = read_interchange(cyrillic)
    assert (parsed.header.syntax_identifier, parsed.header.syntax_version) == ("UNOE", "3")
    assert parsed.accepted and parsed.messages[0].identifier.directory == "D96B"
    with pytest.raises(EnvelopeError, match="not characters of utf-8"):
        read_interchange(cyrillic.replace(b"UNOE", b"UNOY"))


def test_the_contrl_echoes_values_within_their_lengths() -> None:
    """UNB 0020 and UNH 0062 are an..14: a longer one is reported (39) where it stands and
    rejects the interchange (each names what the CONTRL answers), whose UCI echoes 0020 cut,
    the only valid value its mandatory position can hold."""
    long_reference = "R" * 40
    data = cusdec(control_reference=long_reference)
    outcome = process_submission(data, demo_context())
    assert [(f.code, f.segment_tag) for f in outcome.findings] == [
        (Code.DATA_ELEMENT_TOO_LONG, "UNB"), (Code.DATA_ELEMENT_TOO_LONG, "UNZ")]
    contrl = contrl_segments(outcome.acknowledgement.body)
    assert contrl["UCI"][0][:2] == ["R" * 14, "DEMOVAN:ZZZ"]
    message = cusdec_message("M" * 30)
    outcome = process_submission(interchange([message]), demo_context())
    assert [(f.code, f.segment_tag, f.element) for f in outcome.findings] == [
        (Code.DATA_ELEMENT_TOO_LONG, "UNH", 1)]
    assert contrl_segments(outcome.acknowledgement.body)["UCI"][0][3:] == ["4", "39", "UNH",
                                                                           "2"]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=12).filter(lambda b: not b.startswith((b"'", b"+"))),
       st.sampled_from(IDENTIFIERS))
def test_whatever_a_reference_holds_the_answer_is_a_valid_contrl(reference: bytes,
                                                                 identifier: str) -> None:
    """Controls, bytes of no charset, service characters: the CONTRL that echoes the
    reference reads back valid and carries no control character."""
    data = cusdec(control_reference="R@", syntax=f"{identifier}:3").replace(b"R@",
                                                                           b"R" + reference)
    outcome = process_submission(data, demo_context())
    assert outcome.acknowledgement.kind == "CONTRL"
    body = outcome.acknowledgement.body
    text = body.decode(CODECS.get(identifier, "latin-1"))  # unknown ones are answered in UNOC
    assert CONTROL_CHARACTERS.isdisjoint(text.replace("\n", "")), body
    contrl_segments(body)


def test_the_error_report_shows_control_characters_escaped() -> None:
    """A partner's file name can neither add a line to the report nor stop it being written."""
    report = error_report("x.edi\nReason: accepted\x00\udcff", dt.datetime(2026, 1, 1),
                          "no UNB", 4).decode("utf-8")
    assert "File: x.edi\\nReason: accepted\\x00\\udcff\n" in report
    assert report.count("Reason:") == 2  # its own, and the one in the escaped name


@pytest.mark.parametrize(("reference", "submission"), [
    ("42", 42), ("0042", 42), ("²", None), ("\u0664\u0662", None), ("9" * 14, 99999999999999),
    ("ABC", None)])
def test_a_partners_contrl_carries_a_safe_submission_number(reference: str,
                                                             submission: int | None) -> None:
    """``UCI+²`` once crashed the receipt's store look-up (``'²'.isdigit()`` is true)."""
    data = partner_contrl("@REF@", "7", syntax="UNOY:4").replace(b"@REF@", reference.encode())
    outcome = process_submission(data, demo_context())
    (receipt,) = outcome.receipts
    assert receipt.acknowledged_reference == reference
    assert receipt.acknowledged_submission == submission


def test_findings_are_bounded_per_level_whatever_the_file_holds() -> None:
    """A file full of NULs, or of segments outside any message, is answered with at most
    MAX_FINDINGS findings a level: the answer and the stored summary never grow past that."""
    nul_segments = ["FTX+AAA+++\x00:\x00"] * 5_000
    message = cusdec_message(extra_heading=nul_segments)
    data = interchange([message]).replace(b"UNZ+1", b"ZZZ+\x00'" * 5_000 + b"UNZ+1")
    parsed = read_interchange(data)
    assert len(parsed.findings) == MAX_FINDINGS
    assert len(parsed.messages[0].findings) == MAX_FINDINGS
    assert {f.code for f in parsed.messages[0].findings} <= {Code.INVALID_CHARACTERS,
                                                             Code.CONTROL_COUNT_DOES_NOT_MATCH}


def test_over_long_service_values_are_reported_where_they_stand() -> None:
    """S002 0004 and S003 0010 are an..35, S009 0065 an..6: the reader says so (39) rather than
    echo a value without end (a finding's text shows at most a few dozen characters)."""
    data = cusdec(sender="S" * 5000).replace(b"UNH+1+CUSDEC:", b"UNH+1+" + b"T" * 5000 + b":")
    parsed = read_interchange(data)
    too_long = [(f.segment_tag, f.element, f.component) for f in parsed.findings
                if f.code is Code.DATA_ELEMENT_TOO_LONG]
    assert too_long == [("UNB", 2, 1), ("UNH", 2, 1)]  # S009 names the message: interchange
    (message,) = parsed.messages
    assert message.findings == ()
    assert all(len(f.text) < 200 for f in parsed.findings)


def test_placing_the_findings_of_a_message_compares_none_with_another(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The invalid characters of each message were split from those in what names it by
    looking each one up in the list of the others (``f not in naming``): up to 100 x 100
    comparisons a message, so messages whose UNH 0062 holds 100 NULs were read at 0.2 MB/s.
    The split is one pass: no finding is compared with another."""
    compared = 0
    equal = Finding.__eq__

    def counted(self: Finding, other: object) -> bool:
        nonlocal compared
        compared += 1
        return equal(self, other)

    nuls = ":".join(["\x00"] * 100)
    messages = [[f"UNH+{nuls}+CUSDEC:D:96B:UN", f"UNT+2+{n}"] for n in range(1, 51)]
    data = interchange(messages)
    monkeypatch.setattr(Finding, "__eq__", counted)
    parsed = read_interchange(data)
    assert len(parsed.findings) == MAX_FINDINGS  # what names the messages: the interchange's
    assert invalid(parsed.findings)[:2] == [("UNH", 1, 1), ("UNH", 1, 2)]
    assert compared == 0
