"""The verdict on a submission as a whole, whatever its syntax: its status, the one-line summary
stored and logged, and the refusal of what cannot be read at all."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from pydantic import ValidationError

from gateway.model.canonical import CanonicalMessage
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.model.outcome import Acknowledgement, MessageOutcome, Outcome, Status
from gateway.pipeline.context import Context
from gateway.pipeline.report import error_report
from gateway.pipeline.route import route

Code = SyntaxErrorCode


def routed(message: MessageOutcome, canonical: CanonicalMessage,
           ctx: Context) -> MessageOutcome:
    """A message mapped to ``canonical``, with where the routing table sends it."""
    decision = route(ctx.routing, canonical, ctx.partner.id, ctx.trusted_traders)
    return replace(message, canonical=canonical, agencies=decision.agencies,
                   rules=decision.rules, copies=decision.copies, held_by=decision.held_by,
                   priority=decision.priority)


def unbuildable(exc: ValidationError) -> Finding:
    """A value that breaks the canonical model's own constraints (the mapping read it)."""
    return Finding(Code.INVALID_VALUE,
                   f"cannot build the canonical message: {exc.errors()[0]['msg']}")


def status_of(findings: list[Finding], messages: tuple[MessageOutcome, ...]) -> Status:
    accepted = sum(1 for m in messages if m.accepted)
    if findings or not accepted:
        return Status.REJECTED
    return Status.ACCEPTED if accepted == len(messages) else Status.PARTIALLY_ACCEPTED


def summary_of(status: Status, findings: list[Finding],
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
