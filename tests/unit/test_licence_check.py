"""The pure licence check (pipeline.licence_check): each reason a citation fails, the date it
is judged on, and quantities summed per licence never exceeding what is left."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.model.canonical import CustomsDeclaration
from gateway.model.canonical.licence import Licence
from gateway.pipeline.licence_check import Standing, check, cited_numbers

ON = dt.date(2026, 6, 1)


def licence(**changes: Any) -> Licence:
    fields: dict[str, Any] = {
        "number": "LIC-1", "holder": "IMP001", "issuing_agency": "trade",
        "licence_kind": "import", "commodity_codes": ("0303", "8438.50"),
        "quantity": Decimal(100), "unit": "KGM", "valid_from": dt.date(2026, 1, 1),
        "valid_until": dt.date(2026, 12, 31)}
    return Licence.model_validate({**fields, **changes})


def declaration(*items: tuple[str, str, Decimal | None, str], parties: tuple[tuple[str, str],
                ...] = (("IM", "IMP001"),), date: str | None = None) -> CustomsDeclaration:
    """Goods items of (commodity code, document code, KGM quantity, licence number)."""
    return CustomsDeclaration.model_validate({
        "source": {"syntax": "EDIFACT", "message_type": "CUSDEC", "release": "D96B",
                   "sender": "VANA", "recipient": "SWGATEWAY", "interchange_reference": "1",
                   "message_reference": "1"},
        "declaration_number": "DEC-1", "document_code": "929", "function": "original",
        "dates": [] if date is None else [{"qualifier": "137", "text": date, "format": "102",
                                           "value": dt.date.fromisoformat(date)}],
        "parties": [{"role": r, "id": i} for r, i in parties],
        "goods_items": [{
            "commodity_code": code, "documents": [{"code": doc, "number": number}],
            "measurements": [] if kilos is None else [
                {"purpose": "WT", "dimension": "AAD", "value": kilos, "unit": "KGM"}]}
            for code, doc, kilos, number in items]})


def registry(*licences: Licence, left: Decimal | None = None) -> dict[str, Standing]:
    return {x.number: Standing(x, x.quantity if left is None else left) for x in licences}


def test_a_covered_item_of_the_holder_passes_and_draws_its_quantity() -> None:
    verdict = check(declaration(("0303.55", "911", Decimal(40), "LIC-1"),
                                ("8438.50", "911", Decimal(25), "LIC-1")),
                    registry(licence()), ON)
    assert verdict.passed and verdict.draws == {"LIC-1": Decimal(65)}
    assert (verdict.on, verdict.dated_by_declaration) == (ON, False)


@pytest.mark.parametrize(("goods", "standing", "reason"), [
    (("0303.55", "911", Decimal(1), "LIC-9"), {}, "licence LIC-9 not found"),
    (("0303.55", "911", Decimal(1), "LIC-1"), {"status": "revoked"}, "is revoked"),
    (("0303.55", "811", Decimal(1), "LIC-1"), {}, "is an import licence"),
    (("0303.55", "911", Decimal(1), "LIC-1"), {"valid_until": dt.date(2026, 5, 31)},
     "not valid on 2026-06-01"),
    (("0303.55", "911", Decimal(1), "LIC-1"), {"holder": "OTHER"},
     "not held by the declared importer"),
    (("8438.40", "911", Decimal(1), "LIC-1"), {}, "does not cover 843840"),
    (("0303.55", "911", None, "LIC-1"), {}, "no quantity in KGM"),
    (("0303.55", "911", Decimal(1), "LIC-1"), {"unit": "LTR"}, "no quantity in LTR"),
    (("0303.55", "911", Decimal(101), "LIC-1"), {}, "Licence LIC-1: 100 KGM left, 101 needed"),
])
def test_each_failure_says_why(goods: tuple[str, str, Decimal | None, str],
                               standing: dict[str, Any], reason: str) -> None:
    verdict = check(declaration(goods), registry(licence(**standing)), ON)
    assert not verdict.passed and not verdict.draws
    assert reason in verdict.reasons[0] and len(verdict.reasons[0]) <= 70


def test_an_export_licence_is_the_exporters() -> None:
    export = licence(licence_kind="export", holder="EXP001")
    goods = ("0303.55", "811", Decimal(1), "LIC-1")
    assert check(declaration(goods, parties=(("EX", "EXP001"),)), registry(export), ON).passed
    assert "exporter" in check(declaration(goods, parties=(("IM", "EXP001"),)),
                               registry(export), ON).reasons[0]


def test_the_declarations_date_is_judged_when_it_has_one() -> None:
    goods = ("0303.55", "911", Decimal(1), "LIC-1")
    verdict = check(declaration(goods, date="2025-12-31"), registry(licence()), ON)
    assert (verdict.on, verdict.dated_by_declaration) == (dt.date(2025, 12, 31), True)
    assert "not valid on 2025-12-31" in verdict.reasons[0]


def test_licences_are_cited_in_number_order_and_other_documents_are_not() -> None:
    made = declaration(("0303.55", "911", Decimal(1), "LIC-B"),
                       ("0303.55", "811", Decimal(1), "LIC-A"),
                       ("0303.55", "861", Decimal(1), "CO-1"))
    assert cited_numbers(made) == ("LIC-A", "LIC-B")


def test_a_licence_must_be_well_formed() -> None:
    with pytest.raises(ValidationError):
        licence(valid_until=dt.date(2025, 1, 1))
    with pytest.raises(ValidationError):
        licence(quantity=Decimal(0))
    with pytest.raises(ValidationError):
        licence(commodity_codes=("x",))


quantities = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False,
                         allow_infinity=False)


@given(left=quantities, wanted=st.lists(quantities, min_size=1, max_size=6))
def test_what_passes_never_draws_more_than_is_left(left: Decimal,
                                                   wanted: list[Decimal]) -> None:
    made = declaration(*(("0303.55", "911", q, "LIC-1") for q in wanted))
    verdict = check(made, registry(licence(quantity=Decimal(10**7)), left=left), ON)
    assert verdict.passed == (sum(wanted) <= left)
    if verdict.passed:
        assert verdict.draws == {"LIC-1": sum(wanted)}


def test_the_demo_sample_cites_its_licence_as_the_check_reads_it() -> None:
    """deploy/demo/samples/cusdec-licensed-machine.edi (docs/licences.md, Try it) against the
    licence the docs publish: it passes and draws 60 KGM."""
    from tests.unit.test_mappings import SAMPLES, errors_of, map_all

    data = (SAMPLES / "cusdec-licensed-machine.edi").read_bytes()
    assert errors_of(data) == []
    _, (canonical,) = map_all(data)
    assert isinstance(canonical, CustomsDeclaration)
    published = licence(number="LIC-2026-0001", commodity_codes=("8438",))
    verdict = check(canonical, registry(published), ON)
    assert verdict.passed and verdict.draws == {"LIC-2026-0001": Decimal(60)}
    assert (verdict.on, verdict.dated_by_declaration) == (dt.date(2026, 11, 22), True)
