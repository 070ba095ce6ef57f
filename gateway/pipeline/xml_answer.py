"""The answer to an XML submission, in the standard its sender speaks, pure (lxml only).

- A WCO DEC-DMS declaration is answered with a WCO RES-DMS notification inside the same
  ``md:MetaData`` wrapper its declaration came in (``DocumentMetaData_2_DMS.xsd``, namespace
  ``urn:wco:datamodel:WCO:RES-DMS:2``; the schema is published beside the declaration schema).
- A UBL document is answered with a UBL 2.1 ApplicationResponse (OASIS UBL 2.1,
  ``urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2``).

Every value that came from a partner (references, identities, finding texts quoting its data)
is hostile: a character XML 1.0 cannot carry is written as its Python escape, and every text
is cut to the length its schema allows, so that no value can make the answer invalid.  The
tree is built with lxml, which escapes markup ("<", "&", "]]>") itself.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lxml import etree  # type: ignore[import-untyped]

from gateway.config.xml_schemas import AnswerStandard
from gateway.model.findings import Finding


@dataclass(frozen=True, slots=True)
class XmlAnswerFacts:
    """What an XML answer says.  ``response_id`` is our reference for the answer (the
    submission id, as a CONTRL's control reference is); ``document_reference`` the document's
    own (DEC-DMS ``Declaration/FunctionalReferenceID``, UBL ``cbc:ID``), ``""`` when unknown."""

    standard: AnswerStandard
    response_id: str
    issued: dt.datetime
    gateway_id: str
    sender_id: str
    document_reference: str
    document_type: str
    accepted: bool
    findings: tuple[Finding, ...]
    #: An agency's decision rather than the gateway's acknowledgement: the RES-DMS
    #: Response/FunctionCode (RES_*) or the UBL cbc:ResponseCode (UNCL 4343) to write instead
    #: of the one ``accepted`` gives.
    decision_code: str = ""
    #: An agency's reasons, (code or None, text): errors of a rejection, remarks otherwise.
    reasons: tuple[tuple[str | None, str], ...] = ()
    #: The agency's own registration of the declaration (RES-DMS Declaration/ID, the MRN).
    agency_reference: str = ""
    #: When the agency decided (RES-DMS Declaration/AcceptanceDateTime or RejectionDateTime).
    decided: dt.datetime | None = None


# -- hostile values ------------------------------------------------------------------------

#: What XML 1.0 cannot carry (its Char production, section 2.2): C0 controls but tab, LF and
#: CR; lone surrogates (a partner's undecodable bytes kept as surrogate escapes); U+FFFE/FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
ELLIPSIS = "\u2026"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_text(value: str, limit: int | None = None) -> str:
    """``value`` as an element may carry it: each character XML 1.0 forbids written as its
    escape (``\\x01``), then cut to ``limit`` characters, an ellipsis saying it was cut."""
    text = _NOT_XML.sub(_escape, value)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + ELLIPSIS
    return text


# -- WCO RES-DMS -----------------------------------------------------------------------------

META_NS = "urn:wco:datamodel:WCO:DocumentMetaData-DMS:2"
RES_NS = "urn:wco:datamodel:WCO:RES-DMS:2"
RES_DS_NS = "urn:wco:datamodel:WCO:Response_DS:DMS:2"

#: Response/FunctionCode (WCO DM 017, n..2) as the publisher of these schemas (HMRC, Customs
#: Declaration Service) uses it; "Customs declarations end-to-end service guide",
#: Notifications: https://developer.service.hmrc.gov.uk/guides/
#: customs-declarations-end-to-end-service-guide/documentation/notifications.html
RES_ACCEPTED = "01"  # DMSACC: the declaration has been legally accepted
RES_REGISTERED = "02"  # DMSRCV: the message has been registered (received, not yet decided)
RES_REJECTED = "03"  # DMSREJ: the received message has been rejected
RES_CONTROL = "05"  # DMSCTL: customs intends to examine the goods
RES_DOCUMENTS = "06"  # DMSDOC: the submitter is asked to present documents
RES_RELEASED = "08"  # DMSROG: the goods can be released
RES_CLEARED = "09"  # DMSCLE: cleared, and by implication released
RES_CANCELLED = "10"  # DMSINV: the declaration has been cancelled (invalidated)
RES_MANUAL = "17"  # DMSEXT: the declaration needs to be handled manually
RES_QUERY = "51"  # DMSQRY: a query has been raised on the declaration

#: Length limits of RES-DMS (WCO_RES_DS_2_DMS.xsd, DocumentMetaData_2_DMS.xsd).
RES_REFERENCE_LIMIT = 35  # Response/FunctionalReferenceID, Declaration/FunctionalReferenceID an..35
RES_DESCRIPTION_LIMIT = 512  # Error/Description an..512
RES_VALIDATION_CODE_LIMIT = 8  # Error/ValidationCode an..8
RES_AGENCY_NAME_LIMIT = 70  # md:ResponsibleAgencyName an..70
RES_DECLARATION_ID_LIMIT = 70  # Declaration/ID an..70
RES_STATEMENT_CODE_LIMIT = 17  # AdditionalInformation/StatementCode an..17
#: Pointer/SequenceNumeric is n..5.
RES_SEQUENCE_LIMIT = 99_999
#: The WCO data model version of these schemas (the declaration's md:WCODataModelVersionCode).
WCO_DATA_MODEL_VERSION = "3.6"

#: Pointer/DocumentSectionCode (WCO DM 375): the WCO ID of each class of a DEC-DMS
#: declaration, as WCO_DEC_2_DMS.xsd annotates it (``WCOID``).  A finding's XPath becomes one
#: Pointer per class it passes through, as RES-DMS points at a declaration's elements.
WCO_CLASS_IDS: dict[str, str] = {
    "AEOMutualRecognitionParty": "16C", "AdditionalDocument": "02A",
    "AdditionalInformation": "03A", "Address": "04A", "Agent": "05A", "Amendment": "06A",
    "ArrivalTransportMeans": "10A", "Authentication": "61B", "Authenticator": "12A",
    "AuthorisationHolder": "17C", "BorderTransportMeans": "15A", "Buyer": "16A",
    "Carrier": "18A", "ChargeDeduction": "58B", "Classification": "21A", "Commodity": "23A",
    "Communication": "25A", "Consignee": "27A", "Consignment": "28A",
    "ConsignmentItem": "29A", "Consignor": "30A", "Contact": "34A", "CurrencyExchange": "40A",
    "CustomsValuation": "41A", "DangerousGoods": "12C", "Declarant": "57B",
    "Declaration": "42A", "DepartureTransportMeans": "46A", "Destination": "99B",
    "DomesticDutyTaxParty": "55B", "DutyTaxFee": "50A", "ExitOffice": "56A",
    "ExportCountry": "95B", "Exporter": "57A", "Freight": "62A", "GoodsLocation": "64A",
    "GoodsMeasure": "65A", "GoodsShipment": "67A", "GovernmentAgencyGoodsItem": "68A",
    "GovernmentProcedure": "70A", "GuaranteeOffice": "14C", "Importer": "74A",
    "Invoice": "78A", "InvoiceLine": "79A", "Itinerary": "81A", "LoadingLocation": "83A",
    "ObligationGuarantee": "90A", "Origin": "92A", "Packaging": "93A", "Payer": "56B",
    "Payment": "94A", "Pointer": "97A", "PresentationOffice": "15C",
    "PreviousDocument": "99A", "Seal": "44B", "Seller": "09B", "Submitter": "17B",
    "SupervisingOffice": "97B", "Surety": "19B", "TradeTerms": "22B",
    "TransportEquipment": "31B", "UCR": "35B", "ValuationAdjustment": "39B",
    "Warehouse": "43B", "WriteOff": "22C",
}
#: One step of an XPath: an optional prefix, a local name, an optional position.
_STEP = re.compile(r"^(?:[^:\[\]]+:)?([A-Za-z_][\w.\-]*)(?:\[(\d+)\])?$")


def wco_pointers(xpath: str) -> list[tuple[str, int | None]]:
    """The (DocumentSectionCode, SequenceNumeric) of each WCO class on ``xpath``, from the
    Declaration down; empty when the path does not go through a declaration."""
    steps = [step for step in xpath.split("/") if step]
    pointers: list[tuple[str, int | None]] = []
    inside = False
    for step in steps:
        match = _STEP.match(step)
        if match is None:
            break
        name, position = match.group(1), match.group(2)
        inside = inside or name == "Declaration"
        if not inside or name not in WCO_CLASS_IDS:
            continue
        sequence = int(position) if position is not None else None
        if sequence is not None and not 0 <= sequence <= RES_SEQUENCE_LIMIT:
            sequence = None
        pointers.append((WCO_CLASS_IDS[name], sequence))
    return pointers


def _wco_datetime(moment: dt.datetime) -> str:
    """A DateTimeString of format 304 (CCYYMMDDHHMMSS and a zone): ``20261203155920Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S") + "Z"


def _res_dms(facts: XmlAnswerFacts, findings: Sequence[Finding], left_out: int) -> etree._Element:
    res = _maker(RES_NS)
    ds = _maker(RES_DS_NS)
    meta = _maker(META_NS)
    root = etree.Element(f"{{{META_NS}}}MetaData",
                         nsmap={"md": META_NS, None: RES_NS, "ds": RES_DS_NS})
    meta(root, "WCODataModelVersionCode", WCO_DATA_MODEL_VERSION)
    meta(root, "WCOTypeName", "RES")
    if facts.gateway_id:
        meta(root, "ResponsibleAgencyName", xml_text(facts.gateway_id, RES_AGENCY_NAME_LIMIT))
    response = res(root, "Response")
    function = facts.decision_code or (RES_REGISTERED if facts.accepted else RES_REJECTED)
    res(response, "FunctionCode", function)
    if facts.response_id:
        res(response, "FunctionalReferenceID", xml_text(facts.response_id, RES_REFERENCE_LIMIT))
    _stamp(ds, res(response, "IssueDateTime"), facts.issued)
    rejected = function == RES_REJECTED
    if not rejected:  # an agency's remarks on a decision that is no rejection
        for code, text in facts.reasons:
            remark = res(response, "AdditionalInformation")
            fitting, described = _coded(code, text, RES_STATEMENT_CODE_LIMIT)
            if fitting:
                res(remark, "StatementCode", fitting)
            res(remark, "StatementDescription", xml_text(described, RES_DESCRIPTION_LIMIT))
    for finding in findings:
        error = res(response, "Error")
        res(error, "Description", xml_text(finding.describe(), RES_DESCRIPTION_LIMIT))
        code = res(error, "ValidationCode", str(int(finding.code))[:RES_VALIDATION_CODE_LIMIT])
        # The code is a UN/EDIFACT syntax error code (ISO 9735 data element 0085), as the
        # CONTRL would carry it: the list says so.
        code.set("listID", "0085")
        for section, sequence in wco_pointers(finding.xpath):
            pointer = res(error, "Pointer")
            if sequence is not None:
                res(pointer, "SequenceNumeric", str(sequence))
            res(pointer, "DocumentSectionCode", section)
    if left_out:
        res(res(response, "Error"), "Description", _left_out_text(left_out))
    if rejected:  # an agency's reasons for rejecting, as the errors they are
        for code, text in facts.reasons:
            error = res(response, "Error")
            fitting, described = _coded(code, text, RES_VALIDATION_CODE_LIMIT)
            res(error, "Description", xml_text(described, RES_DESCRIPTION_LIMIT))
            if fitting:
                res(error, "ValidationCode", fitting)
    declaration = res(response, "Declaration")
    # In the order of the schema: AcceptanceDateTime, FunctionalReferenceID, ID,
    # RejectionDateTime.
    if facts.decided is not None and function == RES_ACCEPTED:
        _stamp(ds, res(declaration, "AcceptanceDateTime"), facts.decided)
    if facts.document_reference:
        res(declaration, "FunctionalReferenceID",
            xml_text(facts.document_reference, RES_REFERENCE_LIMIT))
    if facts.agency_reference:
        res(declaration, "ID", xml_text(facts.agency_reference, RES_DECLARATION_ID_LIMIT))
    if facts.decided is not None and rejected and facts.decision_code:
        _stamp(ds, res(declaration, "RejectionDateTime"), facts.decided)
    return root


def _stamp(ds: _Maker, parent: etree._Element, moment: dt.datetime) -> None:
    ds(parent, "DateTimeString", _wco_datetime(moment)).set("formatCode", "304")


def _coded(code: str | None, text: str, limit: int) -> tuple[str, str]:
    """An agency's reason as (its code when the code fits its element, else ""; its text, led
    by the code when it did not fit: a code cut short would be another code)."""
    shown = xml_text(code or "")
    if len(shown) <= limit:
        return shown, text
    return "", f"[{shown}] {text}"


# -- UBL 2.1 ApplicationResponse ------------------------------------------------------------

UBL_NS = "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2"
CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
UBL_VERSION = "2.1"
#: cbc:ResponseCode, UN/CEFACT code list 4343 (Response type code): AP accepted, RE rejected.
UBL_ACCEPTED = "AP"
UBL_REJECTED = "RE"
UBL_IN_PROCESS = "IP"  # 4343 IP: in process
UBL_UNDER_QUERY = "UQ"  # 4343 UQ: under query (more information or a check is needed)
#: UBL texts have no length limit of their own; an answer stays small whatever a partner sent.
UBL_TEXT_LIMIT = 512
#: What stands for a reference that could not be read (a required cbc:ID or cbc:LineID):
#: "not applicable", as the Peppol Message Level Response writes an unknown line.
UNKNOWN_REFERENCE = "NA"


def _ubl(facts: XmlAnswerFacts, findings: Sequence[Finding], left_out: int) -> etree._Element:
    cbc = _maker(CBC_NS)
    cac = _maker(CAC_NS)
    root = etree.Element(f"{{{UBL_NS}}}ApplicationResponse",
                         nsmap={None: UBL_NS, "cac": CAC_NS, "cbc": CBC_NS})
    issued = facts.issued.astimezone(dt.UTC)
    cbc(root, "UBLVersionID", UBL_VERSION)
    cbc(root, "ID", xml_text(facts.response_id, UBL_TEXT_LIMIT) or UNKNOWN_REFERENCE)
    cbc(root, "IssueDate", issued.strftime("%Y-%m-%d"))
    cbc(root, "IssueTime", issued.strftime("%H:%M:%SZ"))
    for tag, party_id in (("SenderParty", facts.gateway_id), ("ReceiverParty", facts.sender_id)):
        party = cac(root, tag)
        if party_id:
            cbc(cac(party, "PartyIdentification"), "ID", xml_text(party_id, UBL_TEXT_LIMIT))
    document = cac(root, "DocumentResponse")
    response = cac(document, "Response")
    _response_code(cbc, response, facts.accepted, facts.decision_code)
    count = len(findings) + left_out
    verdict = "accepted" if facts.accepted else "rejected"
    cbc(response, "Description", f"{verdict}: {count} finding(s)" if count else verdict)
    if facts.decided is not None:
        decided = facts.decided.astimezone(dt.UTC)
        cbc(response, "EffectiveDate", decided.strftime("%Y-%m-%d"))
        cbc(response, "EffectiveTime", decided.strftime("%H:%M:%SZ"))
    for code, text in facts.reasons:  # an agency's reasons: its code and its words
        status = cac(response, "Status")
        if code:
            cbc(status, "StatusReasonCode", xml_text(code, UBL_TEXT_LIMIT))
        cbc(status, "StatusReason", xml_text(text, UBL_TEXT_LIMIT))
    reference = cac(document, "DocumentReference")
    cbc(reference, "ID",
        xml_text(facts.document_reference, UBL_TEXT_LIMIT) or UNKNOWN_REFERENCE)
    if facts.document_type:
        cbc(reference, "DocumentType", xml_text(facts.document_type, UBL_TEXT_LIMIT))
    if facts.agency_reference:  # the agency's own registration of the document
        registration = cac(document, "DocumentReference")
        cbc(registration, "ID", xml_text(facts.agency_reference, UBL_TEXT_LIMIT))
        cbc(registration, "DocumentType", "agency registration")
    for finding in findings:
        line = cac(document, "LineResponse")
        # The line reference names the element by its XPath (as the Peppol Message Level
        # Response does); the description says line, XPath, reason and code in words.
        cbc(cac(line, "LineReference"), "LineID",
            xml_text(finding.xpath, UBL_TEXT_LIMIT) or UNKNOWN_REFERENCE)
        answer = cac(line, "Response")
        _response_code(cbc, answer, facts.accepted)
        cbc(answer, "Description", xml_text(finding.describe(), UBL_TEXT_LIMIT))
        status = cac(answer, "Status")
        reason = cbc(status, "StatusReasonCode", str(int(finding.code)))
        reason.set("listID", "0085")  # ISO 9735 syntax error code, as in the CONTRL
        cbc(status, "StatusReason", xml_text(finding.text, UBL_TEXT_LIMIT))
        if finding.line is not None:
            cbc(status, "Text", f"line {finding.line}")
    if left_out:
        line = cac(document, "LineResponse")
        cbc(cac(line, "LineReference"), "LineID", UNKNOWN_REFERENCE)
        answer = cac(line, "Response")
        _response_code(cbc, answer, facts.accepted)
        cbc(answer, "Description", _left_out_text(left_out))
    return root


def _response_code(cbc: _Maker, parent: etree._Element, accepted: bool,
                   decision_code: str = "") -> None:
    code = cbc(parent, "ResponseCode",
               decision_code or (UBL_ACCEPTED if accepted else UBL_REJECTED))
    code.set("listID", "UNCL4343")


# -- both ----------------------------------------------------------------------------------

class _Maker(Protocol):
    def __call__(self, parent: etree._Element, tag: str, text: str | None = None,
                 ) -> etree._Element: ...


def _maker(namespace: str) -> _Maker:
    """A function adding a child in ``namespace``, with its text when one is given."""

    def add(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, f"{{{namespace}}}{tag}")
        if text is not None:
            child.text = text
        return child

    return add


def _left_out_text(count: int) -> str:
    return f"{count:,} more finding(s) left out of this answer"


def render_xml_answer(facts: XmlAnswerFacts, max_findings: int = 100) -> bytes:
    """The answer as UTF-8 XML with its declaration: the first ``max_findings`` findings, one
    entry each, and one more saying how many were left out."""
    shown = facts.findings[: max(max_findings, 0)]
    left_out = len(facts.findings) - len(shown)
    if facts.standard == "RES-DMS":
        root = _res_dms(facts, shown, left_out)
    elif facts.standard == "UBL-ApplicationResponse":
        root = _ubl(facts, shown, left_out)
    else:
        raise ValueError(f"no XML answer standard {facts.standard!r}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
