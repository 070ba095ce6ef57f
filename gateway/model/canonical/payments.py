"""Payment of duties (issue 15 item 3; docs/payments.md): the gateway instructs a bank to
collect the duties an agency's decision assessed, and the bank confirms (or refuses) it.

``PaymentInstruction`` is what the gateway delivers to the bank agency (its ``instruction_id``
is the delivery's AMQP message id); ``PaymentConfirmation`` is the bank's answer, published on
the responses exchange like any agency's answer, with the instruction's id as its
``correlation_id``."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from gateway.model.canonical.common import Amount, Canonical
from gateway.model.canonical.responses import Answered, Reason

PaymentStatus = Literal["paid", "refused"]


class PaymentInstruction(Canonical):
    """Collect ``amounts`` from ``payer`` for the declaration ``answers`` names."""

    kind: Literal["PaymentInstruction"] = "PaymentInstruction"
    instruction_id: str = Field(max_length=200, description="the delivery's AMQP message_id; "
                                "the confirmation names it as its correlation_id")
    answers: Answered = Field(description="the declaration (number, interchange, message) "
                              "whose duties are to be paid")
    assessed_by: str = Field(description="the agency whose decision assessed the duties")
    agency_reference: str | None = Field(default=None, max_length=35, description=(
        "that agency's own registration of the declaration"))
    payer: tuple[str, ...] = Field(default=(), description="the party ids answerable for the "
                                   "declaration (declarant, importer, exporter)")
    amounts: tuple[Amount, ...] = Field(min_length=1, description="the duties, as assessed")
    customs_office: str | None = None
    due_date: dt.date | None = None
    instructed_at: dt.datetime

    @property
    def document_reference(self) -> str | None:
        return self.answers.document_reference


class PaymentConfirmation(Canonical):
    """The bank's answer to one instruction: ``paid`` (with what was paid and when) or
    ``refused`` (with the reasons)."""

    kind: Literal["PaymentConfirmation"] = "PaymentConfirmation"
    instruction_id: str = Field(max_length=200)
    answers: Answered
    status: PaymentStatus
    bank_reference: str | None = Field(default=None, max_length=35)
    amounts: tuple[Amount, ...] = ()
    paid_at: dt.datetime | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def document_reference(self) -> str | None:
        return self.answers.document_reference

    @model_validator(mode="after")
    def _said_enough(self) -> PaymentConfirmation:
        if self.status == "paid" and (not self.amounts or self.paid_at is None):
            raise ValueError("a paid confirmation says the amounts paid and paid_at")
        if self.status == "refused" and not self.reasons:
            raise ValueError("a refused confirmation says why (reasons)")
        return self
