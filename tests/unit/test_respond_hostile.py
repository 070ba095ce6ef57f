"""An agency's answer that cannot be written as it is, or that names another declaration than
the delivery it answers, is refused (pipeline.respond), never written changed: the trader
must read what the agency decided, about the declaration it decided on."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import RenderError
from gateway.model.canonical import (
    Answered,
    ApplicationError,
    CustomsResponse,
    Reason,
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


@pytest.mark.parametrize(("answer", "where", "character"), [
    (decision(reasons=[Reason(text="台灣 quarantine")]), "reasons.0.text", "U+53F0"),
    (decision(reasons=[Reason(text="duty 10 €")]), "reasons.0.text", "U+20AC"),
    (decision(reasons=[Reason(text="ok", code="A\x00")]), "reasons.0.code", "U+0000"),
    (decision(agency_reference="REG\x1b1"), "agency_reference", "U+001B"),
    (decision(answers=ANSWERED.model_copy(update={"document_reference": "DEC\x001"})),
     "answers.document_reference", "U+0000"),
    (ApplicationError(source=SOURCE, answers=ANSWERED, reported_at=NOW,
                      errors=(Reason(text="no such office"), Reason(text="\ufffe"))),
     "errors.1.text", "U+FFFE"),
])
def test_a_value_the_answers_character_set_cannot_carry_is_refused(
        answer: CustomsResponse | ApplicationError, where: str, character: str) -> None:
    """Before, the writer put "." in its place: a Chinese reason became "..", an agency's
    reference "REG.1", which the trader would quote back."""
    with pytest.raises(RenderError, match=re.escape(f"{where}: ")
                       + f".* holds {re.escape(character)}, which an UNOC"):
        render(answer)


def test_what_latin_1_holds_is_written_as_it_is() -> None:
    data = render(decision(reasons=[Reason(text="Rückfrage: café, naïve")],
                           agency_reference="Ä-1"))
    assert "FTX+AAO+++Rückfrage?: café, naïve'".encode("latin-1") in data.replace(b"\n", b"")
    assert "RFF+AFM:Ä-1'".encode("latin-1") in data.replace(b"\n", b"")


def test_the_correlation_id_is_never_written_so_never_checked() -> None:
    answered = ANSWERED.model_copy(update={"correlation_id": "swg-1-1-customs\x00"})
    assert b"swg-1-1" not in render(decision(answers=answered))


@given(text=st.text(max_size=70))
def test_any_reason_is_written_or_refused_never_changed(text: str) -> None:
    try:
        data = render(decision(reasons=[Reason(text=text)]))
    except RenderError as exc:
        assert "reasons.0.text" in str(exc) or "FTX" in str(exc)
        return
    escaped = "".join(f"?{ch}" if ch in "+:'?" else ch for ch in text)
    assert f"FTX+AAO+++{escaped}'".encode("latin-1") in data.replace(b"\n", b"") or not text


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
