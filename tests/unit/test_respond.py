"""The way back for agencies' answers (pipeline.respond): what an answer must be to be taken,
where a declaration stands, and the answer written in the sender's syntax."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model.canonical import (
    Answered,
    ApplicationError,
    CustomsResponse,
    Reason,
    Source,
)
from gateway.model.edifact import PartyId
from gateway.pipeline.respond import (
    MAX_ANSWER_BYTES,
    answer_problem,
    answer_tail,
    clearance,
    is_final,
    read_answer,
    render_answer,
)
from gateway.wire.edifact.envelope import read_interchange
from tests.support.pipeline import shipped_mappings

SOURCE = Source(syntax="EDIFACT", message_type="CUSDEC", release="D96B", sender="VANA",
                recipient="SWGATEWAY", interchange_reference="IC1", message_reference="M1")
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


def decision(value: str = "released", **fields: object) -> CustomsResponse:
    return CustomsResponse.model_validate({
        "source": SOURCE, "agency": "customs", "decision": value, "decided_at": NOW,
        "answers": Answered(document_reference="DEC-1", correlation_id="swg-1-1-customs"),
        **fields})


@pytest.mark.parametrize(("states", "overall"), [
    ({}, "awaiting"),
    ({"customs": "awaiting", "quarantine": "awaiting"}, "awaiting"),
    ({"customs": "released", "quarantine": "awaiting"}, "in_progress"),
    ({"customs": "released", "quarantine": "inspection"}, "in_progress"),
    ({"customs": "released", "quarantine": "licence_passed"}, "in_progress"),
    ({"customs": "released", "quarantine": "released"}, "released"),
    ({"customs": "released"}, "released"),
    ({"customs": "released", "quarantine": "licence_failed"}, "rejected"),
    ({"customs": "rejected", "quarantine": "released"}, "rejected"),
    ({"customs": "cancelled", "quarantine": "released"}, "cancelled"),
    ({"customs": "application_error", "quarantine": "released"}, "in_progress"),
])
def test_a_declaration_is_released_only_once_every_agency_released_it(
        states: dict[str, str], overall: str) -> None:
    assert clearance(states) == overall


def test_final_decisions() -> None:
    assert is_final(decision("released")) and is_final(decision("licence_failed"))
    assert not is_final(decision("accepted")) and not is_final(decision("inspection"))
    error = ApplicationError(source=SOURCE, answers=Answered(document_reference="DEC-1"),
                             errors=(Reason(text="no such office"),), reported_at=NOW)
    assert is_final(error)


@pytest.mark.parametrize(("body", "problem"), [
    (b"", "not a canonical answer"),
    (b"\xff\xfe", "not a canonical answer"),
    (b"[]", "not a canonical answer"),
    (b'{"kind": "Nonsense"}', "not a canonical answer"),
    (b'{"kind": "CustomsResponse"}', "first at CustomsResponse.source: Field required"),
    (b" " * (MAX_ANSWER_BYTES + 1), "an answer is at most"),
])
def test_what_is_not_an_answer_says_why(body: bytes, problem: str) -> None:
    found = read_answer(body, None)
    assert isinstance(found, str) and problem in found


def test_a_declaration_is_not_an_answer() -> None:
    declaration = {"kind": "CustomsDeclaration", "source": SOURCE.model_dump(),
                   "declaration_number": "D1", "document_code": "929", "function": "original"}
    found = read_answer(json.dumps(declaration).encode(), None)
    assert found == ("a CustomsDeclaration is not an answer (CustomsResponse, "
                     "ApplicationError or PaymentConfirmation)")


def test_the_type_property_must_agree_with_the_body() -> None:
    body = decision().model_dump_json().encode()
    assert read_answer(body, "CustomsResponse") == decision()
    assert read_answer(body, "ApplicationError") == (
        "its type property says 'ApplicationError' but it is a CustomsResponse")


@given(st.binary(max_size=300))
def test_any_bytes_are_an_answer_or_a_reason_never_an_exception(body: bytes) -> None:
    assert isinstance(read_answer(body, None), str | CustomsResponse | ApplicationError)


def test_an_agency_answers_only_as_itself_and_only_for_what_it_names() -> None:
    answer = decision()
    assert answer_problem(answer, "customs", "swg-1-1-customs") is None
    assert answer_problem(answer, "quarantine", "swg-1-1-customs") == (
        "published by 'quarantine' but claims to be 'customs': an agency answers only as "
        "itself")
    assert answer_problem(answer, "customs", None) == (
        "no correlation_id: an answer names the delivery it answers")
    assert "is not the correlation_id 'swg-9-1-customs'" in str(
        answer_problem(answer, "customs", "swg-9-1-customs"))


@pytest.mark.parametrize(("release", "version"), [("D96B", "3"), ("D01B", "4")])
def test_the_answer_is_written_from_the_gateway_to_whom_the_contrl_went(
        release: str, version: str) -> None:
    answer = decision("documents_required", agency_reference="CUS-7",
                      reasons=(Reason(code="A1", text="invoice missing"),))
    data = render_answer(answer, shipped_mappings(), release=release,
                         gateway=PartyId("SWGATEWAY", "ZZZ"), reply_to=PartyId("VANA", "14"),
                         syntax_version=version, control_reference="R42", prepared=NOW)
    parsed = read_interchange(data)
    header = parsed.header
    assert (header.sender, header.recipient) == (PartyId("SWGATEWAY", "ZZZ"),
                                                 PartyId("VANA", "14"))
    assert (header.syntax_version, header.control_reference) == (version, "R42")
    (message,) = parsed.messages
    assert (message.identifier.type, message.identifier.directory) == ("CUSRES", release)
    text = data.decode("latin-1")
    assert "GIS+6'" in text and "RFF+AFM:CUS-7'" in text and "NAD+MS+customs'" in text
    mapping = shipped_mappings().get("CUSRES", release)
    assert mapping is not None
    back = mapping.read(parsed, message)
    assert isinstance(back, CustomsResponse)
    assert (back.decision, back.agency_reference) == ("documents_required", "CUS-7")


def test_answer_names_say_message_agency_and_answer_number() -> None:
    assert answer_tail(1, "customs", 2, "CustomsResponse") == "1.customs.2.cusres.edi"
    assert answer_tail(3, "quarantine", 1, "ApplicationError") == "3.quarantine.1.aperak.edi"
