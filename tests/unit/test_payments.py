"""The pure part of duties paid through a bank (pipeline.payments; docs/payments.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.agency import bank, customs
from gateway.agency.delivery import Delivery
from gateway.config.load import parse_routing
from gateway.config.routing import RoutingTable
from gateway.errors import ConfigError
from gateway.model.canonical import Amount, Answered, CustomsResponse, Source
from gateway.model.canonical.payments import PaymentConfirmation
from gateway.pipeline.payments import (
    AWAITING_PAYMENT,
    amounts_match,
    describe,
    overall_clearance,
    payment_instruction,
)
from gateway.pipeline.respond import answer_problem
from gateway.pipeline.route import explain, route, route_on_state

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


# --- the rules on a declaration's state (routing.yaml match.state) -------------------------

STATE_TABLE = """\
version: 1
rules:
  - name: customs-receives-every-declaration
    match: {kind: CustomsDeclaration}
    deliver: [customs]
  - name: tax-refunds-on-released-exports
    match: {kind: CustomsDeclaration, document_codes: ["830"], state: released}
    deliver: [tax]
"""


def _state_table(text: str = STATE_TABLE) -> RoutingTable:
    return parse_routing(text, "routing.yaml", ("customs", "tax"))


def test_a_rule_on_a_state_is_judged_only_when_the_clearance_becomes_it() -> None:
    export = _declaration("1000").model_copy(update={"document_code": "830"})
    imported = _declaration("1000")
    table = _state_table()
    assert route(table, export, "van-a").agencies == ("customs",)  # not at intake
    assert route_on_state(table, export, "van-a", "released").agencies == ("tax",)
    assert route_on_state(table, export, "van-a", "rejected").agencies == ()
    assert route_on_state(table, imported, "van-a", "released").agencies == ()
    said = {v.rule: v for v in explain(table, export, "van-a", state="released")}
    assert said["tax-refunds-on-released-exports"].matched
    assert "yes clearance becomes released (message: released)" in said[
        "tax-refunds-on-released-exports"].conditions
    at_intake = {v.rule: v for v in explain(table, export, "van-a")}
    assert not at_intake["tax-refunds-on-released-exports"].matched


@pytest.mark.parametrize(("change", "said"), [
    ("state: released", "state: paid"),
    ("deliver: [tax]", "deliver: [tax]\n    hold: true"),
    ('document_codes: ["830"]', 'document_codes: ["export"]'),
])
def test_a_bad_rule_on_a_state_is_refused_at_its_line(change: str, said: str) -> None:
    with pytest.raises(ConfigError, match=r"routing\.yaml:(6|7):\d+ rules\[1\]"):
        _state_table(STATE_TABLE.replace(change, said))


def test_a_rule_on_a_state_neither_shadows_nor_is_shadowed() -> None:
    both = STATE_TABLE.replace("deliver: [tax]", "deliver: [customs]")
    assert [r.name for r in _state_table(both).rules][1] == "tax-refunds-on-released-exports"


def test_duties_and_payments_are_positive_amounts() -> None:
    """Attack: a buggy customs assessing -50 USD (the bank told to collect a negative sum) or
    0 USD (the release held for a payment of nothing); a hostile bank netting 100 USD and
    -50 USD to 'pay' an instruction of 50 USD. Each is refused at the door, with its reason."""
    for duty in ("-50", "0"):
        problem = answer_problem(_decision((usd(duty),)), "customs", "c")
        assert problem is not None and "positive" in problem, duty
    assert answer_problem(_decision((usd("50"),)), "customs", "c") is None
    # a sum with no currency cannot be collected: the bank could never pay it as instructed
    problem = answer_problem(_decision((usd("50", currency=None),)), "customs", "c")
    assert problem is not None and "currency" in problem
    instruction = payment_instruction(_decision((usd("50"),)), instruction="swg-1-1-pay-3",
                                      declaration=None, instructed_at=dt.datetime.now(dt.UTC))
    netted = PaymentConfirmation(
        source=SOURCE, instruction_id="swg-1-1-pay-3", answers=instruction.answers,
        status="paid", amounts=(usd("100"), usd("-50")), paid_at=dt.datetime.now(dt.UTC))
    problem = answer_problem(netted, "bank", "swg-1-1-pay-3")
    assert problem is not None and "positive" in problem
    paid = netted.model_copy(update={"amounts": (usd("50"),)})
    assert answer_problem(paid, "bank", "swg-1-1-pay-3") is None
