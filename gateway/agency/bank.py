"""The example bank adapter (``gateway agency run bank``; docs/payments.md): it takes each
payment instruction the gateway sends and confirms it paid, in full, under a reference of its
own (``BNK-20261205-3F9A0C1B``, the same for every redelivery).  A person edits
``bank-rules.yaml``: the reference prefix, and payers whose instructions are refused (say an
account closed), to try the refusal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pydantic import Field

from gateway.agency import answers
from gateway.agency.answers import Answer
from gateway.agency.delivery import Delivery
from gateway.agency.rules import ReasonText, ReferencePrefix, Strict
from gateway.agency.sampling import agency_reference
from gateway.model.canonical import PaymentInstruction
from gateway.model.canonical.common import TraderId


class BankRules(Strict):
    reference_prefix: ReferencePrefix = "BNK"
    refuse_payers: tuple[TraderId, ...] = Field(
        default=(), description="payers whose instructions are refused")
    refusal_reason: ReasonText = "No account for the payer"


def decide(rules: BankRules, delivery: Delivery) -> Sequence[Answer]:
    """Paid, in full; refused for a payer in ``refuse_payers``; anything else than a payment
    instruction cannot be acted on (an application error)."""
    message = delivery.message
    if not isinstance(message, PaymentInstruction):
        return [answers.application_error(
            delivery, [f"A bank acts on payment instructions, not a {message.kind}"[:70]])]
    reference = agency_reference(rules.reference_prefix, delivery.message_id,
                                 dt.datetime.now(dt.UTC).date())
    if set(message.payer) & set(rules.refuse_payers):
        return [answers.payment_refused(delivery, [rules.refusal_reason], reference)]
    return [answers.paid(delivery, reference)]
