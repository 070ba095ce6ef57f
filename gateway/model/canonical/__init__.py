"""Canonical messages: one model per business document, whatever syntax the partner spoke.

Agencies code against these (JSON on their queue), never against EDIFACT or XML.
"""

from gateway.model.canonical.common import (
    Amount,
    DateValue,
    Document,
    Location,
    Measurement,
    Party,
    Reference,
    Source,
    Transport,
)
from gateway.model.canonical.customs_declaration import CustomsDeclaration, GoodsItem

#: Every canonical message kind the gateway produces.
CanonicalMessage = CustomsDeclaration

__all__ = [
    "Amount",
    "CanonicalMessage",
    "CustomsDeclaration",
    "DateValue",
    "Document",
    "GoodsItem",
    "Location",
    "Measurement",
    "Party",
    "Reference",
    "Source",
    "Transport",
]
