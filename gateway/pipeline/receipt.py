"""A CONTRL sent to us by a partner: it acknowledges an interchange we sent.  It is checked
against the CONTRL structure and recorded, and never answered (ISO 9735-4: no CONTRL is sent in
response to a CONTRL)."""

from __future__ import annotations

from dataclasses import replace

from gateway.catalog.catalog import Catalog
from gateway.model.edifact import Interchange, Message
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.model.numbers import parse_count
from gateway.model.outcome import MessageOutcome, Outcome, Receipt, Status
from gateway.pipeline.validate import Rules, validate

CONTRL = "CONTRL"
ACTIONS = {"4": "rejected", "7": "acknowledged", "8": "received"}


def is_receipt(interchange: Interchange) -> bool:
    """An interchange of CONTRL messages (ISO 9735-4 keeps them apart from other messages)."""
    return bool(interchange.messages) and all(
        m.identifier.type == CONTRL for m in interchange.messages)


def record_receipt(interchange: Interchange, findings: list[Finding],
                   catalog: Catalog) -> Outcome:
    rules = Rules(interchange.header.syntax_identifier, delimiters=interchange.delimiters)
    messages = tuple(_checked(m, position, catalog, rules)
                     for position, m in enumerate(interchange.messages, start=1))
    problems = [*findings, *(f for m in messages for f in m.findings)]
    receipts = tuple(receipt for m, out in zip(interchange.messages, messages, strict=True)
                     if out.accepted and (receipt := _receipt(m)) is not None)
    if problems or not receipts:
        summary = "rejected CONTRL (not answered: a CONTRL is never answered): " + "; ".join(
            f.describe() for f in problems)
        status = Status.REJECTED
    else:
        summary = "CONTRL received (not answered): " + "; ".join(
            f"interchange {r.acknowledged_reference} {ACTIONS.get(r.action, r.action)}"
            + (f", messages {', '.join(r.rejected_messages)} rejected"
               if r.rejected_messages else "")
            for r in receipts)
        status = Status.ACCEPTED
    return Outcome(status=status, summary=summary, acknowledgement=None,
                   header=interchange.header, findings=tuple(findings), messages=messages,
                   receipts=receipts)


def _checked(message: Message, position: int, catalog: Catalog,
             rules: Rules) -> MessageOutcome:
    base = MessageOutcome(position=position, reference=message.reference,
                          identifier=message.identifier,
                          unh_position=message.segments[0].position)
    if message.findings:
        return replace(base, findings=message.findings)
    compiled = catalog.message(CONTRL, message.identifier.directory)
    if compiled is None:
        finding = Finding(SyntaxErrorCode.MESSAGE_VERSION_NOT_SUPPORTED,
                          f"CONTRL {message.identifier.directory} is not a known CONTRL "
                          "version (D:3 or 4:1)", "UNH", message.segments[0].position, 2, 2)
        return replace(base, findings=(finding,))
    report = validate(message.segments, compiled, rules)
    return replace(base, findings=report.final())


def _receipt(message: Message) -> Receipt | None:
    """What an accepted CONTRL says; None without a UCI (the structure check requires one, but
    a missing one must not raise: StopIteration in a generator becomes a RuntimeError)."""
    uci = next((s for s in message.segments if s.tag == "UCI"), None)
    if uci is None:
        return None
    rejected = tuple(s.value(1) for s in message.segments
                     if s.tag == "UCM" and s.value(3) == "4")
    reference = uci.value(1)
    return Receipt(acknowledged_reference=reference, action=uci.value(4),
                   rejected_messages=rejected,
                   acknowledged_submission=parse_count(reference))
