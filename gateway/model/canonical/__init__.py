"""Canonical messages: one model per business document, whatever syntax the partner spoke.

Agencies code against these (JSON on their queue, JSON Schemas in ``schemas/canonical``),
never against EDIFACT or XML.  Every model carries ``kind`` and ``schema_version``.
"""

from typing import Annotated

from pydantic import Field, TypeAdapter

from gateway.model.canonical.cargo_report import CargoItem, CargoReport, Consignment
from gateway.model.canonical.certificate_of_origin import CertificateOfOrigin
from gateway.model.canonical.common import (
    Amount,
    Canonical,
    DateValue,
    Document,
    Equipment,
    Location,
    Measurement,
    Party,
    Reference,
    Source,
    Transport,
)
from gateway.model.canonical.container_event import ContainerEvent
from gateway.model.canonical.customs_declaration import CustomsDeclaration, GoodsItem
from gateway.model.canonical.payments import PaymentConfirmation, PaymentInstruction
from gateway.model.canonical.responses import (
    AgencyDecision,
    Answered,
    ApplicationError,
    CustomsResponse,
    Reason,
)
from gateway.model.canonical.transport_instruction import TransportInstruction

#: Every canonical model, by its ``kind``.
KINDS: dict[str, type[Canonical]] = {
    model.__name__: model
    for model in (CustomsDeclaration, CargoReport, TransportInstruction, ContainerEvent,
                  CertificateOfOrigin, CustomsResponse, ApplicationError, PaymentInstruction,
                  PaymentConfirmation)
}

#: Any canonical message; ``kind`` tells which.
CanonicalMessage = Annotated[
    CustomsDeclaration | CargoReport | TransportInstruction | ContainerEvent
    | CertificateOfOrigin | CustomsResponse | ApplicationError | PaymentInstruction
    | PaymentConfirmation,
    Field(discriminator="kind"),
]
CANONICAL_ADAPTER: TypeAdapter[CanonicalMessage] = TypeAdapter(CanonicalMessage)

__all__ = [
    "CANONICAL_ADAPTER",
    "KINDS",
    "AgencyDecision",
    "Amount",
    "Answered",
    "ApplicationError",
    "Canonical",
    "CanonicalMessage",
    "CargoItem",
    "CargoReport",
    "CertificateOfOrigin",
    "Consignment",
    "ContainerEvent",
    "CustomsDeclaration",
    "CustomsResponse",
    "DateValue",
    "Document",
    "Equipment",
    "GoodsItem",
    "Location",
    "Measurement",
    "Party",
    "PaymentConfirmation",
    "PaymentInstruction",
    "Reason",
    "Reference",
    "Source",
    "Transport",
    "TransportInstruction",
]
