"""What an agency answers about a delivery, built to the gateway's contract (docs/answers.md):
a canonical ``CustomsResponse`` (a decision) or ``ApplicationError`` (the agency could not act
on the message), naming the agency, the delivery it answers (``answers.correlation_id``), the
declaration number and the interchange and message that carried it.

A handler returns these, in the order decided (registered first, then the outcome); the n-th
is published as ``<delivery message_id>:<n>``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.agency.delivery import Delivery
from gateway.model.canonical import (
    Amount,
    Answered,
    ApplicationError,
    CustomsResponse,
    PaymentConfirmation,
    PaymentInstruction,
    Reason,
)
from gateway.model.canonical.responses import Decision

#: What a handler answers: a decision, an application error, or (the bank, about a payment
#: instruction) a payment confirmation.
Answer = CustomsResponse | ApplicationError | PaymentConfirmation
#: The longest reason text the trader's answer can hold: CUSRES and APERAK write it as FTX
#: 4440, an..70 in D96B (the gateway refuses an answer with a longer one).
MAX_REASON_CHARS = 70
#: UNTDID 9321 (the reason's code) is an..8.
MAX_REASON_CODE_CHARS = 8
#: The longest agency reference (CUSRES RFF 1154, an..35).
MAX_REFERENCE_CHARS = 35

Reasons = Iterable[str | Reason]


def reason(text: str, code: str | None = None) -> Reason:
    """A reason the trader's CUSRES/APERAK can carry (ValueError otherwise: a bug of the
    handler, better found here than refused by the gateway)."""
    if not text or len(text) > MAX_REASON_CHARS:
        raise ValueError(f"a reason is 1 to {MAX_REASON_CHARS} characters (CUSRES FTX 4440): "
                         f"{text[:80]!r}")
    if code is not None and not 0 < len(code) <= MAX_REASON_CODE_CHARS:
        raise ValueError(f"a reason code is 1 to {MAX_REASON_CODE_CHARS} characters: {code!r}")
    return Reason(code=code, text=text)


def _reasons(reasons: Reasons) -> tuple[Reason, ...]:
    return tuple(r if isinstance(r, Reason) else reason(r) for r in reasons)


def answered(delivery: Delivery) -> Answered:
    """What every answer about ``delivery`` says it answers."""
    source = delivery.message.source
    return Answered(document_reference=delivery.document_reference,
                    interchange_reference=source.interchange_reference,
                    message_reference=source.message_reference,
                    correlation_id=delivery.message_id)


def decision(delivery: Delivery, decided: Decision, *, reference: str | None = None,
             reasons: Reasons = (), duties: Sequence[Amount] = ()) -> CustomsResponse:
    """Any decision; the functions below name the usual ones."""
    if reference is not None and not 0 < len(reference) <= MAX_REFERENCE_CHARS:
        raise ValueError(f"an agency reference is 1 to {MAX_REFERENCE_CHARS} characters: "
                         f"{reference!r}")
    return CustomsResponse(
        source=delivery.message.source, agency=delivery.agency, answers=answered(delivery),
        decision=decided, agency_reference=reference, decided_at=_now(),
        reasons=_reasons(reasons), duties=tuple(duties))


def accepted(delivery: Delivery, reference: str, reasons: Reasons = ()) -> CustomsResponse:
    """Registered: the agency took the declaration, under its own ``reference``."""
    return decision(delivery, "accepted", reference=reference, reasons=reasons)


def released(delivery: Delivery, reference: str | None = None,
             reasons: Reasons = ()) -> CustomsResponse:
    return decision(delivery, "released", reference=reference, reasons=reasons)


def rejected(delivery: Delivery, reasons: Reasons,
             reference: str | None = None) -> CustomsResponse:
    return decision(delivery, "rejected", reference=reference,
                    reasons=_required(reasons, "a rejection"))


def documents_required(delivery: Delivery, reasons: Reasons = (),
                       reference: str | None = None) -> CustomsResponse:
    """A documentary check: the trader is to produce documents."""
    return decision(delivery, "documents_required", reference=reference, reasons=reasons)


def inspection(delivery: Delivery, reasons: Reasons = (),
               reference: str | None = None) -> CustomsResponse:
    """Held for a physical inspection of the goods."""
    return decision(delivery, "inspection", reference=reference, reasons=reasons)


def held(delivery: Delivery, reasons: Reasons = (),
         reference: str | None = None) -> CustomsResponse:
    """Goods detained."""
    return decision(delivery, "held", reference=reference, reasons=reasons)


def licence_passed(delivery: Delivery, reference: str | None = None,
                   reasons: Reasons = ()) -> CustomsResponse:
    """The licence (permit, certificate) check passed."""
    return decision(delivery, "licence_passed", reference=reference, reasons=reasons)


def licence_failed(delivery: Delivery, reasons: Reasons,
                   reference: str | None = None) -> CustomsResponse:
    """The licence check failed: the reasons say which permit is missing."""
    return decision(delivery, "licence_failed", reference=reference,
                    reasons=_required(reasons, "a failed licence check"))


def paid(delivery: Delivery, reference: str,
         amounts: Sequence[Amount] | None = None) -> PaymentConfirmation:
    """The bank collected the instruction's amounts (all of them unless ``amounts`` says
    otherwise) under its own ``reference``."""
    instruction = _instruction(delivery)
    return PaymentConfirmation(
        source=instruction.source, instruction_id=delivery.message_id,
        answers=answered(delivery), status="paid", bank_reference=_reference(reference),
        amounts=tuple(instruction.amounts if amounts is None else amounts), paid_at=_now())


def payment_refused(delivery: Delivery, reasons: Reasons,
                    reference: str | None = None) -> PaymentConfirmation:
    """The bank could not collect it (no funds, no account): the reasons say why."""
    instruction = _instruction(delivery)
    return PaymentConfirmation(
        source=instruction.source, instruction_id=delivery.message_id,
        answers=answered(delivery), status="refused",
        bank_reference=None if reference is None else _reference(reference),
        reasons=_required(reasons, "a refused payment"))


def _instruction(delivery: Delivery) -> PaymentInstruction:
    if not isinstance(delivery.message, PaymentInstruction):
        raise TypeError(f"a payment confirmation answers a PaymentInstruction, not a "
                        f"{delivery.message.kind}")
    return delivery.message


def _reference(reference: str) -> str:
    if not 0 < len(reference) <= MAX_REFERENCE_CHARS:
        raise ValueError(f"a reference is 1 to {MAX_REFERENCE_CHARS} characters: "
                         f"{reference!r}")
    return reference


def application_error(delivery: Delivery, errors: Reasons) -> ApplicationError:
    """The agency cannot act on the message (APERAK)."""
    return ApplicationError(source=delivery.message.source, answers=answered(delivery),
                            errors=_required(errors, "an application error"),
                            reported_at=_now())


def _required(reasons: Reasons, what: str) -> tuple[Reason, ...]:
    given = _reasons(reasons)
    if not given:
        raise ValueError(f"{what} needs at least one reason")
    return given


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One answer as it is journaled and published (the same bytes every time)."""

    message_id: str
    type: str
    body: bytes


def outgoing(delivery: Delivery, answers: Sequence[Answer]) -> tuple[Outgoing, ...]:
    """The answers to publish, numbered in order, each held to the contract whatever the
    handler built: it answers this delivery, as this agency, from the delivered message's
    ``source`` (the gateway writes its own when it renders the answer)."""
    return tuple(Outgoing(f"{delivery.message_id}:{n}", answer.kind,
                          _stamped(delivery, answer).model_dump_json().encode("utf-8"))
                 for n, answer in enumerate(answers, start=1))


def _stamped(delivery: Delivery, answer: object) -> Answer:
    if not isinstance(answer, CustomsResponse | ApplicationError | PaymentConfirmation):
        raise TypeError(f"a handler answers with CustomsResponse, ApplicationError or "
                        f"PaymentConfirmation, not {type(answer).__name__}")
    update: dict[str, object] = {"answers": answered(delivery),
                                 "source": delivery.message.source}
    if isinstance(answer, CustomsResponse):
        update["agency"] = delivery.agency
    if isinstance(answer, PaymentConfirmation):
        update["instruction_id"] = delivery.message_id
    return answer.model_copy(update=update)
