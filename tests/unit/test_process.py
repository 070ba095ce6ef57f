"""The whole pure pipeline on one submission: verdicts, canonical messages, routes, answers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model.canonical import CustomsDeclaration
from gateway.model.findings import SyntaxErrorCode as Code
from gateway.model.outcome import Status
from gateway.pipeline.process import process_submission
from gateway.pipeline.validate import Rules, validate
from gateway.wire.edifact.envelope import read_interchange
from tests.support.edifact import EDIFACT_CORPUS, cusdec, cusdec_message, interchange
from tests.support.pipeline import demo_context, shipped_catalog


def contrl_segments(body: bytes) -> dict[str, list[list[str]]]:
    parsed = read_interchange(body)
    assert parsed.accepted, parsed.findings  # our CONTRL passes our own envelope checks
    assert all(m.accepted for m in parsed.messages)
    (message,) = parsed.messages  # ... and our validator against the CONTRL structure
    compiled = shipped_catalog().message("CONTRL", message.identifier.directory)
    assert compiled is not None
    report = validate(message.segments, compiled, Rules(parsed.header.syntax_identifier))
    assert report.errors == [], [f.describe() for f in report.errors]
    segments: dict[str, list[list[str]]] = {}
    for segment in parsed.messages[0].segments:
        segments.setdefault(segment.tag, []).append(
            [":".join(e[0]).rstrip(":") for e in segment.elements])
    return segments


def test_food_goes_to_customs_and_quarantine() -> None:
    outcome = process_submission(cusdec(("0303.55", "8438.50")), demo_context())
    assert outcome.status is Status.ACCEPTED
    (message,) = outcome.messages
    assert message.agencies == ("customs", "quarantine")
    declaration = message.canonical
    assert isinstance(declaration, CustomsDeclaration)
    assert declaration.declaration_number == "DEC-1"
    assert declaration.function == "original"
    assert declaration.customs_office == "TWKHH"
    assert declaration.commodity_codes == ("030355", "843850")  # digits only (issue 9)
    item = declaration.goods_items[0]
    assert item.description == "Goods item 1: described, with release characters"
    assert item.country_of_origin == "NO"
    assert item.gross_weight is not None and item.gross_weight.value == Decimal("1250.5")
    assert item.amounts[0].value == Decimal(1000) and item.amounts[0].currency == "USD"
    assert declaration.parties[0].role == "DT" and declaration.parties[0].country == "TW"


def test_machinery_goes_to_customs_only() -> None:
    outcome = process_submission(cusdec(("8471.30",)), demo_context())
    assert outcome.messages[0].agencies == ("customs",)


def test_d01b_maps_like_d96b() -> None:
    data = interchange([cusdec_message(release="01B", commodity_codes=("0201",))])
    outcome = process_submission(data, demo_context())
    assert outcome.messages[0].agencies == ("customs", "quarantine")


def test_accepting_contrl_echoes_the_interchange() -> None:
    outcome = process_submission(cusdec(), demo_context())
    contrl = contrl_segments(outcome.acknowledgement.body)
    assert contrl["UNH"][0] == ["1", "CONTRL:D:3:UN"]
    assert contrl["UCI"][0] == ["ICR0001", "DEMOVAN:ZZZ", "SWGATEWAY:ZZZ", "7"]
    assert contrl["UCM"][0] == ["1", "CUSDEC:D:96B:UN", "7"]
    head = read_interchange(outcome.acknowledgement.body).header
    assert (head.sender.id, head.recipient.id, head.control_reference) == (
        "SWGATEWAY", "DEMOVAN", "77")


def test_syntax_4_gets_a_syntax_4_contrl() -> None:
    outcome = process_submission(cusdec(syntax="UNOC:4"), demo_context())
    parsed = read_interchange(outcome.acknowledgement.body)
    assert parsed.header.syntax_version == "4" and len(parsed.header.prepared_date) == 8
    assert contrl_segments(outcome.acknowledgement.body)["UNH"][0] == ["1", "CONTRL:4:1:UN"]


def test_a_bad_message_is_rejected_and_the_good_one_goes_on() -> None:
    data = interchange([cusdec_message("1", unt_count=5), cusdec_message("2")])
    outcome = process_submission(data, demo_context())
    assert outcome.status is Status.PARTIALLY_ACCEPTED
    bad, good = outcome.messages
    assert not bad.accepted and bad.agencies == ()
    assert good.accepted and good.agencies == ("customs", "quarantine")
    contrl = contrl_segments(outcome.acknowledgement.body)
    assert contrl["UCM"] == [["1", "CUSDEC:D:96B:UN", "4", "29", "UNT", "2"],
                             ["2", "CUSDEC:D:96B:UN", "7"]]


def test_wrong_unz_reference_rejects_the_interchange() -> None:
    outcome = process_submission(cusdec(unz_reference="NOPE"), demo_context())
    assert outcome.status is Status.REJECTED and outcome.messages == ()
    uci = contrl_segments(outcome.acknowledgement.body)["UCI"][0]
    assert uci[3:] == ["4", "28", "UNZ", "3"]  # 0098: the tag is position 1


def test_a_sender_that_is_not_the_partner_is_rejected() -> None:
    outcome = process_submission(cusdec(sender="SOMEBODYELSE"), demo_context())
    assert outcome.status is Status.REJECTED
    uci = contrl_segments(outcome.acknowledgement.body)["UCI"][0]
    assert uci[3:] == ["4", str(int(Code.UNKNOWN_INTERCHANGE_SENDER)), "UNB", "3"]
    # the answer still goes to the authenticated partner's own identity
    assert read_interchange(outcome.acknowledgement.body).header.recipient.id == "DEMOVAN"


def test_an_interchange_for_someone_else_is_rejected() -> None:
    outcome = process_submission(cusdec(recipient="OTHERHUB"), demo_context())
    uci = contrl_segments(outcome.acknowledgement.body)["UCI"][0]
    assert uci[3:5] == ["4", str(int(Code.RECIPIENT_NOT_ACTUAL_RECIPIENT))]


def test_garbage_gets_a_plain_report() -> None:
    outcome = process_submission(b"\x00\x01 this is not EDIFACT", demo_context())
    assert outcome.status is Status.REJECTED
    assert outcome.acknowledgement.kind == "ERROR_REPORT"
    text = outcome.acknowledgement.body.decode()
    assert "decl.edi" in text and "UNA or UNB" in text and "Nothing" in text


def test_xml_is_answered_not_dropped() -> None:
    outcome = process_submission(b"<?xml version='1.0'?><Declaration/>", demo_context())
    assert outcome.acknowledgement.kind == "ERROR_REPORT"
    assert b"XML" in outcome.acknowledgement.body


def test_unsupported_message_types_and_releases() -> None:
    data = interchange([
        ["UNH+1+INVOIC:D:96A:UN", "BGM+380+1", "UNT+3+1"],
        cusdec_message("2", release="95B"),
    ])
    outcome = process_submission(data, demo_context())
    assert outcome.status is Status.REJECTED
    ucm = contrl_segments(outcome.acknowledgement.body)["UCM"]
    assert ucm[0][2:4] == ["4", str(int(Code.VALUE_NOT_SUPPORTED_IN_POSITION))]
    assert ucm[1][2:4] == ["4", str(int(Code.MESSAGE_VERSION_NOT_SUPPORTED))]


def test_bad_business_values_are_located_with_ucs_and_ucd() -> None:
    message = cusdec_message("1")
    message = [s.replace("MOA+40:1000:USD", "MOA+40:ten:USD") for s in message]
    outcome = process_submission(interchange([message]), demo_context())
    contrl = contrl_segments(outcome.acknowledgement.body)
    moa_position = next(i for i, s in enumerate(message, start=1) if s.startswith("MOA"))
    assert contrl["UCS"] == [[str(moa_position)]]
    assert contrl["UCD"] == [["37", "2:2"]]  # a letter in a numeric element


def test_missing_bgm_is_reported_missing() -> None:
    message = [s for s in cusdec_message("1") if not s.startswith("BGM")]
    message[-1] = f"UNT+{len(message)}+1"
    outcome = process_submission(interchange([message]), demo_context())
    # ISO 9735-4 0096: a missing segment is reported at the last one processed before it
    assert contrl_segments(outcome.acknowledgement.body)["UCS"] == [["1", "13"]]


def test_nothing_matched_is_accepted_but_unroutable() -> None:
    from gateway.config.routing import RoutingTable

    only_food = RoutingTable.model_validate({"rules": [
        {"name": "food", "match": {"hs_chapters": ["01-24"]}, "deliver": ["quarantine"]}]})
    outcome = process_submission(cusdec(("8471",)), demo_context(routing=only_food))
    assert outcome.status is Status.ACCEPTED
    assert outcome.messages[0].agencies == () and "unroutable" in outcome.summary


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.builds(
    lambda cut, junk: cusdec(("0303",))[:cut] + junk,
    st.integers(0, 600), st.binary(max_size=20)))
def test_every_input_gets_an_answer(data: bytes) -> None:
    """Rule 3: whatever arrives, the pipeline returns an answer (and raises nothing)."""
    outcome = process_submission(data, demo_context())
    assert outcome.acknowledgement is not None
    assert outcome.acknowledgement.body
    if outcome.acknowledgement.kind == "CONTRL":
        contrl_segments(outcome.acknowledgement.body)


@pytest.mark.skipif(not EDIFACT_CORPUS.is_dir(), reason="../shared/corpus is absent")
def test_every_corpus_file_gets_an_answer() -> None:
    for path in sorted(EDIFACT_CORPUS.glob("*.edi")):
        outcome = process_submission(path.read_bytes(), demo_context())
        assert outcome.acknowledgement.body, path.name
        # nothing in the corpus is a CUSDEC from our demo partner: none of it is routed
        assert outcome.deliverable == (), path.name


def test_a_declaration_without_a_number_is_missing_data() -> None:
    message = [s.replace("BGM+929+DEC-1+9", "BGM+929++9") for s in cusdec_message("1")]
    outcome = process_submission(interchange([message]), demo_context())
    contrl = contrl_segments(outcome.acknowledgement.body)
    assert contrl["UCS"] == [["2"]] and contrl["UCD"] == [["13", "3:1"]]


@st.composite
def mutated_cusdecs(draw: st.DrawFn) -> bytes:
    """A valid CUSDEC with segments dropped, doubled or swapped, values made too long or given
    characters of the wrong kind, or the whole cut short."""
    message = cusdec_message(commodity_codes=("0303", "8471"))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(1, len(message) - 2))
        operation = draw(st.sampled_from(["drop", "double", "swap", "long", "chars", "empty"]))
        if operation == "drop":
            del message[at]
        elif operation == "double":
            message.insert(at, message[at])
        elif operation == "swap" and at + 1 < len(message) - 1:
            message[at], message[at + 1] = message[at + 1], message[at]
        elif operation == "long":
            message[at] += "+" + "9" * draw(st.integers(20, 80))
        elif operation == "chars":
            message[at] += ":" + draw(st.text(st.characters(codec="latin-1"), min_size=1,
                                              max_size=5))
        else:
            message[at] = message[at][:3]
    data = interchange([message], sender="DEMOVAN")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=150, deadline=None)
@given(mutated_cusdecs())
def test_mutations_are_answered_with_a_valid_contrl(data: bytes) -> None:
    outcome = process_submission(data, demo_context())
    assert outcome.acknowledgement is not None
    if outcome.acknowledgement.kind == "CONTRL":
        contrl_segments(outcome.acknowledgement.body)


def test_messages_in_a_group_are_answered_under_ucf() -> None:
    good, bad = cusdec_message("1"), cusdec_message("2", unt_count=4)
    body = "".join(s + "'" for s in (*good, *bad))
    data = ("UNA:+.? 'UNB+UNOC:4+DEMOVAN+SWGATEWAY+20261122:0930+G1'"
            "UNG+CUSDEC+DEMOAPP:ZZZ+CUSTOMSAPP:ZZZ+20261122:0930+GRP7+UN+D:96B'"
            f"{body}UNE+2+GRP7'UNZ+1+G1'").encode("latin-1")
    outcome = process_submission(data, demo_context())
    assert outcome.status is Status.PARTIALLY_ACCEPTED
    contrl = contrl_segments(outcome.acknowledgement.body)
    assert contrl["UCF"] == [["GRP7", "DEMOAPP:ZZZ", "CUSTOMSAPP:ZZZ", "7"]]
    assert [u[2] for u in contrl["UCM"]] == ["7", "4"]
    segments = read_interchange(outcome.acknowledgement.body).messages[0].segments
    tags = [s.tag for s in segments]
    assert tags.index("UCF") < tags.index("UCM")  # the UCMs of a group follow its UCF


def partner_contrl(reference: str, action: str, *, syntax: str = "UNOC:3") -> bytes:
    """What a partner's system sends back about an interchange of ours."""
    version = syntax.split(":")[1]
    identifier = "CONTRL:4:1:UN" if version == "4" else "CONTRL:D:3:UN"
    segments = [f"UNH+1+{identifier}", f"UCI+{reference}+SWGATEWAY:ZZZ+DEMOVAN:ZZZ+{action}"]
    if action == "7":
        segments.append("UCM+1+CUSRES:D:96B:UN+4")
    segments.append(f"UNT+{len(segments) + 1}+1")
    return interchange([segments], syntax=syntax, control_reference="ACK1")


