"""The printing adapter: one JSON line per delivery (what an agency without a deciding adapter
sees on its queue), and the line the deciding adapters print for each decision."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from gateway.agency.answers import Answer
from gateway.agency.delivery import Delivery
from gateway.model.canonical import CustomsResponse, PaymentConfirmation


def summary(delivery: Delivery) -> dict[str, Any]:
    message = delivery.message
    return {
        "message_id": delivery.message_id,
        "type": message.kind,
        "role": delivery.role,
        "partner": delivery.partner,
        "document": message.document_reference,
        "function": message.function_name,
        "interchange": message.source.interchange_reference,
        "commodity_codes": list(message.commodity_codes),
        "aeo": delivery.aeo,
        "redelivered": delivery.redelivered,
    }


def print_line(fields: dict[str, Any], out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(fields, ensure_ascii=False, default=str) + "\n")
    stream.flush()


async def print_delivery(delivery: Delivery) -> Sequence[Answer]:
    """Prints the delivery and answers nothing."""
    print_line(summary(delivery))
    return ()


async def print_copy(delivery: Delivery) -> None:
    print_line(summary(delivery))


def decisions(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """What each answer says, for the adapter's line."""
    return [_said(a) for a in answers]


def _said(answer: Answer) -> dict[str, Any]:
    if isinstance(answer, CustomsResponse):
        return {"decision": answer.decision, "reference": answer.agency_reference,
                "reasons": [r.text for r in answer.reasons],
                **({"duties": [f"{d.value} {d.currency or ''}".strip() for d in answer.duties]}
                   if answer.duties else {})}
    if isinstance(answer, PaymentConfirmation):
        return {"payment": answer.status, "reference": answer.bank_reference,
                "reasons": [r.text for r in answer.reasons]}
    return {"application_error": [e.text for e in answer.errors]}
