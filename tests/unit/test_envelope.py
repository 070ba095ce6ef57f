"""The envelope reader: every finding at its level, with its ISO 9735 code."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.config.partners import EdifactId, Partner
from gateway.errors import EnvelopeError
from gateway.model.edifact import PartyId
from gateway.model.findings import SyntaxErrorCode as Code
from gateway.pipeline.process import process_submission
from gateway.wire.edifact.envelope import read_interchange
from tests.support.corpus_verdicts import VERDICTS
from tests.support.edifact import EDIFACT_CORPUS, cusdec, cusdec_message, interchange
from tests.support.pipeline import demo_context


def codes(findings: object) -> list[int]:
    return [int(f.code) for f in findings]  # type: ignore[attr-defined]


def test_a_good_interchange_has_no_findings() -> None:
    parsed = read_interchange(cusdec())
    assert parsed.accepted and parsed.messages[0].accepted
    assert parsed.header.sender.id == "DEMOVAN" and parsed.header.control_reference == "ICR0001"
    assert parsed.messages[0].identifier.directory == "D96B"


def test_wrong_unt_count_rejects_that_message_only() -> None:
    data = interchange([cusdec_message("1", unt_count=99), cusdec_message("2")])
    parsed = read_interchange(data)
    first, second = parsed.messages
    assert parsed.accepted
    assert codes(first.findings) == [Code.CONTROL_COUNT_DOES_NOT_MATCH]
    assert first.findings[0].segment_tag == "UNT" and first.findings[0].element == 1
    assert second.accepted


def test_unt_reference_must_match_unh() -> None:
    message = cusdec_message("1")
    message[-1] = message[-1].rsplit("+", 1)[0] + "+2"
    assert codes(read_interchange(interchange([message])).messages[0].findings) == [
        Code.REFERENCES_DO_NOT_MATCH]


def test_wrong_unz_reference_and_count_are_interchange_errors() -> None:
    parsed = read_interchange(cusdec(unz_reference="OTHER", unz_count=3))
    assert codes(parsed.findings) == [Code.CONTROL_COUNT_DOES_NOT_MATCH,
                                      Code.REFERENCES_DO_NOT_MATCH]
    assert all(f.segment_tag == "UNZ" for f in parsed.findings)


def test_missing_unz_and_unt() -> None:
    data = b"UNB+UNOA:3+A+B+261122:0930+R1'UNH+1+CUSDEC:D:96B:UN'BGM+929+X'"
    parsed = read_interchange(data)
    assert Code.SERVICE_SEGMENT_MISSING_OR_INVALID in codes(parsed.findings)
    assert codes(parsed.messages[0].findings) == [Code.SERVICE_SEGMENT_MISSING_OR_INVALID]


def test_segments_outside_messages_and_empty_interchanges() -> None:
    data = b"UNB+UNOA:3+A+B+261122:0930+R1'BGM+929+X'UNZ+0+R1'"
    assert codes(read_interchange(data).findings) == [
        Code.INVALID_OCCURRENCE_OUTSIDE_MESSAGE, Code.LOWER_LEVEL_EMPTY]


def test_groups_are_counted_and_checked() -> None:
    message = cusdec_message("1")
    good = (b"UNB+UNOA:3+A+B+261122:0930+R1'UNG+CUSDEC+A+B+261122:0930+G1+UN+D:96B'"
            + "".join(s + "'" for s in message).encode() + b"UNE+1+G1'UNZ+1+R1'")
    parsed = read_interchange(good)
    assert parsed.accepted and parsed.messages[0].group_reference == "G1"
    bad = good.replace(b"UNE+1+G1", b"UNE+2+G9")
    assert codes(read_interchange(bad).findings) == [Code.CONTROL_COUNT_DOES_NOT_MATCH,
                                                     Code.REFERENCES_DO_NOT_MATCH]


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x00\xff\xfe" * 10, b"UNA:+", b"UNB"])
def test_no_readable_unb_raises_envelope_error(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        read_interchange(data)


def test_una_bom_and_other_separators() -> None:
    data = b"\xef\xbb\xbfUNA|*.? ~UNB*UNOC|3*DEMOVAN*SWGATEWAY*261122|0930*R?*1~" \
           b"UNH*1*CUSDEC|D|96B|UN~BGM*929*X~UNT*3*1~UNZ*1*R?*1~"
    parsed = read_interchange(data)
    assert parsed.accepted and parsed.header.control_reference == "R*1"
    assert parsed.delimiters.element == "*"


def test_level_b_default_separators_without_una() -> None:
    data = b"UNB\x1dUNOB\x1f3\x1dA\x1dB\x1d261122\x1f0930\x1dR1\x1c" \
           b"UNH\x1d1\x1dCUSDEC\x1fD\x1f96B\x1fUN\x1cUNT\x1d2\x1d1\x1cUNZ\x1d1\x1dR1\x1c"
    assert read_interchange(data).accepted


def test_bytes_outside_the_declared_charset_are_error_21_in_their_message() -> None:
    data = cusdec(syntax="UNOA:3").replace(b"Formosa", b"F\xf6rmosa")
    parsed = read_interchange(data)
    assert parsed.accepted
    assert codes(parsed.messages[0].findings) == [Code.INVALID_CHARACTERS]


def test_charsets_decode_as_declared() -> None:
    data = cusdec(syntax="UNOD:3").replace(b"Formosa", b"\xa9koda")  # Latin-2 S-caron
    nad = next(s for s in read_interchange(data).messages[0].segments if s.tag == "NAD")
    assert nad.value(4).startswith("Škoda")
    utf8 = cusdec(syntax="UNOY:4").replace(b"Formosa", "台灣".encode())
    nad = next(s for s in read_interchange(utf8).messages[0].segments if s.tag == "NAD")
    assert nad.value(4).startswith("台灣")


def test_unknown_syntax_identifier_is_error_2() -> None:
    assert codes(read_interchange(cusdec(syntax="XXXX:3")).findings) == [
        Code.SYNTAX_VERSION_NOT_SUPPORTED]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400),
                 st.binary(max_size=400).map(lambda tail: b"UNB+UNOC:3+A+B+1+R'" + tail),
                 st.binary(min_size=6, max_size=6).map(
                     lambda una: b"UNA" + una + b"UNB+UNOY:4+A+B+1+R'UNZ+0+R'")))
def test_random_bytes_never_crash(data: bytes) -> None:
    _checked_properties(data)


#: What a hostile partner puts in a count or a reference: superscripts, full-width and
#: Arabic-Indic digits (str.isdigit() says yes, int() says no or reads them), NUL and other
#: controls, level B separators, service characters, and runs of digits far beyond any count.
MUTATIONS = [*"+:'?*", "\x00", "\x01", "\x1c", "\x1d", "\x7f", "\x85", "\xff", " ", "A",
             "²", "\uff11", "\u0663", "\u0966", "1" * 5000, "0" * 30 + "1", "9" * 19]


def _checked_properties(data: bytes) -> None:
    """What must hold of any input: a refusal names a real 0085 code; otherwise every finding
    has one, says where it is, and tells partner values escaped and bounded."""
    try:
        parsed = read_interchange(data)
    except EnvelopeError as exc:
        assert exc.syntax_error_code in Code._value2member_map_
        return
    for finding in [*parsed.findings, *(f for m in parsed.messages for f in m.findings)]:
        assert isinstance(finding.code, Code)
        assert finding.segment_position is not None
        assert finding.segment_position <= parsed.segment_count + 1
        assert len(finding.text) < 400 and finding.text.isprintable(), finding.text


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_interchanges_never_crash(data: st.DataObject) -> None:
    original = bytearray(cusdec(("0303", "8471"), syntax=data.draw(st.sampled_from(
        ["UNOC:3", "UNOY:4", "UNOA:3"]))))
    for _ in range(data.draw(st.integers(1, 5))):
        # anywhere, or where a value starts: counts and references are what break readers
        starts = [i + 1 for i, byte in enumerate(original[:-1]) if byte in b"+:"]
        position = data.draw(st.one_of(st.integers(0, len(original) - 1),
                                       st.sampled_from(starts or [0])))
        choice = data.draw(st.sampled_from(["drop", "insert", "cut"]))
        if choice == "drop":
            del original[position]
        elif choice == "insert":
            original[position:position] = data.draw(st.sampled_from(MUTATIONS)).encode()
        else:
            del original[position:]
        if not original:
            break
    _checked_properties(bytes(original))


counts = st.lists(st.sampled_from(["0", "1", "2", "3", "²", "\uff11", "\u0663", "\x00", "1" * 5000,
                                   "9" * 19, "-", " "]), max_size=4).map("".join)


def _is_count_of_one(text: str) -> bool:
    """The oracle, written apart from the code under test: ASCII digits worth 1."""
    return bool(text) and set(text) <= set("0123456789") and text.lstrip("0") == "1"


@settings(max_examples=300, deadline=None)
@given(counts, st.sampled_from(["UNOC:3", "UNOY:4"]))
def test_a_control_count_mismatch_is_found_whatever_the_count_says(count: str,
                                                                    syntax: str) -> None:
    """UNZ 0036 and UNT 0074 are counts (ISO 9735-1 clause 10: the digits 0-9).  ``UNZ+²``
    under UNOC once raised ValueError (``'²'.isdigit()`` is true, ``int('²')`` raises), and so
    did a count of more than 4,300 digits: each must be a finding 29, never an exception."""
    codec = "latin-1" if syntax == "UNOC:3" else "utf-8"
    assume(count == count.encode(codec, errors="replace").decode(codec))
    data = cusdec(syntax=syntax).replace(b"UNZ+1+", f"UNZ+{count}+".encode(codec))
    parsed = read_interchange(data)
    mismatch = [f for f in parsed.findings if f.code is Code.CONTROL_COUNT_DOES_NOT_MATCH]
    assert (mismatch == []) == _is_count_of_one(count), mismatch
    assert all((f.segment_tag, f.element) == ("UNZ", 1) and len(f.text) < 200 for f in mismatch)
    # besides: the count's own faults as UNZ 0036 n..6 (13 missing, 37 not digits 0-9, 39
    # too long) and a NUL, an invalid character (21), all at UNZ 0036; nothing else is found
    assert {f.code for f in parsed.findings} <= {
        Code.CONTROL_COUNT_DOES_NOT_MATCH, Code.INVALID_CHARACTERS, Code.MISSING,
        Code.INVALID_TYPE_OF_CHARACTERS, Code.DATA_ELEMENT_TOO_LONG}
    assert all((f.segment_tag, f.element) == ("UNZ", 1) for f in parsed.findings)
    _checked_properties(data)
    message = cusdec_message("1")
    message[-1] = "UNT+@COUNT@+1"
    in_message = read_interchange(interchange([message], syntax=syntax).replace(
        b"@COUNT@", count.encode(codec)))
    mismatch = [f for f in in_message.messages[0].findings
                if f.code is Code.CONTROL_COUNT_DOES_NOT_MATCH]
    assert (mismatch == []) == (count.lstrip("0") == str(len(message))), mismatch


@pytest.mark.skipif(not EDIFACT_CORPUS.is_dir(), reason="../shared/corpus is absent")
def test_every_corpus_file_is_read_or_refused_with_an_envelope_error() -> None:
    for path in sorted(EDIFACT_CORPUS.iterdir()):
        if path.is_file():
            with contextlib.suppress(EnvelopeError):
                read_interchange(path.read_bytes())


@pytest.mark.skipif(not EDIFACT_CORPUS.is_dir(), reason="../shared/corpus is absent")
def test_corpus_count_errors_are_found() -> None:
    cuscar = read_interchange((EDIFACT_CORPUS / "cuscar_d95b_uk_simple.edi").read_bytes())
    assert codes(cuscar.messages[0].findings) == [Code.CONTROL_COUNT_DOES_NOT_MATCH]
    trailers = read_interchange(
        (EDIFACT_CORPUS / "NEG_invoic_d00a_invalid_trailers.edi").read_bytes())
    assert not trailers.accepted or not all(m.accepted for m in trailers.messages)


@pytest.mark.skipif(not EDIFACT_CORPUS.is_dir(), reason="../shared/corpus is absent")
@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_the_answer_to_each_corpus_file(name: str) -> None:
    data = (EDIFACT_CORPUS / name).read_bytes()
    context = demo_context()
    with contextlib.suppress(EnvelopeError):  # as the partner that sent it, addressed to us
        header = read_interchange(data).header
        context = dataclasses.replace(
            context, gateway=PartyId(header.recipient.id or "X"),
            partner=Partner(id="sender", name="sender",
                            edifact_ids=(EdifactId(id=header.sender.id),)))
    outcome = process_submission(data, context)
    kind, interchange_codes, message_codes = VERDICTS[name]
    assert outcome.acknowledgement.kind == kind
    assert tuple(sorted({int(f.code) for f in outcome.findings})) == interchange_codes
    assert tuple((m.identifier.type, tuple(sorted({int(f.code) for f in m.findings})))
                 for m in outcome.messages) == message_codes


@pytest.mark.skipif(not EDIFACT_CORPUS.is_dir(), reason="../shared/corpus is absent")
def test_the_verdict_table_covers_the_whole_corpus() -> None:
    assert set(VERDICTS) == {p.name for p in EDIFACT_CORPUS.glob("*.edi")}
