"""An agency's answer that cannot be written as it is, or that names another declaration than
the delivery it answers, is refused (pipeline.respond), never written changed: the trader
must read what the agency decided, about the declaration it decided on."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.model.canonical import (
    Answered,
    ApplicationError,
    CustomsResponse,
    Source,
)
from gateway.model.edifact import PartyId
from gateway.pipeline.respond import render_answer, tie_answer
from tests.support.pipeline import shipped_mappings

SOURCE = Source(syntax="EDIFACT", message_type="CUSDEC", release="D96B", sender="VANA",
                recipient="SWGATEWAY", interchange_reference="IC1", message_reference="M1")
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
ANSWERED = Answered(document_reference="DEC-1", interchange_reference="IC1",
                    message_reference="M1", correlation_id="swg-1-1-customs")


def decision(**fields: object) -> CustomsResponse:
    return CustomsResponse.model_validate({
        "source": SOURCE, "agency": "customs", "decision": "rejected", "decided_at": NOW,
        "answers": ANSWERED, **fields})


def render(answer: CustomsResponse | ApplicationError) -> bytes:
    return render_answer(answer, shipped_mappings(), release="D96B",
                         gateway=PartyId("SWGATEWAY"), reply_to=PartyId("VANA"),
                         syntax_version="3", control_reference="R1", prepared=NOW)


def tie(answer: CustomsResponse | ApplicationError, document: str | None = "DEC-1",
        interchange: str | None = "IC1", message: str | None = "M1"
        ) -> CustomsResponse | ApplicationError | str:
    return tie_answer(answer, document_reference=document, interchange_reference=interchange,
                      message_reference=message)


@pytest.mark.parametrize(("field", "value"), [
    ("document_reference", "DEC-2"),
    ("interchange_reference", "IC2"),
    ("message_reference", "M2"),
])
def test_an_answer_naming_another_message_than_its_delivery_is_refused(
        field: str, value: str) -> None:
    answer = decision(answers=ANSWERED.model_copy(update={field: value}))
    ours = {"document_reference": "DEC-1", "interchange_reference": "IC1",
            "message_reference": "M1"}[field]
    assert tie(answer) == (f"answers.{field} {value!r} is not {ours!r}, that of the message "
                           "its correlation_id names")


def test_what_the_answer_leaves_out_is_filled_in_from_the_delivery() -> None:
    bare = decision(answers=Answered(document_reference="DEC-1"))
    tied = tie(bare)
    assert not isinstance(tied, str)
    assert tied.answers == Answered(document_reference="DEC-1", interchange_reference="IC1",
                                    message_reference="M1")
    assert tie(decision()) == decision()


def test_a_declaration_without_a_number_is_answered_under_the_agencys_reference() -> None:
    """The SDK names the interchange reference when the declaration has no number."""
    answer = decision(answers=Answered(document_reference="IC1"))
    tied = tie(answer, document=None)
    assert not isinstance(tied, str) and tied.answers.document_reference == "IC1"
