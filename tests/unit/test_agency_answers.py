"""The SDK's answers follow the contract (docs/answers.md) whatever the handler built, and a
delivery is read from what the gateway publishes (a missing ``aeo`` header is false; a body
that is not canonical is malformed)."""

from __future__ import annotations

import json

import pytest

from gateway.agency import answers
from gateway.agency.answers import outgoing
from gateway.agency.delivery import MalformedDelivery, read_delivery
from gateway.model.canonical import CANONICAL_ADAPTER, ApplicationError, CustomsResponse
from gateway.pipeline.respond import answer_problem, read_answer
from tests.support.agencies import declaration, delivery


def test_every_builder_answers_the_delivery_as_the_contract_says() -> None:
    fish = delivery(declaration(number="DEC-7"), agency="quarantine", submission=12)
    built = [
        answers.accepted(fish, "QUA-1"), answers.released(fish),
        answers.rejected(fish, ["Wrong"]), answers.documents_required(fish, ["Invoice"]),
        answers.inspection(fish), answers.held(fish, ["Detained"]),
        answers.licence_passed(fish, "QUA-1"), answers.licence_failed(fish, ["No 852"]),
    ]
    assert [a.decision for a in built] == [
        "accepted", "released", "rejected", "documents_required", "inspection", "held",
        "licence_passed", "licence_failed"]
    for answer in built:
        assert answer.agency == "quarantine"
        assert answer.answers.correlation_id == "swg-12-1-quarantine"
        assert answer.answers.document_reference == "DEC-7"
        assert (answer.answers.interchange_reference, answer.answers.message_reference) \
            == ("IC1", "1")
        assert answer.source == fish.message.source
        assert answer.decided_at.tzinfo is not None
    assert built[0].agency_reference == "QUA-1"
    error = answers.application_error(fish, ["Cannot read it"])
    assert isinstance(error, ApplicationError)
    assert error.answers.correlation_id == "swg-12-1-quarantine"


def test_published_answers_are_numbered_and_pass_the_gateways_checks() -> None:
    fish = delivery(declaration(), agency="customs")
    sent = outgoing(fish, [answers.accepted(fish, "CUS-1"), answers.released(fish, "CUS-1")])
    assert [(a.message_id, a.type) for a in sent] == [
        ("swg-1-1-customs:1", "CustomsResponse"), ("swg-1-1-customs:2", "CustomsResponse")]
    for answer in sent:
        read = read_answer(answer.body, answer.type)
        assert not isinstance(read, str)
        assert answer_problem(read, "customs", fish.message_id) is None


def test_the_contract_fields_are_set_whatever_the_handler_built() -> None:
    fish = delivery(declaration(), agency="customs")
    other = delivery(declaration(number="OTHER"), agency="quarantine", submission=9)
    (sent,) = outgoing(fish, [answers.released(other)])
    body = json.loads(sent.body)
    assert body["agency"] == "customs"
    assert body["answers"]["correlation_id"] == "swg-1-1-customs"
    assert body["answers"]["document_reference"] == "DEC-1"
    with pytest.raises(TypeError, match="CustomsResponse, ApplicationError or PaymentConfirmation"):
        outgoing(fish, [fish.message])  # type: ignore[list-item]


def test_what_the_traders_answer_cannot_hold_is_refused_when_built() -> None:
    fish = delivery(declaration())
    with pytest.raises(ValueError, match="1 to 70 characters"):
        answers.rejected(fish, ["x" * 71])
    with pytest.raises(ValueError, match="needs at least one reason"):
        answers.licence_failed(fish, [])
    with pytest.raises(ValueError, match="agency reference"):
        answers.accepted(fish, "R" * 36)
    assert answers.rejected(fish, [answers.reason("Bad", "12")]).reasons[0].code == "12"


def read(body: bytes, headers: dict[str, object] | None, message_id: str | None = "swg-1-1-c"
         ) -> object:
    return read_delivery("customs", message_id=message_id, correlation_id="swg-1-1",
                         type_="CustomsDeclaration", headers=headers, body=body,
                         redelivered=False)


def test_a_delivery_is_read_from_what_the_gateway_publishes() -> None:
    body = declaration().model_dump_json().encode()
    got = read(body, {"role": "copy", "aeo": True, "partner": "van-a"})
    assert got.is_copy and got.aeo and got.partner == "van-a"  # type: ignore[attr-defined]
    plain = read(body, None)
    assert not plain.is_copy and not plain.aeo  # type: ignore[attr-defined]
    assert not read(body, {"aeo": "true"}).aeo  # type: ignore[attr-defined]
    assert CANONICAL_ADAPTER.validate_json(body) == plain.message  # type: ignore[attr-defined]


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"kind": "CustomsDeclaration"}'])
def test_a_body_that_is_not_canonical_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedDelivery, match="not a canonical message"):
        read(body, {})


def test_a_delivery_without_message_id_is_malformed() -> None:
    with pytest.raises(MalformedDelivery, match="no message_id"):
        read(declaration().model_dump_json().encode(), {}, message_id=None)


def test_an_answer_without_declaration_number_names_the_interchange() -> None:
    response = answers.released(delivery(declaration(number="")))
    assert isinstance(response, CustomsResponse)
    assert response.answers.document_reference == "IC1"
