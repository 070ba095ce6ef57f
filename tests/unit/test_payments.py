"""The pure part of duties paid through a bank (pipeline.payments; docs/payments.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.agency import bank, customs
from gateway.agency.delivery import Delivery
from gateway.model.canonical import Amount, Answered, CustomsResponse, Source
from gateway.model.canonical.payments import PaymentConfirmation
from gateway.pipeline.payments import (
    AWAITING_PAYMENT,
    amounts_match,
    describe,
    overall_clearance,
    payment_instruction,
)

SOURCE = Source(syntax="EDIFACT", message_type="CUSDEC", release="D96B", sender="VANA",
                recipient="SWGATEWAY", interchange_reference="R1", message_reference="1")


def usd(value: str, qualifier: str = "55", currency: str | None = "USD") -> Amount:
    return Amount(qualifier=qualifier, value=Decimal(value), currency=currency)


def test_amounts_match_per_currency_total_whatever_the_spelling() -> None:
    assert amounts_match([usd("50.00")], [usd("50")])
    assert amounts_match([usd("30"), usd("20", "56")], [usd("50")])
    assert not amounts_match([usd("50")], [usd("49.99")])
    assert not amounts_match([usd("50")], [usd("50", currency="EUR")])
    assert not amounts_match([usd("50")], [usd("50"), usd("1", currency="EUR")])
    assert not amounts_match([usd("50")], [])
    assert describe([usd("30"), usd("20.50"), usd("7", currency="EUR")]) == [
        "7 EUR", "50.5 USD"]


@pytest.mark.parametrize(("states", "unpaid", "waits", "expected"), [
    ({"customs": "released"}, True, True, AWAITING_PAYMENT),
    ({"customs": "released"}, True, False, "released"),
    ({"customs": "released"}, False, True, "released"),
    ({"customs": "released", "bank": "awaiting"}, True, True, AWAITING_PAYMENT),
    ({"customs": "released", "bank": "paid"}, False, True, "released"),
    ({"customs": "accepted", "bank": "awaiting"}, True, True, "in_progress"),
    ({"customs": "rejected", "bank": "awaiting"}, True, True, "rejected"),
    ({"customs": "released", "quarantine": "inspection"}, True, True, "in_progress"),
])
def test_the_bank_never_decides_and_unpaid_duties_hold_the_release(
        states: dict[str, str], unpaid: bool, waits: bool, expected: str) -> None:
    assert overall_clearance(states, bank="bank", unpaid=unpaid, waits=waits) == expected


def _decision(duties: tuple[Amount, ...]) -> CustomsResponse:
    return CustomsResponse(source=SOURCE, agency="customs", decision="accepted",
                           answers=Answered(document_reference="DEC-1", correlation_id="c"),
                           agency_reference="CUS-1", decided_at=dt.datetime.now(dt.UTC),
                           duties=duties)


def test_the_instruction_and_the_banks_answers() -> None:
    instruction = payment_instruction(_decision((usd("50"),)), instruction="swg-1-1-pay-3",
                                      declaration=None, instructed_at=dt.datetime.now(dt.UTC))
    assert instruction.answers.correlation_id is None  # not the customs delivery's
    assert (instruction.assessed_by, instruction.agency_reference) == ("customs", "CUS-1")
    delivery = Delivery(agency="bank", message_id="swg-1-1-pay-3", correlation_id="swg-1-1",
                        type="PaymentInstruction", role="payment", aeo=False, partner="van-a",
                        headers={}, message=instruction)
    (paid,) = bank.decide(bank.BankRules(), delivery)
    assert isinstance(paid, PaymentConfirmation)
    assert (paid.status, paid.instruction_id, paid.amounts) == (
        "paid", "swg-1-1-pay-3", instruction.amounts)
    assert paid.bank_reference is not None and paid.bank_reference.startswith("BNK-")
    refusing = bank.BankRules(refuse_payers=("IMP001",))
    with_payer = delivery.message.model_copy(update={"payer": ("IMP001",)})
    (refused,) = bank.decide(refusing, Delivery(**{**_fields(delivery), "message": with_payer}))
    assert isinstance(refused, PaymentConfirmation) and refused.status == "refused"
    with pytest.raises(ValueError, match="says why"):
        PaymentConfirmation(source=SOURCE, instruction_id="x", answers=instruction.answers,
                            status="refused")
    with pytest.raises(ValueError, match="amounts paid and paid_at"):
        PaymentConfirmation(source=SOURCE, instruction_id="x", answers=instruction.answers,
                            status="paid")


def _fields(delivery: Delivery) -> dict[str, object]:
    return {name: getattr(delivery, name) for name in Delivery.__slots__}


def test_customs_assesses_its_rate_of_the_customs_value() -> None:
    rules = customs.CustomsRules.model_validate({
        "seed": "s", "sample_rate": 0, "trusted": {"sample_rate": 0},
        "duties": {"rate": "0.05", "currency": "USD"}})
    assert rules.duties is not None
    declaration = _declaration("1234.50")
    assert customs.assessed(rules, declaration) == (usd("61.73"),)
    assert customs.assessed(rules.model_copy(update={"duties": None}), declaration) == ()
    assert customs.assessed(rules, _declaration("0")) == ()


def _declaration(value: str) -> customs.CustomsDeclaration:
    return customs.CustomsDeclaration(
        source=SOURCE, declaration_number="DEC-1", document_code="929", function="original",
        amounts=(Amount(qualifier="40", value=Decimal(value), currency="USD"),))
