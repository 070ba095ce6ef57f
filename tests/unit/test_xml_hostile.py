"""Hostile and unlucky XML submissions through the pure pipeline (issue 11): every one is
answered (never an exception, which would park the submission as the gateway's fault), and
what is answered and stored stays small whatever the document holds."""

from __future__ import annotations

import pytest

from gateway.model.outcome import Status
from gateway.pipeline.process import process_submission
from tests.support.counting_http import counting_server
from tests.support.xml import SAMPLE_DECLARANT, SAMPLE_REFERENCE
from tests.unit.test_xml_process import sample, xml_context

XSI = "http://www.w3.org/2001/XMLSchema-instance"
TYPE_CODE = b"<TypeCode>IMZ</TypeCode>"


@pytest.mark.parametrize("xsi_type", ["foo:bar", "undeclared", "xs:noSuchType"])
def test_an_xsi_type_naming_no_known_type_is_a_finding_not_a_crash(xsi_type: str) -> None:
    # xmlschema raises XMLSchemaKeyError for an xsi:type it cannot find (XSD 1.0 part 1,
    # 3.3.4 cvc-elt 4.2: the type must resolve): that is the document's fault.
    element = (f'<TypeCode xmlns:xsi="{XSI}" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
               f'xsi:type="{xsi_type}">IMZ</TypeCode>').encode()
    outcome = process_submission(sample().replace(TYPE_CODE, element), xml_context())
    assert outcome.status is Status.REJECTED
    (message,) = outcome.messages
    where = (14, "/md:MetaData/Declaration/TypeCode")
    assert any((f.line, f.xpath) == where and xsi_type in f.text for f in message.findings), \
        message.findings
    assert outcome.acknowledgement is not None and outcome.acknowledgement.kind == "RES-DMS"


def test_an_xsi_type_in_a_namespace_at_a_url_is_never_fetched() -> None:
    with counting_server(b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>') as server:
        element = (f'<TypeCode xmlns:xsi="{XSI}" xmlns:q="{server.url}/q.xsd" xsi:type="q:T">'
                   'IMZ</TypeCode>').encode()
        outcome = process_submission(sample().replace(TYPE_CODE, element), xml_context())
        hits = server.hits
    assert outcome.status is Status.REJECTED
    assert hits == 0


def test_schema_locations_pointing_at_http_are_never_fetched() -> None:
    with counting_server(b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>') as server:
        hint = (f'xmlns:xsi="{XSI}" xsi:schemaLocation="urn:wco:datamodel:WCO:DEC-DMS:2 '
                f'{server.url}/a.xsd" xsi:noNamespaceSchemaLocation="{server.url}/b.xsd" '
                'xmlns:udt=').encode()
        data = sample().replace(b"xmlns:udt=", hint, 1)
        outcome = process_submission(data, xml_context())
        hits = server.hits
    assert outcome.status is Status.ACCEPTED, outcome.summary
    assert hits == 0


#: The store indexes the control reference and the sender (btree rows of at most 2704 bytes)
#: and the summary quotes the reference: none may grow with the document.
@pytest.mark.parametrize("length", [10_000, 2_000_000])
def test_a_huge_reference_is_refused_and_neither_stored_nor_quoted_whole(length: int) -> None:
    data = sample().replace(SAMPLE_REFERENCE.encode(), b"R" * length)
    outcome = process_submission(data, xml_context())
    assert outcome.status is Status.REJECTED
    assert outcome.header is not None and len(outcome.header.control_reference) <= 100
    assert len(outcome.summary) < 1000
    assert any(f"{length:,} characters" in f.text for f in outcome.findings), outcome.findings
    assert outcome.acknowledgement is not None and len(outcome.acknowledgement.body) < 5000


def test_a_huge_submitter_is_neither_stored_nor_quoted_whole() -> None:
    data = sample().replace(f"<ID>{SAMPLE_DECLARANT}</ID>".encode(),
                            b"<ID>" + b"A" * 2_000_000 + b"</ID>")
    outcome = process_submission(data, xml_context())
    assert outcome.status is Status.REJECTED
    assert outcome.header is not None and len(outcome.header.sender.id) <= 100
    assert outcome.answer_to is not None and len(outcome.answer_to.id) <= 100
    assert len(outcome.summary) < 1000
    assert outcome.acknowledgement is not None and len(outcome.acknowledgement.body) < 5000


@pytest.mark.parametrize("fault", [b"I\x00Z", b"&#xD800;", b"&#0;"])
def test_a_fault_at_a_line_names_the_line_once(fault: bytes) -> None:
    outcome = process_submission(sample().replace(b"IMZ", fault), xml_context())
    assert outcome.status is Status.REJECTED
    assert outcome.summary.count("line 14") == 1, outcome.summary
    (finding,) = outcome.findings
    assert finding.line == 14 and not finding.text.startswith("line ")


def test_a_trailing_edifact_interchange_is_extra_content_at_its_line() -> None:
    data = sample() + b"UNA:+.? 'UNB+UNOC:3+DEMOVAN+GW+200101:1200+1'UNZ+0+1'"
    outcome = process_submission(data, xml_context())
    assert outcome.status is Status.REJECTED
    assert "Extra content" in outcome.summary
    assert outcome.acknowledgement is not None and outcome.acknowledgement.kind == "RES-DMS"


@pytest.mark.parametrize(("encoding", "bom", "declared"), [
    ("utf-32-le", "\ufeff", ""), ("utf-32-be", "\ufeff", '<?xml version="1.0" encoding="UTF-32"?>'),
    ("utf-16-le", "", ""), ("utf-16-be", "", ""),
])
def test_utf32_and_utf16_without_a_bom_are_read_as_docs_xml_says(encoding: str, bom: str,
                                                                  declared: str) -> None:
    # libxml2 reads neither UTF-32 nor BOM-less UTF-16 without a declaration; the sniffer knows
    # both (XML 1.0 Appendix F), and docs/xml.md promises them.
    data = (bom + declared + sample().decode("utf-8")).encode(encoding)
    outcome = process_submission(data, xml_context())
    assert outcome.status is Status.ACCEPTED, outcome.summary
    assert outcome.header is not None and outcome.header.control_reference == SAMPLE_REFERENCE