@pytest.mark.parametrize("syntax", ["UNOC:3", "UNOC:4"])
def test_a_partners_contrl_is_recorded_and_never_answered(syntax: str) -> None:
    outcome = process_submission(partner_contrl("42", "7", syntax=syntax), demo_context())
    assert outcome.acknowledgement is None
    assert outcome.status is Status.ACCEPTED
    (receipt,) = outcome.receipts
    assert (receipt.acknowledged_reference, receipt.action) == ("42", "7")
    assert receipt.rejected_messages == ("1",)
    assert outcome.deliverable == ()


def test_a_broken_contrl_is_rejected_and_still_not_answered() -> None:
    broken = partner_contrl("42", "4").replace(b"UCI+42+", b"UCI+")
    broken = broken.replace(b"UCI+SWGATEWAY", b"UCI++SWGATEWAY")
    outcome = process_submission(broken, demo_context())
    assert outcome.acknowledgement is None and outcome.status is Status.REJECTED
    assert "never answered" in outcome.summary


def test_a_date_that_is_not_in_its_format_is_located_for_the_partner() -> None:
    message = [s.replace("DTM+137:20261122:102", "DTM+137:20261342:102")
               for s in cusdec_message("1")]
    outcome = process_submission(interchange([message]), demo_context())
    assert outcome.status is Status.REJECTED
    contrl = contrl_segments(outcome.acknowledgement.body)
    dtm_position = next(i for i, s in enumerate(message, start=1) if s.startswith("DTM"))
    assert contrl["UCS"] == [[str(dtm_position)]]
    assert contrl["UCD"] == [["12", "2:2"]]  # 0085 12 invalid value, at C507 2380
    assert "is not a date in UNTDID 2379 format 102" in outcome.summary


def test_a_function_code_outside_the_table_is_other_not_an_error() -> None:
    message = [s.replace("BGM+929+DEC-1+9", "BGM+929+DEC-1+46") for s in cusdec_message("1")]
    outcome = process_submission(interchange([message]), demo_context())
    canonical = outcome.messages[0].canonical
    assert isinstance(canonical, CustomsDeclaration)
    assert (canonical.function, canonical.function_code) == ("other", "46")
