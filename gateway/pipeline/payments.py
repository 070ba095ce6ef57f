"""Duties paid through a bank (issue 15 item 3; docs/payments.md), pure: the instruction an
agency's decision with duties gives, whether a confirmation paid what was instructed, and where
a declaration stands while its duties are unpaid."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from gateway.model.canonical import Amount, CustomsDeclaration, CustomsResponse
from gateway.model.canonical.payments import PaymentInstruction
from gateway.pipeline.respond import clearance

#: The declaration's overall state when every agency released it but duties are unpaid (and
#: gateway.yaml payments.release_waits_for_payment is true).
AWAITING_PAYMENT = "awaiting_payment"
#: The bank agency's states (agency_states) as the instruction stands.
BANK_AWAITING, BANK_PAID, BANK_REFUSED = "awaiting", "paid", "payment_refused"


def instruction_id(submission: int, position: int, answer_row: int) -> str:
    """The AMQP message id of an instruction's delivery: one per agency answer with duties,
    the same on every re-publish."""
    return f"swg-{submission}-{position}-pay-{answer_row}"


def payment_instruction(answer: CustomsResponse, *, instruction: str,
                        declaration: CustomsDeclaration | None,
                        instructed_at: dt.datetime) -> PaymentInstruction:
    """The instruction to collect the duties ``answer`` assessed (its references tied to the
    declaration it answers); payer and office from the stored declaration, when there is one."""
    return PaymentInstruction(
        source=answer.source, instruction_id=instruction,
        answers=answer.answers.model_copy(update={"correlation_id": None}),
        assessed_by=answer.agency, agency_reference=answer.agency_reference,
        payer=tuple(sorted(declaration.responsible_trader_ids)) if declaration else (),
        amounts=answer.duties,
        customs_office=declaration.customs_office if declaration else None,
        instructed_at=instructed_at)


def _sums(amounts: Iterable[Mapping[str, Any] | Amount]) -> dict[str, Decimal]:
    """What is to be paid per currency (qualifiers aside: a bank pays sums, not duty kinds)."""
    totals: dict[str, Decimal] = {}
    for amount in amounts:
        fields = amount.model_dump() if isinstance(amount, Amount) else amount
        currency = str(fields.get("currency") or "")
        totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(fields["value"]))
    return {currency: total.normalize() for currency, total in totals.items()}


def amounts_match(instructed: Iterable[Mapping[str, Any] | Amount],
                  paid: Iterable[Mapping[str, Any] | Amount]) -> bool:
    """Whether the bank paid, per currency, the total instructed."""
    return _sums(instructed) == _sums(paid)


def describe(amounts: Iterable[Mapping[str, Any] | Amount]) -> list[str]:
    """``["120.50 USD", ...]``: the totals per currency, for the history and the alarm."""
    return [f"{value:f} {currency}".strip() for currency, value in sorted(_sums(amounts).items())]


def overall_clearance(states: Mapping[str, str], *, bank: str | None, unpaid: bool,
            waits: bool) -> str:
    """The declaration's clearance: that of the agencies it went to (the bank is no agency
    that decides on it), ``awaiting_payment`` instead of ``released`` while duties are unpaid
    and the release waits for the payment."""
    deciding = {agency: state for agency, state in states.items() if agency != bank}
    state = clearance(deciding)
    if state == "released" and unpaid and waits:
        return AWAITING_PAYMENT
    return state
