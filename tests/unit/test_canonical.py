"""The canonical models: their JSON Schemas are generated and committed, and a canonical
message survives JSON both ways."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from gateway.app.canonical_schemas import write_canonical_schemas
from gateway.model.canonical import (
    CANONICAL_ADAPTER,
    KINDS,
    Answered,
    CustomsDeclaration,
    CustomsResponse,
    Reason,
    Source,
)
from gateway.model.canonical.common import Amount
from gateway.pipeline.process import process_submission
from tests.support.edifact import cusdec
from tests.support.pipeline import demo_context

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "canonical"


def test_the_committed_json_schemas_are_current(tmp_path: Path) -> None:
    for path in write_canonical_schemas(tmp_path):
        committed = SCHEMAS / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{committed}: make schemas"
    assert {p.name for p in SCHEMAS.glob("*.json")} == {f"{k}.schema.json" for k in KINDS}


def test_every_schema_names_its_kind_and_version() -> None:
    for kind in KINDS:
        schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
        assert schema["properties"]["kind"]["const"] == kind
        assert "schema_version" in schema["properties"]
        assert schema["additionalProperties"] is False


def test_a_declaration_survives_json_both_ways() -> None:
    outcome = process_submission(cusdec(("0303.55", "8471")), demo_context())
    declaration = outcome.messages[0].canonical
    assert isinstance(declaration, CustomsDeclaration)
    again = CANONICAL_ADAPTER.validate_json(declaration.model_dump_json())
    assert again == declaration
    assert declaration.hs_chapters == frozenset({"03", "84"})
    assert declaration.document_reference == "DEC-1"


def test_a_customs_response_points_back_to_the_declaration() -> None:
    response = CustomsResponse(
        source=Source(syntax="canonical", message_type="AgencyDecision", release="1",
                      sender="customs", recipient="DEMOVAN", interchange_reference="",
                      message_reference="1"),
        agency="customs",
        answers=Answered(document_reference="DEC-1", interchange_reference="ICR0001",
                         message_reference="1", correlation_id="swg-1-1"),
        decision="released", decided_at=dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC),
        reasons=(Reason(code="A1", text="documents in order"),),
        duties=(Amount(qualifier="161", value=Decimal("1250.00"), currency="TWD"),))
    text = response.model_dump_json()
    assert json.loads(text)["duties"][0]["value"] == "1250.00"  # decimals keep their digits
    assert CANONICAL_ADAPTER.validate_json(text) == response
    assert response.document_reference == "DEC-1"
