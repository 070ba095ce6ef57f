"""One XML submission through the pure stages: hardened read, its kind by root element, XSD
validation, rule 5, mapping to canonical, routing, and the answer in the sender's standard.

An XML document is one message: the Outcome carries it as the only MessageOutcome, with the
registry name as its type (``DEC-DMS``) and the registry version as its release, and a header
whose sender is the document's submitter and whose control reference is the document's own
reference (duplicates are found by it, as by UNB 0020 for EDIFACT).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, replace

from pydantic import ValidationError

from gateway.errors import MappingError, XmlRejected
from gateway.model.canonical import CertificateOfOrigin
from gateway.model.edifact import InterchangeHeader, MessageIdentifier, PartyId
from gateway.model.findings import Finding, SyntaxErrorCode, shown
from gateway.model.outcome import Acknowledgement, MessageOutcome, Outcome
from gateway.pipeline.context import Context
from gateway.pipeline.sniff import inspect
from gateway.pipeline.verdict import refusal, routed, status_of, summary_of, unbuildable
from gateway.pipeline.xml_answer import XmlAnswerFacts, render_xml_answer
from gateway.pipeline.xml_kinds import XmlCatalog, XmlKind
from gateway.pipeline.xml_validate import schema_findings
from gateway.wire.xml.reader import XmlDocument, read_xml

Code = SyntaxErrorCode
#: The syntax identifier an XML submission's header carries (EDIFACT ones carry UNOA, UNOC...).
XML_SYNTAX = "XML"
#: The longest submitter or reference kept: the store keys duplicates on both (a PostgreSQL
#: btree row holds at most 2704 bytes) and summaries quote the reference.  Far above what the
#: standards give (WCO DM FunctionalReferenceID an..35, an EORI an..17, UNB 0020 an..14).
IDENTITY_CHARACTERS = 100


@dataclass(frozen=True, slots=True)
class XmlVerdict:
    """What the pipeline found in a document it could read and take: all but the answer."""

    kind: XmlKind
    sender: str
    reference: str
    document_type: str
    #: Rule 5 and the reference: a document with these is not read further.
    findings: tuple[Finding, ...]
    messages: tuple[MessageOutcome, ...]


def process_xml(data: bytes, ctx: Context) -> Outcome:
    verdict = judge_xml(data, ctx)
    if isinstance(verdict, Outcome):
        return verdict
    findings = list(verdict.findings)
    status = status_of(findings, verdict.messages)
    answer = _answer(verdict.kind, ctx, verdict.sender, verdict.reference,
                     verdict.document_type,
                     [*findings, *(f for m in verdict.messages for f in m.findings)])
    return Outcome(
        status=status,
        summary=summary_of(status, findings, verdict.messages),
        acknowledgement=answer,
        header=_header(verdict.kind, verdict.sender, verdict.reference, ctx),
        findings=verdict.findings,
        messages=verdict.messages,
        answer_to=PartyId(verdict.sender, "") if verdict.sender else None,
    )


def judge_xml(data: bytes, ctx: Context) -> XmlVerdict | Outcome:
    """Read, validate, map and route ``data``; an Outcome (answered) when it cannot be read
    or no kind takes it."""
    try:
        document = read_xml(_readable_by_libxml2(data), ctx.xml.limits)
    except XmlRejected as exc:
        return _unreadable(exc, ctx)
    kind = ctx.xml.kind_of(document.root, document.namespace, document.local_name)
    if kind is None:
        return _unknown_kind(document, ctx)
    sender = kind.sender(document.root)
    reference = kind.reference(document.root)
    findings = _agreement_findings(kind, sender, reference, ctx)
    sender, reference = sender[:IDENTITY_CHARACTERS], reference[:IDENTITY_CHARACTERS]
    # As for EDIFACT, a document the partner may not send is not read further (rule 5).
    messages = () if findings else (_message(document, kind, sender, reference, ctx),)
    return XmlVerdict(kind, sender, reference, kind.document_type(document.root),
                      tuple(findings), messages)


def _readable_by_libxml2(data: bytes) -> bytes:
    """UTF-32, and UTF-16 with neither BOM nor declaration, as UTF-16 with a BOM: libxml2 reads
    neither, though the sniffer knows both (XML 1.0 Appendix F).  With a BOM libxml2 goes by
    it, whatever the declaration says; lines stay where they were."""
    sniffed = inspect(data)
    if sniffed.encoding not in ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be") or \
            (sniffed.encoding.startswith("utf-16") and sniffed.bom):
        return data
    try:
        text = data[sniffed.bom:].decode(sniffed.encoding)
    except UnicodeDecodeError:
        return data  # the reader says what is wrong with it
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def _agreement_findings(kind: XmlKind, sender: str, reference: str,
                        ctx: Context) -> list[Finding]:
    """Rule 5 for XML: the submitter the document names must be one of the partner's
    ``xml_ids``; and the document must give the reference its duplicates are found by."""
    where = " or ".join(kind.entry.senders)
    if not sender:
        return [Finding(Code.UNKNOWN_INTERCHANGE_SENDER,
                        f"the document names no submitter ({where})", xpath=kind.entry.senders[0])]
    findings = []
    if ctx.partner.single_window:  # docs/n2n.md: it submits certificates issued in its country
        if kind.entry.kind != "CertificateOfOrigin":
            findings.append(Finding(
                Code.UNKNOWN_INTERCHANGE_SENDER,
                f"partner {ctx.partner.id!r} is a single window: it sends certificates of "
                f"origin only, not {kind.entry.name}", xpath=where))
    elif not ctx.partner.may_submit_xml_as(sender):
        findings.append(Finding(
            Code.UNKNOWN_INTERCHANGE_SENDER,
            f"submitter {shown(sender)} is not an XML identity of partner "
            f"{ctx.partner.id!r}", xpath=where))
    if not reference:
        findings.append(Finding(Code.MISSING, "the document gives no reference "
                                f"({kind.entry.reference}): duplicates are found by it",
                                xpath=kind.entry.reference))
    elif len(reference) > IDENTITY_CHARACTERS:
        findings.append(Finding(Code.INVALID_VALUE, f"the reference {shown(reference)} is "
                                f"longer than the {IDENTITY_CHARACTERS} characters taken",
                                xpath=kind.entry.reference))
    return findings


def _message(document: XmlDocument, kind: XmlKind, sender: str, reference: str,
             ctx: Context) -> MessageOutcome:
    entry = kind.entry
    base = MessageOutcome(position=1, reference=reference or "(none)",
                          identifier=MessageIdentifier(entry.name, "", entry.version,
                                                       XML_SYNTAX),
                          unh_position=0)
    findings = schema_findings(document, kind, ctx.xml.max_findings)
    if findings:
        return replace(base, findings=tuple(findings))
    mapping = ctx.mappings.xml_mapping(entry.name)
    if mapping is None:  # the loader refuses a kind without a mapping; a Context built by hand
        return replace(base, findings=(Finding(
            Code.VALUE_NOT_SUPPORTED_IN_POSITION, f"{entry.name} documents are validated but "
            "not mapped on this gateway"),))
    source = {"syntax": XML_SYNTAX, "message_type": entry.name, "release": entry.version,
              "sender": sender, "recipient": ctx.gateway.id,
              "interchange_reference": reference, "message_reference": reference}
    try:
        canonical = mapping.read(document.root, source)
    except MappingError as exc:
        return replace(base, findings=(Finding(
            Code(exc.syntax_error_code), str(exc), line=getattr(exc, "line", None),
            xpath=getattr(exc, "xpath", "")),))
    except ValidationError as exc:
        return replace(base, findings=(unbuildable(exc),))
    if ctx.partner.single_window and isinstance(canonical, CertificateOfOrigin):
        foreign = _foreign_issuer(canonical, ctx)
        if foreign is not None:
            return replace(base, findings=(foreign,))
        canonical = canonical.model_copy(update={"received_from": ctx.partner.id})
    return routed(base, canonical, ctx)


def _foreign_issuer(canonical: CertificateOfOrigin, ctx: Context) -> Finding | None:
    """Rule 5 for a single window: the certificates it sends are issued in its own country
    (UBL IssuingCountry), never in another's (docs/n2n.md)."""
    if canonical.issuing_country == ctx.partner.country:
        return None
    return Finding(Code.UNKNOWN_INTERCHANGE_SENDER,
                   f"the certificate is issued in {shown(canonical.issuing_country or '')}"
                   f"{'' if canonical.issuing_country else ' (no IssuingCountry)'}; partner "
                   f"{ctx.partner.id!r} is the single window of {ctx.partner.country}",
                   xpath="cac:CertificateOfOriginApplication/cac:IssuingCountry/"
                         "cbc:IdentificationCode")


