"""What the pure pipeline needs to know about a submission besides its bytes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gateway.catalog.catalog import Catalog
from gateway.config.partners import Partner
from gateway.config.routing import RoutingTable
from gateway.model.edifact import PartyId
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.xml_kinds import XmlCatalog


@dataclass(frozen=True, slots=True)
class Context:
    """What the pipeline needs to know besides the bytes."""

    partner: Partner
    routing: RoutingTable
    catalog: Catalog
    mappings: Mappings
    gateway: PartyId
    #: The control reference of our answer (unique per submission).
    ack_reference: str
    received: dt.datetime
    file_name: str
    #: The trader registry's authorised economic operators, for trusted_trader rules.
    trusted_traders: frozenset[str] = frozenset()
    #: The XML document kinds in force and their limits (none: XML submissions are refused,
    #: saying so).
    xml: XmlCatalog = field(default_factory=XmlCatalog)
