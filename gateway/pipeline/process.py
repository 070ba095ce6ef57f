"""Run the pure stages on one submission: sniff, envelope, agreement, map, route, acknowledge.

The result (an Outcome) says everything the I/O side must store, publish and answer; nothing
here touches a socket, a file or the database.
"""

from __future__ import annotations

from dataclasses import replace as _replace

from pydantic import ValidationError

from gateway.errors import EnvelopeError, MappingError
from gateway.model.edifact import Interchange, InterchangeHeader, Message, PartyId
from gateway.model.findings import Finding, SyntaxErrorCode, shown
from gateway.model.outcome import Acknowledgement, MessageOutcome, Outcome
from gateway.pipeline.context import Context
from gateway.pipeline.contrl import AckEnvelope, build_contrl
from gateway.pipeline.mapping.compiled import LocatedMappingError
from gateway.pipeline.receipt import is_receipt, record_receipt
from gateway.pipeline.sniff import Syntax, sniff
from gateway.pipeline.validate import Rules, Strictness, validate
from gateway.pipeline.verdict import refusal, routed, status_of, summary_of, unbuildable
from gateway.pipeline.xml_process import process_xml
from gateway.wire.edifact.envelope import read_interchange

__all__ = ["Context", "agreement_findings", "process_submission", "refusal"]

Code = SyntaxErrorCode


def process_submission(data: bytes, ctx: Context) -> Outcome:
    if sniff(data) is Syntax.XML:
        return process_xml(data, ctx)
    try:
        interchange = read_interchange(data)
    except EnvelopeError as exc:
        return refusal(str(exc), exc.syntax_error_code, ctx.file_name, ctx.received)
    findings = [*interchange.findings, *agreement_findings(interchange.header, ctx)]
    if is_receipt(interchange):
        return record_receipt(interchange, findings, ctx.catalog)
    rules = Rules(interchange.header.syntax_identifier, Strictness(ctx.partner.code_lists),
                  interchange.delimiters)
    messages = () if findings else tuple(
        _message(interchange, message, position, ctx, rules)
        for position, message in enumerate(interchange.messages, start=1)
    )
    status = status_of(findings, messages)
    envelope = _ack_envelope(interchange.header, ctx)
    body = build_contrl(envelope, interchange.header, findings, messages, interchange.groups)
    return Outcome(
        status=status,
        summary=summary_of(status, findings, messages),
        acknowledgement=Acknowledgement("CONTRL", body),
        header=interchange.header,
        findings=tuple(findings),
        messages=messages,
        answer_to=envelope.recipient,
    )


def agreement_findings(header: InterchangeHeader, ctx: Context) -> list[Finding]:
    """Rule 5: a partner only acts as itself, and the interchange must be addressed to us."""
    findings = []
    if not ctx.partner.may_send_as(header.sender.id, header.sender.qualifier):
        findings.append(Finding(
            Code.UNKNOWN_INTERCHANGE_SENDER,
            f"sender {shown(header.sender.id)} is not an identity of partner {ctx.partner.id!r}",
            "UNB", 1, 2))
    if header.recipient.id and header.recipient.id != ctx.gateway.id:
        findings.append(Finding(
            Code.RECIPIENT_NOT_ACTUAL_RECIPIENT,
            f"recipient {shown(header.recipient.id)} is not this gateway ({ctx.gateway.id})",
            "UNB", 1, 3))
    return findings


def _message(interchange: Interchange, message: Message, position: int,
             ctx: Context, rules: Rules) -> MessageOutcome:
    base = MessageOutcome(position=position, reference=message.reference,
                          identifier=message.identifier,
                          unh_position=message.segments[0].position,
                          group_reference=message.group_reference)
    if message.findings:
        return _replace(base, findings=message.findings)
    identifier = message.identifier
    compiled = ctx.catalog.message(identifier.type, identifier.directory)
    if compiled is None:
        return _replace(base, findings=(_unsupported(message, ctx),))
    report = validate(message.segments, compiled, rules)
    base = _replace(base, warnings=tuple(report.warnings))
    if report.errors:
        return _replace(base, findings=report.final())
    mapping = ctx.mappings.get(identifier.type, identifier.directory)
    if mapping is None:
        return _replace(base, findings=(_unsupported(message, ctx),))
    try:
        canonical = mapping.read(interchange, message, report.arranged)
    except MappingError as exc:
        return _replace(base, findings=(_mapping_finding(exc, message),))
    except ValidationError as exc:
        return _replace(base, findings=(unbuildable(exc),))
    return routed(base, canonical, ctx)


def _unsupported(message: Message, ctx: Context) -> Finding:
    identifier = message.identifier
    releases = ctx.mappings.releases_of(identifier.type)
    unh = message.segments[0]
    if identifier.directory in ctx.catalog.releases_of(identifier.type) and not releases:
        return Finding(Code.VALUE_NOT_SUPPORTED_IN_POSITION,
                       f"{identifier.type} is well formed but this gateway does not take "
                       "it from partners yet", "UNH", unh.position, 2, 1)
    if releases:
        return Finding(Code.MESSAGE_VERSION_NOT_SUPPORTED,
                       f"{identifier.type} {shown(identifier.directory)} is not supported "
                       f"(supported: {', '.join(releases)})", "UNH", unh.position, 2, 2)
    return Finding(Code.VALUE_NOT_SUPPORTED_IN_POSITION,
                   f"message type {shown(identifier.type)} is not supported by this gateway",
                   "UNH", unh.position, 2, 1)


def _mapping_finding(exc: MappingError, message: Message) -> Finding:
    if isinstance(exc, LocatedMappingError) and exc.segment is not None:
        segment = exc.segment
        return Finding(Code(exc.syntax_error_code), str(exc), segment.tag, segment.position,
                       exc.element, exc.component)
    return Finding(Code(exc.syntax_error_code), str(exc), "", message.segments[0].position)


def _partner_party(ctx: Context) -> PartyId:
    """Whom to address an answer to when the UNB sender is not the partner's: its first UNB
    identity, never the one it claimed; an XML-only partner by its id, mutually defined."""
    if not ctx.partner.edifact_ids:
        return PartyId(ctx.partner.id.upper()[:35], "ZZZ")
    first = ctx.partner.edifact_ids[0]
    return PartyId(first.id, first.qualifier or "")


def _ack_envelope(header: InterchangeHeader, ctx: Context) -> AckEnvelope:
    own = ctx.partner.may_send_as(header.sender.id, header.sender.qualifier)
    recipient = header.sender if own else _partner_party(ctx)
    return AckEnvelope(sender=ctx.gateway, recipient=recipient,
                       control_reference=ctx.ack_reference, prepared=ctx.received)