def _header(kind: XmlKind, sender: str, reference: str, ctx: Context) -> InterchangeHeader:
    return InterchangeHeader(
        syntax_identifier=XML_SYNTAX, syntax_version=kind.entry.version,
        sender=PartyId(sender, ""), recipient=PartyId(ctx.gateway.id, ""),
        prepared_date="", prepared_time="", control_reference=reference)


def _answer(kind: XmlKind, ctx: Context, sender: str, reference: str, document_type: str,
            findings: list[Finding]) -> Acknowledgement:
    facts = XmlAnswerFacts(
        standard=kind.answer, response_id=ctx.ack_reference, issued=ctx.received,
        gateway_id=ctx.gateway.id, sender_id=sender, document_reference=reference,
        document_type=document_type, accepted=not findings, findings=tuple(findings))
    return Acknowledgement(kind.answer, render_xml_answer(facts, ctx.xml.max_findings))


def _unreadable(exc: XmlRejected, ctx: Context) -> Outcome:
    """Not well-formed or over a limit: answered in the document's standard when its root
    element was read before the fault, else in a plain report."""
    # str(exc) starts "line N: "; the finding carries the line itself and summaries say it once.
    text = str(exc).removeprefix(f"line {exc.line}: ") if exc.line else str(exc)
    finding = Finding(Code.UNSPECIFIED, text, line=exc.line)
    kinds = ctx.xml.candidates(*exc.root) if exc.root is not None else ()
    if not kinds:
        return refusal(str(exc), int(Code.UNSPECIFIED), ctx.file_name, ctx.received)
    answer = _answer(kinds[0], ctx, "", "", "", [finding])
    return _rejected(finding, answer)


