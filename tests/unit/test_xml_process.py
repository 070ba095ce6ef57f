"""XML submissions through the pure pipeline: the verdict, the findings with line and XPath, and
the answer in the sender's own standard (RES-DMS for a WCO declaration)."""

from __future__ import annotations

import dataclasses
import functools
import re

import pytest
from lxml import etree

from gateway.app.mapping_files import load_mappings
from gateway.config.partners import EdifactId, Partner
from gateway.model.findings import SyntaxErrorCode
from gateway.model.outcome import Status
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.process import Context, process_submission
from gateway.pipeline.respond import answer_message
from gateway.pipeline.xml_kinds import XmlCatalog
from gateway.wire.xml.reader import XmlLimits
from tests.support.pipeline import demo_context, shipped_catalog
from tests.support.xml import (
    SAMPLE_DECLARANT,
    SAMPLE_INVALID_DEC,
    SAMPLE_REFERENCE,
    SAMPLE_VALID_DEC,
    demo_xml_catalog,
)

XML_PARTNER = Partner(id="demo-van", name="Demo VAN", edifact_ids=(EdifactId(id="DEMOVAN"),),
                      xml_ids=(SAMPLE_DECLARANT,))
RES = "urn:wco:datamodel:WCO:RES-DMS:2"


@functools.cache
def xml_mappings() -> Mappings:
    return load_mappings(shipped_catalog(), xml=demo_xml_catalog())


def xml_context(partner: Partner = XML_PARTNER, catalog: XmlCatalog | None = None) -> Context:
    return dataclasses.replace(demo_context(partner), xml=catalog or demo_xml_catalog(),
                               mappings=xml_mappings(), file_name="decl.xml")


def sample() -> bytes:
    return SAMPLE_VALID_DEC.read_bytes()


def answer_tree(body: bytes) -> etree._Element:
    return etree.fromstring(body)


def test_a_declaration_that_is_not_well_formed_is_rejected_at_its_line_in_res_dms() -> None:
    outcome = process_submission(SAMPLE_INVALID_DEC.read_bytes(), xml_context())
    assert outcome.status is Status.REJECTED
    assert outcome.findings[0].line == 33
    assert "not well-formed" in outcome.summary and "line 33" in outcome.summary
    assert outcome.summary.count("line 33") == 1
    assert outcome.acknowledgement is not None
    assert outcome.acknowledgement.kind == "RES-DMS"
    assert b"33" in outcome.acknowledgement.body
    assert RES in answer_tree(outcome.acknowledgement.body).nsmap.values() or \
        RES.encode() in outcome.acknowledgement.body


def test_every_schema_violation_is_told_with_its_line_and_xpath() -> None:
    data = sample().replace(b"<TypeCode>IMZ</TypeCode>", b"<TypeCode>IMZ</TypeCode><Bogus>1</Bogus>"
                            ).replace(b"<TotalPackageQuantity>1<", b"<TotalPackageQuantity>x<")
    outcome = process_submission(data, xml_context())
    assert outcome.status is Status.REJECTED
    (message,) = outcome.messages
    found = {(f.line, f.xpath, f.code) for f in message.findings}
    assert (16, "/md:MetaData/Declaration/TotalPackageQuantity",
            SyntaxErrorCode.INVALID_VALUE) in found
    assert (14, "/md:MetaData/Declaration/Bogus",
            SyntaxErrorCode.NOT_SUPPORTED_IN_POSITION) in found
    assert "Bogus" in outcome.summary and "line 16" in outcome.summary
    assert outcome.acknowledgement is not None and b"Bogus" in outcome.acknowledgement.body


def test_violations_beyond_the_cap_are_counted_not_listed() -> None:
    bad = b"".join(b"<TransportEquipment><SequenceNumeric>x</SequenceNumeric></TransportEquipment>"
                   for _ in range(30))
    data = sample().replace(b"<TransportEquipment>", bad + b"<TransportEquipment>", 1)
    catalog = dataclasses.replace(demo_xml_catalog(), max_findings=10)
    outcome = process_submission(data, xml_context(catalog=catalog))
    (message,) = outcome.messages
    assert len(message.findings) == 11
    assert re.search(r"\d+ more schema violations not listed", message.findings[-1].text)


