"""A pipeline context like the demo's, for pure tests."""

from __future__ import annotations

import datetime as dt
import functools

from gateway.app.catalog_files import load_catalog
from gateway.app.mapping_files import load_mappings
from gateway.catalog.catalog import Catalog
from gateway.config.partners import EdifactId, Partner
from gateway.config.routing import RoutingTable
from gateway.model.edifact import PartyId
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.process import Context

DEMO_PARTNER = Partner(id="demo-van", name="Demo VAN", edifact_ids=(EdifactId(id="DEMOVAN"),))
DEMO_ROUTING = RoutingTable.model_validate({"rules": [
    {"name": "customs", "match": {"kind": "CustomsDeclaration"}, "deliver": ["customs"]},
    {"name": "quarantine", "match": {"hs_chapters": ["01-24"]}, "deliver": ["quarantine"]},
]})


@functools.cache
def shipped_catalog() -> Catalog:
    return load_catalog()


@functools.cache
def shipped_mappings() -> Mappings:
    return load_mappings(shipped_catalog())


def demo_context(partner: Partner = DEMO_PARTNER,
                 routing: RoutingTable = DEMO_ROUTING) -> Context:
    return Context(partner=partner, routing=routing, catalog=shipped_catalog(),
                   mappings=shipped_mappings(),
                   gateway=PartyId("SWGATEWAY", "ZZZ"),
                   ack_reference="77", received=dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC),
                   file_name="decl.edi")
