"""The demo's XML schema registry (its XSDs come from ../shared/corpus/xml) for tests, compiled
once per test process: UBL's CertificateOfOrigin XSD alone takes seconds."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from gateway.app.xml_schema_files import load_xml_catalog
from gateway.pipeline.xml_kinds import XmlCatalog
from tests.support.edifact import CORPUS

REPO = Path(__file__).resolve().parents[2]
DEMO_REGISTRY = REPO / "deploy" / "demo" / "xml-schemas.yaml"
XML_CORPUS = CORPUS / "xml"
DEC_DMS = XML_CORPUS / "wco-dec-dms"
SAMPLE_VALID_DEC = DEC_DMS / "sample_valid_dec.xml"
SAMPLE_INVALID_DEC = DEC_DMS / "sample_invalid_dec.xml"
#: The sample declaration's submitter (Declarant/ID) and reference (FunctionalReferenceID).
SAMPLE_DECLARANT = "ZZ123456789000"
SAMPLE_REFERENCE = "DemoUK20161207_010"


def needs_xml_corpus() -> None:
    if not SAMPLE_VALID_DEC.is_file():
        pytest.skip(f"the WCO and UBL schemas and samples are not at {XML_CORPUS} (the shared "
                    "corpus beside the checkout)")


@functools.cache
def demo_xml_catalog() -> XmlCatalog:
    """The demo registry with both schemas plugged in (skips when the corpus is absent)."""
    needs_xml_corpus()
    catalog = load_xml_catalog(DEMO_REGISTRY)
    assert not catalog.missing, catalog.missing
    return catalog