def _unknown_kind(document: XmlDocument, ctx: Context) -> Outcome:
    name = f"{{{document.namespace}}}{document.local_name}" if document.namespace \
        else document.local_name
    reason = (f"no schema on this gateway takes root element {shown(name)}; it takes "
              f"{_taken(ctx.xml)}")
    kinds = ctx.xml.candidates(document.namespace, document.local_name)
    if not kinds:  # nothing says which standard the sender reads: a plain report
        return refusal(reason, int(Code.MESSAGE_VERSION_NOT_SUPPORTED), ctx.file_name,
                       ctx.received)
    check = kinds[0].entry.version_check
    assert check is not None  # an entry without a version check takes any version
    finding = Finding(Code.MESSAGE_VERSION_NOT_SUPPORTED,
                      f"version {shown(kinds[0].version_of(document.root) or '')} is not "
                      f"taken ({check.path} must be {check.value})", xpath=check.path)
    return _rejected(finding, _answer(kinds[0], ctx, "", "", "", [finding]))


def _taken(catalog: XmlCatalog) -> str:
    taken = ", ".join(f"{k.name} ({{{k.entry.root.namespace}}}{k.entry.root.name})"
                      for k in catalog.kinds) or "no XML documents"
    if catalog.missing:
        taken += "; not plugged in: " + "; ".join(catalog.missing)
    return taken


def _rejected(finding: Finding, answer: Acknowledgement) -> Outcome:
    status = status_of([finding], ())
    return Outcome(status=status, summary=summary_of(status, [finding], ()),
                   acknowledgement=answer, findings=(finding,))
