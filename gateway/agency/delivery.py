"""One message from the agency's queue, read: the canonical message and what its AMQP
properties and headers say (``gateway/app/deliveries.py`` writes them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gateway.model.canonical import CANONICAL_ADAPTER, CanonicalMessage


class MalformedDelivery(Exception):
    """A delivery that cannot be read: it is dead-lettered, never decided on."""


@dataclass(frozen=True, slots=True)
class Delivery:
    #: The agency that consumes it (its own code, not a header anybody could write).
    agency: str
    #: ``swg-<submission>-<position>-<agency>``: the same on every redelivery and re-publish;
    #: every answer names it as its ``correlation_id``.
    message_id: str
    #: ``swg-<submission>-<position>``: the same for every agency's copy of one message.
    correlation_id: str
    type: str
    #: "deliver": the agency decides on it; "copy": an observer's copy, never answered.
    role: str
    #: An authorised economic operator registered to the sending partner is answerable for
    #: the declaration (the trader registry's AEO status); false when the header is missing.
    aeo: bool
    partner: str | None
    headers: Mapping[str, Any]
    message: CanonicalMessage
    redelivered: bool = False

    @property
    def is_copy(self) -> bool:
        return self.role == "copy"

    @property
    def document_reference(self) -> str:
        """What an answer names as the document it answers: the declaration number (or the
        business reference of another kind); the interchange's control reference when the
        message has none."""
        return self.message.document_reference or self.message.source.interchange_reference


def read_delivery(agency: str, *, message_id: str | None, correlation_id: str | None,
                  type_: str | None, headers: Mapping[str, Any] | None, body: bytes,
                  redelivered: bool) -> Delivery:
    """A Delivery, or MalformedDelivery saying why not."""
    if not message_id:
        raise MalformedDelivery("no message_id: an answer could not name what it answers")
    try:
        message = CANONICAL_ADAPTER.validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top"
        raise MalformedDelivery(f"not a canonical message: {exc.error_count()} problem(s), "
                                f"first at {where}: {first['msg']}") from exc
    fields = dict(headers or {})
    role = _text(fields.get("role")) or "deliver"
    return Delivery(
        agency=agency, message_id=message_id, correlation_id=correlation_id or "",
        type=type_ or message.kind, role=role,
        aeo=fields.get("aeo") is True, partner=_text(fields.get("partner")),
        headers=fields, message=message, redelivered=redelivered)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None