def test_a_submitter_that_is_not_the_partners_is_refused_rule_5() -> None:
    stranger = Partner(id="other-van", name="Other", edifact_ids=(EdifactId(id="OTHER"),),
                       xml_ids=("ZZ999",))
    outcome = process_submission(sample(), xml_context(stranger))
    assert outcome.status is Status.REJECTED
    assert outcome.messages == ()
    (finding,) = outcome.findings
    assert finding.code is SyntaxErrorCode.UNKNOWN_INTERCHANGE_SENDER
    assert SAMPLE_DECLARANT in finding.text and "other-van" in finding.text
    assert outcome.acknowledgement is not None and outcome.acknowledgement.kind == "RES-DMS"


def test_a_root_no_schema_takes_gets_a_plain_report_naming_what_is_taken() -> None:
    outcome = process_submission(b"<?xml version='1.0'?><Invoice xmlns='urn:x'/>",
                                 xml_context())
    assert outcome.status is Status.REJECTED
    assert outcome.acknowledgement is not None
    assert outcome.acknowledgement.kind == "ERROR_REPORT"
    assert b"{urn:x}Invoice" in outcome.acknowledgement.body
    assert b"DEC-DMS" in outcome.acknowledgement.body


def test_without_a_registry_xml_is_refused_saying_so() -> None:
    outcome = process_submission(sample(), xml_context(catalog=XmlCatalog()))
    assert outcome.status is Status.REJECTED
    assert "no XML documents" in outcome.summary


def test_a_document_over_the_element_limit_is_refused_in_its_standard() -> None:
    catalog = dataclasses.replace(demo_xml_catalog(), limits=XmlLimits(max_elements=20))
    outcome = process_submission(sample(), xml_context(catalog=catalog))
    assert outcome.status is Status.REJECTED
    assert "more than 20 elements" in outcome.summary
    assert outcome.acknowledgement is not None and outcome.acknowledgement.kind == "RES-DMS"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_the_same_declaration_in_utf16_is_read_alike(encoding: str) -> None:
    text = sample().decode("utf-8")
    data = ('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode(encoding)
    if encoding != "utf-16":  # -le/-be write no BOM: give one, as a Windows tool does
        data = ("\ufeff" + '<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode(encoding)
    utf16 = process_submission(data, xml_context())
    utf8 = process_submission(sample(), xml_context())
    assert utf16.status is utf8.status is Status.ACCEPTED, utf16.summary
    assert utf16.messages[0].canonical == utf8.messages[0].canonical
    assert utf16.header is not None and utf16.header.control_reference == SAMPLE_REFERENCE


def test_an_accepted_declaration_is_answered_accepted_and_routed_as_a_cusdec_would_be() -> None:
    outcome = process_submission(sample(), xml_context())
    assert outcome.status is Status.ACCEPTED, outcome.summary
    (message,) = outcome.messages
    assert message.identifier.type == "DEC-DMS"
    assert message.canonical is not None and message.canonical.kind == "CustomsDeclaration"
    assert "customs" in message.agencies
    assert outcome.header is not None and outcome.header.sender.id == SAMPLE_DECLARANT
    assert outcome.acknowledgement is not None and outcome.acknowledgement.kind == "RES-DMS"


def test_agencies_answers_follow_the_registrys_answer_standard_not_the_kinds_name() -> None:
    mapping = xml_mappings().xml_mapping("DEC-DMS")
    assert mapping is not None and mapping.answer == "RES-DMS"
    renamed = Mappings(by_xml_schema={"CERTS": dataclasses.replace(
        mapping, answer="UBL-ApplicationResponse")})
    assert answer_message("CustomsResponse", "XML", "CERTS", renamed) == \
        "UBL-ApplicationResponse"
    # A kind taken out of the registry since: its name is all there is to go by.
    assert answer_message("CustomsResponse", "XML", "CERTS") == "RES-DMS"
    assert answer_message("CustomsResponse", "XML", "UBL-Invoice") == "UBL-ApplicationResponse"
