"""Run the pure stages on one submission: sniff, envelope, agreement, map, route, acknowledge.

The result (an Outcome) says everything the I/O side must store, publish and answer; nothing
here touches a socket, a file or the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import replace as _replace

from pydantic import ValidationError

from gateway.catalog.catalog import Catalog
from gateway.config.partners import Partner
from gateway.config.routing import RoutingTable
from gateway.errors import EnvelopeError, MappingError
from gateway.model.edifact import Interchange, InterchangeHeader, Message, PartyId
from gateway.model.findings import Finding, SyntaxErrorCode, shown
from gateway.model.outcome import Acknowledgement, MessageOutcome, Outcome, Status
from gateway.pipeline.contrl import AckEnvelope, build_contrl
from gateway.pipeline.mapping.compiled import LocatedMappingError
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.receipt import is_receipt, record_receipt
from gateway.pipeline.report import error_report
from gateway.pipeline.route import route
from gateway.pipeline.sniff import Syntax, sniff
from gateway.pipeline.validate import Rules, Strictness, validate
from gateway.wire.edifact.envelope import read_interchange

Code = SyntaxErrorCode


@dataclass(frozen=True, slots=True)
class Context:
    """What the pipeline needs to know besides the bytes."""

    partner: Partner
    routing: RoutingTable
    catalog: Catalog
    mappings: Mappings
    gateway: PartyId
    #: The control reference of our answer (unique per submission).
    ack_reference: str
    received: dt.datetime
    file_name: str
    #: The trader registry's authorised economic operators, for trusted_trader rules.
    trusted_traders: frozenset[str] = frozenset()


def process_submission(data: bytes, ctx: Context) -> Outcome:
    syntax = sniff(data)
    if syntax is Syntax.XML:
        return refusal("XML submissions are not accepted on this gateway yet; send "
                       "UN/EDIFACT", int(Code.SYNTAX_VERSION_NOT_SUPPORTED), ctx.file_name,
                       ctx.received)
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
    status = _status(findings, messages)
    envelope = _ack_envelope(interchange.header, ctx)
    body = build_contrl(envelope, interchange.header, findings, messages, interchange.groups)
    return Outcome(
        status=status,
        summary=_summary(status, findings, messages),
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
        return _replace(base, findings=(Finding(
            Code.INVALID_VALUE, f"cannot build the canonical message: {exc.errors()[0]['msg']}"),))
    decision = route(ctx.routing, canonical, ctx.partner.id, ctx.trusted_traders)
    return _replace(base, canonical=canonical, agencies=decision.agencies, rules=decision.rules,
                    copies=decision.copies, held_by=decision.held_by,
                    priority=decision.priority)


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


def _status(findings: list[Finding], messages: tuple[MessageOutcome, ...]) -> Status:
    accepted = sum(1 for m in messages if m.accepted)
    if findings or not accepted:
        return Status.REJECTED
    return Status.ACCEPTED if accepted == len(messages) else Status.PARTIALLY_ACCEPTED


def _summary(status: Status, findings: list[Finding],
             messages: tuple[MessageOutcome, ...]) -> str:
    if findings:
        return f"{status}: " + "; ".join(f.describe() for f in findings)
    parts = []
    for m in messages:
        if not m.accepted:
            verdict = "rejected: " + "; ".join(f.describe() for f in m.findings)
        elif m.held_by:
            verdict = f"held for ops by {', '.join(m.held_by)}"
        elif m.agencies or m.copies:
            verdict = "to " + ", ".join(m.agencies) + (
                f" (copies to {', '.join(m.copies)})" if m.copies else "")
        else:
            verdict = "unroutable (no routing rule matched; parked for ops)"
        parts.append(f"message {m.reference} {m.identifier.type} {verdict}")
    return f"{status}: " + "; ".join(parts)


def _ack_envelope(header: InterchangeHeader, ctx: Context) -> AckEnvelope:
    own = ctx.partner.may_send_as(header.sender.id, header.sender.qualifier)
    first = ctx.partner.edifact_ids[0]
    recipient = header.sender if own else PartyId(first.id, first.qualifier or "")
    return AckEnvelope(sender=ctx.gateway, recipient=recipient,
                       control_reference=ctx.ack_reference, prepared=ctx.received)


def refusal(reason: str, code: int, file_name: str, received: dt.datetime) -> Outcome:
    """The answer to a submission no CONTRL can be addressed for: a plain report."""
    body = error_report(file_name, received, reason, code)
    return Outcome(
        status=Status.REJECTED,
        summary=f"rejected: {reason} [0085={code}]",
        acknowledgement=Acknowledgement("ERROR_REPORT", body),
        findings=(Finding(Code(code) if code in Code._value2member_map_ else Code.UNSPECIFIED,
                          reason),),
    )
