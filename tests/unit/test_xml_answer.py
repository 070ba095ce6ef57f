"""XML answers: RES-DMS and UBL 2.1 ApplicationResponse, valid against their schemas whatever
a partner's values and findings hold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import get_args

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped]

from gateway.config.xml_schemas import AnswerStandard
from gateway.model.canonical import ApplicationError, CustomsResponse, Source
from gateway.model.canonical.responses import Answered, Decision, Reason
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.pipeline.respond import (
    RES_DMS_DECISIONS,
    UBL_DECISIONS,
    answer_message,
    answer_tail,
    render_xml_decision,
)
from gateway.pipeline.xml_answer import (
    CAC_NS,
    CBC_NS,
    RES_DS_NS,
    RES_NS,
    XmlAnswerFacts,
    render_xml_answer,
    wco_pointers,
    xml_text,
)
from tests.support.xml import answer_schemas

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
def schemas() -> dict[AnswerStandard, xmlschema.XMLSchema]:
    return answer_schemas()


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


# -- an agency's decision on an XML document (pipeline.respond) ------------------------------

#: An agency answer's own source (the agency's); the answer is written for the declaration's.
AGENCY_SOURCE = Source(syntax="JSON", message_type="CustomsResponse", release="1",
                       sender="customs", recipient="SWGATEWAY", interchange_reference="A1",
                       message_reference="1")


def decision(value: str, **fields: object) -> CustomsResponse:
    return CustomsResponse.model_validate({
        "source": AGENCY_SOURCE, "agency": "customs", "decision": value,
        "decided_at": ISSUED, "answers": Answered(document_reference="DemoUK20161207_010"),
        **fields})


def xml_decision(answer: CustomsResponse | ApplicationError,
                 message_type: str = "DEC-DMS") -> bytes:
    return render_xml_decision(answer, message_type=message_type, gateway_id="SWGATEWAY",
                               reply_to="TRADER1", response_id="R17", prepared=ISSUED)


def test_answer_names_follow_the_sender_standard() -> None:
    assert answer_tail(1, "customs", 2, "CustomsResponse", syntax="XML",
                       message_type="DEC-DMS") == "1.customs.2.res-dms.xml"
    assert answer_tail(1, "trade", 1, "ApplicationError", syntax="XML",
                       message_type="UBL-CertificateOfOrigin") \
        == "1.trade.1.application-response.xml"
    # EDIFACT as before
    assert answer_tail(1, "customs", 2, "CustomsResponse") == "1.customs.2.cusres.edi"
    assert answer_message("ApplicationError", "EDIFACT", "CUSDEC") == "APERAK"


def test_every_decision_has_its_codes() -> None:
    decisions = set(get_args(Decision))
    assert set(RES_DMS_DECISIONS) == decisions == set(UBL_DECISIONS)


@pytest.mark.parametrize(("value", "function_code"), [
    ("accepted", "01"), ("pending", "02"), ("rejected", "03"), ("inspection", "05"),
    ("documents_required", "06"), ("released", "08"), ("cancelled", "10"), ("held", "17"),
    ("licence_passed", "01"), ("licence_failed", "03"),
])
def test_a_decision_on_a_dec_dms_declaration_is_a_res_dms(
        schemas: dict[str, xmlschema.XMLSchema], value: str, function_code: str) -> None:
    answer = decision(value, agency_reference="26GB12345678901234",
                      reasons=[{"code": "CDS12046", "text": "Goods item 2: no licence"}])
    root = valid(schemas, "RES-DMS", xml_decision(answer))
    response = root.xpath("res:Response", namespaces=NS)[0]
    assert response.xpath("string(res:FunctionCode)", namespaces=NS) == function_code
    assert response.xpath("string(res:FunctionalReferenceID)", namespaces=NS) == "R17"
    assert response.xpath("string(res:Declaration/res:FunctionalReferenceID)",
                          namespaces=NS) == "DemoUK20161207_010"
    assert response.xpath("string(res:Declaration/res:ID)",
                          namespaces=NS) == "26GB12345678901234"
    where = "res:Error" if function_code == "03" else "res:AdditionalInformation"
    code = "ValidationCode" if function_code == "03" else "StatementCode"
    assert response.xpath(f"string({where}/res:{code})", namespaces=NS) == "CDS12046"
    assert "no licence" in response.xpath(f"string({where})", namespaces=NS)


def test_an_application_error_is_a_rejection(schemas: dict[str, xmlschema.XMLSchema]) -> None:
    error = ApplicationError(source=AGENCY_SOURCE,
                             answers=Answered(document_reference="DemoUK20161207_010"),
                             errors=(Reason(code="12", text="no such office"),
                                     Reason(text="and no such importer")),
                             reported_at=ISSUED)
    root = valid(schemas, "RES-DMS", xml_decision(error))
    assert root.xpath("string(res:Response/res:FunctionCode)", namespaces=NS) == "03"
    assert root.xpath("res:Response/res:Error/res:Description/text()", namespaces=NS) == [
        "no such office", "and no such importer"]
    assert root.xpath("string(res:Response/res:Declaration/res:RejectionDateTime)",
                      namespaces=NS).strip() == "20261203155920Z"


def test_a_decision_on_a_ubl_document_is_an_application_response(
        schemas: dict[str, xmlschema.XMLSchema]) -> None:
    answer = decision("documents_required", reasons=[{"code": "D1", "text": "send the invoice"}])
    root = valid(schemas, "UBL-ApplicationResponse",
                 xml_decision(answer, "UBL-CertificateOfOrigin"))
    response = root.xpath("cac:DocumentResponse/cac:Response", namespaces=NS)[0]
    assert response.xpath("string(cbc:ResponseCode)", namespaces=NS) == "UQ"
    assert response.xpath("string(cac:Status/cbc:StatusReason)", namespaces=NS) \
        == "send the invoice"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.sampled_from(sorted(get_args(Decision))),
       reasons=st.lists(st.tuples(st.none() | ANY_TEXT, ANY_TEXT), max_size=3),
       reference=ANY_TEXT, agency_reference=st.none() | st.text(max_size=35),
       message_type=st.sampled_from(["DEC-DMS", "UBL-CertificateOfOrigin"]))
def test_any_agency_values_give_a_valid_answer(
        schemas: dict[str, xmlschema.XMLSchema], value: str,
        reasons: list[tuple[str | None, str]], reference: str,
        agency_reference: str | None, message_type: str) -> None:
    answer = CustomsResponse.model_construct(
        source=AGENCY_SOURCE, agency="customs", decision=value, decided_at=ISSUED,
        answers=Answered.model_construct(document_reference=reference),
        agency_reference=agency_reference,
        reasons=tuple(Reason.model_construct(code=code, text=text) for code, text in reasons),
        duties=())
    standard = "RES-DMS" if message_type == "DEC-DMS" else "UBL-ApplicationResponse"
    valid(schemas, standard, xml_decision(answer, message_type))
