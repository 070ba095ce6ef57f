"""The demo's XML schema registry (its XSDs come from ../shared/corpus/xml) for tests, compiled
once per test process: UBL's CertificateOfOrigin XSD alone takes seconds."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from gateway.app.xml_schema_files import compile_schema, load_xml_catalog
from gateway.config.xml_schemas import AnswerStandard
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


NOTIFICATION = DEC_DMS / "public" / "api" / "conf" / "2.0" / "schemas" / "wco" / "notification"
UBL_MAINDOC = XML_CORPUS / "ubl-2.1" / "ph-ubl21" / "src" / "main" / "resources" / "schemas" \
    / "ubl21" / "maindoc"
RES_NAMESPACE = "urn:wco:datamodel:WCO:RES-DMS:2"


@functools.cache
def answer_schemas() -> dict[AnswerStandard, Any]:
    """The XSDs our XML answers must validate against, compiled once per test process (the
    gateway's own loader: local files only)."""
    if not NOTIFICATION.is_dir() or not UBL_MAINDOC.is_dir():
        pytest.skip(f"the RES-DMS and UBL 2.1 schemas are not under {XML_CORPUS}")
    return {
        "RES-DMS": compile_schema(NOTIFICATION / "DocumentMetaData_2_DMS.xsd",
                                  {RES_NAMESPACE: NOTIFICATION / "WCO_RES_2_DMS.xsd"},
                                  "RES-DMS"),
        "UBL-ApplicationResponse": compile_schema(
            UBL_MAINDOC / "UBL-ApplicationResponse-2.1.xsd", {}, "UBL ApplicationResponse"),
    }


def assert_valid_answer(standard: AnswerStandard, body: bytes) -> None:
    """``body`` is a valid answer of ``standard``, or the assertion lists every violation."""
    errors = list(answer_schemas()[standard].iter_errors(etree.fromstring(body)))
    assert not errors, [str(e.reason) for e in errors] + [body.decode()]
