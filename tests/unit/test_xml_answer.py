"""XML answers: RES-DMS and UBL 2.1 ApplicationResponse, valid against their schemas whatever
a partner's values and findings hold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped]

from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.pipeline.xml_answer import (
    CAC_NS,
    CBC_NS,
    RES_DS_NS,
    RES_NS,
    AnswerStandard,
    XmlAnswerFacts,
    render_xml_answer,
    wco_pointers,
    xml_text,
)
from tests.support.edifact import CORPUS

NOTIFICATION = CORPUS / "xml" / "wco-dec-dms" / "public" / "api" / "conf" / "2.0" / "schemas" \
    / "wco" / "notification"
UBL_XSD = CORPUS / "xml" / "ubl-2.1" / "ph-ubl21" / "src" / "main" / "resources" / "schemas" \
    / "ubl21" / "maindoc" / "UBL-ApplicationResponse-2.1.xsd"
ISSUED = dt.datetime(2026, 12, 3, 15, 59, 20, tzinfo=dt.UTC)
XPATH = "/md:MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2]/Commodity"
NS = {"md": "urn:wco:datamodel:WCO:DocumentMetaData-DMS:2", "res": RES_NS, "ds": RES_DS_NS,
      "cac": CAC_NS, "cbc": CBC_NS,
      "ar": "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2"}
STANDARDS: tuple[AnswerStandard, ...] = ("RES-DMS", "UBL-ApplicationResponse")
HOSTILE = (
    "control \x01\x02\x07\x08\x0b\x0c\x1b\x1f\x7f characters",
    "x" * 10_000,
    "]]> <![CDATA[ </Error> &amp; &#0; <!-- -->",
    "odd \u202e\u200d\u200b\ufeff\U0001f4a9\u0301\ufffd\ufffe\uffff\udc80\U0010ffff",
    "",
    "   ",
    "\r\n\t",
)


@pytest.fixture(scope="module")
def schemas() -> dict[str, xmlschema.XMLSchema]:
    """Each XSD compiled once for the module (the DMS schema takes seconds)."""
    if not NOTIFICATION.is_dir() or not UBL_XSD.is_file():
        pytest.skip("../shared/corpus/xml (RES-DMS and UBL 2.1 schemas) is absent")
    return {
        "RES-DMS": xmlschema.XMLSchema(
            str(NOTIFICATION / "DocumentMetaData_2_DMS.xsd"),
            locations=[(RES_NS, str(NOTIFICATION / "WCO_RES_2_DMS.xsd"))], allow="local"),
        "UBL-ApplicationResponse": xmlschema.XMLSchema(str(UBL_XSD), allow="local"),
    }


def facts(standard: AnswerStandard, *, accepted: bool = True,
          findings: Sequence[Finding] = (), reference: str = "DemoUK20161207_010",
          response_id: str = "4711", sender: str = "TRADER1",
          document_type: str = "IMZ") -> XmlAnswerFacts:
    return XmlAnswerFacts(standard=standard, response_id=response_id, issued=ISSUED,
                          gateway_id="SWGATEWAY", sender_id=sender,
                          document_reference=reference, document_type=document_type,
                          accepted=accepted, findings=tuple(findings))


def finding(text: str = "Element 'Commodity': Missing child element(s).", *,
            xpath: str = XPATH, line: int | None = 42,
            code: SyntaxErrorCode = SyntaxErrorCode.MISSING) -> Finding:
    return Finding(code=code, text=text, line=line, xpath=xpath)


def valid(schemas: dict[str, xmlschema.XMLSchema], standard: str, body: bytes) -> etree._Element:
    """The answer parsed, after checking it is UTF-8 with a declaration and valid."""
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    body.decode("utf-8")
    errors = [str(error) for error in schemas[standard].iter_errors(body.decode("utf-8"))]
    assert errors == []
    return etree.fromstring(body)


# -- RES-DMS ----------------------------------------------------------------------------------

def test_res_dms_accepted(schemas: dict[str, xmlschema.XMLSchema]) -> None:
    root = valid(schemas, "RES-DMS", render_xml_answer(facts("RES-DMS")))
    assert root.xpath("string(res:Response/res:FunctionCode)", namespaces=NS) == "02"
    assert root.xpath("string(res:Response/res:FunctionalReferenceID)", namespaces=NS) == "4711"
    assert root.xpath("string(res:Response/res:Declaration/res:FunctionalReferenceID)",
                      namespaces=NS) == "DemoUK20161207_010"
    assert root.xpath("string(res:Response/res:IssueDateTime/ds:DateTimeString)",
                      namespaces=NS) == "20261203155920Z"
    assert root.xpath("count(res:Response/res:Error)", namespaces=NS) == 0


def test_res_dms_rejected_points_at_the_element(schemas: dict[str, xmlschema.XMLSchema]) -> None:
    root = valid(schemas, "RES-DMS",
                 render_xml_answer(facts("RES-DMS", accepted=False, findings=[finding()])))
    assert root.xpath("string(res:Response/res:FunctionCode)", namespaces=NS) == "03"
    [error] = root.xpath("res:Response/res:Error", namespaces=NS)
    assert error.xpath("string(res:ValidationCode)", namespaces=NS) == "13"
    description = error.xpath("string(res:Description)", namespaces=NS)
    assert "line 42" in description and XPATH in description and "Missing child" in description
    pointers = [(p.xpath("string(res:DocumentSectionCode)", namespaces=NS),
                 p.xpath("string(res:SequenceNumeric)", namespaces=NS))
                for p in error.xpath("res:Pointer", namespaces=NS)]
    # Declaration 42A, GoodsShipment 67A, the second GovernmentAgencyGoodsItem 68A, Commodity
    # 23A: the WCO IDs of those classes in WCO_DEC_2_DMS.xsd.
    assert pointers == [("42A", ""), ("67A", ""), ("68A", "2"), ("23A", "")]


def test_res_dms_caps_the_findings(schemas: dict[str, xmlschema.XMLSchema]) -> None:
    many = [finding(f"problem {n}", line=n) for n in range(150)]
    root = valid(schemas, "RES-DMS",
                 render_xml_answer(facts("RES-DMS", accepted=False, findings=many)))
    errors = root.xpath("res:Response/res:Error/res:Description/text()", namespaces=NS)
    assert len(errors) == 101
    assert "problem 99" in errors[99]
    assert errors[100] == "50 more finding(s) left out of this answer"


@pytest.mark.parametrize("text", HOSTILE)
def test_res_dms_hostile_values(schemas: dict[str, xmlschema.XMLSchema], text: str) -> None:
    findings = [finding(text, xpath=text), finding(text, xpath="", line=None)]
    for reference in (text, ""):
        body = render_xml_answer(facts("RES-DMS", accepted=False, findings=findings,
                                       reference=reference, response_id=reference,
                                       sender=reference, document_type=reference))
        valid(schemas, "RES-DMS", body)


# -- UBL 2.1 ApplicationResponse --------------------------------------------------------------

def test_ubl_accepted(schemas: dict[str, xmlschema.XMLSchema]) -> None:
    root = valid(schemas, "UBL-ApplicationResponse",
                 render_xml_answer(facts("UBL-ApplicationResponse", reference="COO-2026-1",
                                         document_type="CertificateOfOrigin")))
    assert root.xpath("string(cbc:UBLVersionID)", namespaces=NS) == "2.1"
    assert root.xpath("string(cbc:ID)", namespaces=NS) == "4711"
    assert root.xpath("string(cbc:IssueDate)", namespaces=NS) == "2026-12-03"
    assert root.xpath("string(cac:SenderParty/cac:PartyIdentification/cbc:ID)",
                      namespaces=NS) == "SWGATEWAY"
    assert root.xpath("string(cac:ReceiverParty/cac:PartyIdentification/cbc:ID)",
                      namespaces=NS) == "TRADER1"
    response = "cac:DocumentResponse/cac:Response/cbc:ResponseCode"
    assert root.xpath(f"string({response})", namespaces=NS) == "AP"
    assert root.xpath("string(cac:DocumentResponse/cac:DocumentReference/cbc:ID)",
                      namespaces=NS) == "COO-2026-1"
    assert root.xpath("count(//cac:LineResponse)", namespaces=NS) == 0


def test_ubl_rejected_tells_text_line_and_xpath(schemas: dict[str, xmlschema.XMLSchema]) -> None:
    missing = finding("Element 'cbc:ID': missing.", xpath="/CertificateOfOrigin/cac:Exporter",
                      line=7, code=SyntaxErrorCode.MANDATORY_DATA_ELEMENT_MISSING)
    root = valid(schemas, "UBL-ApplicationResponse",
                 render_xml_answer(facts("UBL-ApplicationResponse", accepted=False,
                                         findings=[missing])))
    assert root.xpath("string(cac:DocumentResponse/cac:Response/cbc:ResponseCode)",
                      namespaces=NS) == "RE"
    [line] = root.xpath("cac:DocumentResponse/cac:LineResponse", namespaces=NS)
    assert line.xpath("string(cac:LineReference/cbc:LineID)",
                      namespaces=NS) == "/CertificateOfOrigin/cac:Exporter"
    description = line.xpath("string(cac:Response/cbc:Description)", namespaces=NS)
    assert description == "line 7 /CertificateOfOrigin/cac:Exporter: Element 'cbc:ID': " \
        "missing. [0085=9]"
    assert line.xpath("string(cac:Response/cac:Status/cbc:StatusReasonCode)",
                      namespaces=NS) == "9"


def test_ubl_caps_the_findings(schemas: dict[str, xmlschema.XMLSchema]) -> None:
    many = [finding(f"problem {n}") for n in range(150)]
    root = valid(schemas, "UBL-ApplicationResponse",
                 render_xml_answer(facts("UBL-ApplicationResponse", accepted=False,
                                         findings=many)))
    lines = root.xpath("cac:DocumentResponse/cac:LineResponse", namespaces=NS)
    assert len(lines) == 101
    assert lines[-1].xpath("string(cac:Response/cbc:Description)", namespaces=NS) \
        == "50 more finding(s) left out of this answer"


@pytest.mark.parametrize("text", HOSTILE)
def test_ubl_hostile_values(schemas: dict[str, xmlschema.XMLSchema], text: str) -> None:
    findings = [finding(text, xpath=text), finding(text, xpath="", line=None)]
    for reference in (text, ""):
        body = render_xml_answer(facts("UBL-ApplicationResponse", accepted=False,
                                       findings=findings, reference=reference,
                                       response_id=reference, sender=reference,
                                       document_type=reference))
        valid(schemas, "UBL-ApplicationResponse", body)


# -- whatever a partner sends ------------------------------------------------------------------

#: Every code point, lone surrogates and XML-forbidden characters included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=600)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(standard=st.sampled_from(STANDARDS), accepted=st.booleans(),
       texts=st.lists(st.tuples(ANY_TEXT, ANY_TEXT, st.none() | st.integers(0, 10**9)),
                      max_size=4),
       reference=ANY_TEXT, response_id=ANY_TEXT, sender=ANY_TEXT,
       code=st.sampled_from(list(SyntaxErrorCode)), cap=st.integers(0, 5))
def test_any_values_give_a_valid_answer(
        schemas: dict[str, xmlschema.XMLSchema], standard: AnswerStandard, accepted: bool,
        texts: list[tuple[str, str, int | None]], reference: str, response_id: str,
        sender: str, code: SyntaxErrorCode, cap: int) -> None:
    findings = [Finding(code=code, text=text, xpath=xpath, line=line)
                for text, xpath, line in texts]
    body = render_xml_answer(facts(standard, accepted=accepted, findings=findings,
                                   reference=reference, response_id=response_id,
                                   sender=sender, document_type=reference), max_findings=cap)
    valid(schemas, standard, body)


# -- pure helpers (no corpus needed) ----------------------------------------------------------

def test_xml_text_escapes_what_xml_cannot_carry_and_cuts() -> None:
    assert xml_text("a\x00b\x1fc\udc80d\uffff") == "a\\x00b\\x1fc\\udc80d\\uffff"
    assert xml_text("tab\tnl\ncr\r") == "tab\tnl\ncr\r"
    cut = xml_text("x" * 10_000, 35)
    assert len(cut) == 35 and cut.endswith("\u2026")
    assert xml_text("x" * 35, 35) == "x" * 35


def test_wco_pointers() -> None:
    assert wco_pointers(XPATH) == [("42A", None), ("67A", None), ("68A", 2), ("23A", None)]
    assert wco_pointers("/md:MetaData/md:WCOTypeName") == []
    assert wco_pointers("/md:MetaData/Declaration/Agent/ID") == [("42A", None), ("05A", None)]
    # A position too large for SequenceNumeric (n..5) is left out rather than made invalid.
    assert wco_pointers("/md:MetaData/Declaration/GoodsShipment[123456]") == \
        [("42A", None), ("67A", None)]
    assert wco_pointers("not a path ]]>") == []
