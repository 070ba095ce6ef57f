"""The licence check in the decision (issue 15 item 1; docs/licences.md): every goods item
citing a licence is judged (pipeline.licence_check) before the declaration is delivered, in
the transaction that decides it.

- Passed: what it needs is reserved on each licence, under the licence rows' locks taken in
  number order, so two declarations decided at once (two processor workers, or two gateways)
  never both take the last of a licence.  The reservation becomes drawn when the declaration
  is released, and is given back when it is rejected or cancelled (``settle_on_clearance``,
  ``restore_for_cancellation``).
- Failed: the declaration is held (status "held", held by "licence check: <reason>", for ops
  on the Attention page and in ``gateway track``), delivered to no agency, and the trader gets
  a CUSRES (or RES-DMS) with decision ``licence_failed`` and the reasons, rendered as the
  agencies' answers are."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from gateway.errors import RenderError
from gateway.model.canonical import Answered, CanonicalMessage, CustomsDeclaration, Reason
from gateway.model.canonical.responses import CustomsResponse
from gateway.model.edifact import PartyId
from gateway.model.outcome import MessageOutcome
from gateway.pipeline.licence_check import LicenceVerdict, Standing, check, cited_numbers
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.respond import (
    answer_message,
    answer_tail,
    render_answer,
    render_xml_decision,
)
from gateway.pipeline.route import CANCELLATION, REPLACEMENT
from gateway.store import licences, outbox
from gateway.store.deferred import Deferred
from gateway.store.interchanges import ReplyTo
from gateway.transports.mailbox import answer_name

Connection = Any
#: Who the trader's answer names as its issuer (CUSRES NAD+MS): the gateway's own check.
CHECKER = "licences"
HELD_BY = "licence check"


def cited(canonical: CanonicalMessage | None) -> tuple[str, ...]:
    """The licence numbers a declaration's goods items cite (none for a cancellation, which
    gives back rather than takes)."""
    if not isinstance(canonical, CustomsDeclaration) or canonical.function == CANCELLATION:
        return ()
    return cited_numbers(canonical)


async def lock_all(connection: Connection,
                   decided: Iterable[tuple[str, CanonicalMessage | None]]) -> None:
    """Lock, in number order, every licence a batch of decisions (partner, canonical message)
    cites or gives back (a cancellation: what its declaration drew), before any of them is
    judged: the batch then never waits for a licence while holding another out of order."""
    numbers: set[str] = set()
    superseded: list[tuple[str, str]] = []
    for partner_id, canonical in decided:
        numbers.update(cited(canonical))
        if isinstance(canonical, CustomsDeclaration) and canonical.function in SUPERSEDING:
            superseded.append((partner_id, canonical.declaration_number))
    numbers.update(await licences.drawn_by(connection, superseded))
    if numbers:
        await licences.lock(connection, numbers)


#: The declaration functions that take the place of what the same partner declared under
#: the same number before: what that reserved or drew is given back (a replacement only when
#: it passes the check itself).
SUPERSEDING = frozenset({CANCELLATION, REPLACEMENT})


@dataclass(frozen=True, slots=True)
class Judged:
    """The licence check's verdict, and the earlier messages of the declaration a passed
    replacement gives back (their reservations counted as available when it was judged)."""

    verdict: LicenceVerdict
    replaces: tuple[int, ...] = ()


async def judge(connection: Connection, partner_id: str, message: MessageOutcome,
                decided_on: dt.date) -> tuple[MessageOutcome, Judged | None]:
    """The message as it goes on (held when a citation fails), and the verdict (None: it
    cites no licence, or would be delivered to nobody).

    A replacement (BGM 1225 ``5``) is judged with what the declaration it replaces holds on
    the licences counted as available: the trader declares the goods once, so 60 KGM declared
    again as 60 KGM need 60, not 120.  Should the replacement fail, the original keeps its
    reservation."""
    canonical = message.canonical
    numbers = cited(canonical)
    if not numbers or not message.accepted or not (
            message.agencies or message.copies or message.held_by):
        return message, None
    assert isinstance(canonical, CustomsDeclaration)
    standing = await licences.lock(connection, numbers)
    replaces: tuple[int, ...] = ()
    if canonical.function == REPLACEMENT:
        replaces = tuple(await licences.reserved_by_original(
            connection, partner_id, canonical.declaration_number, None))
        held = await licences.outstanding(connection, replaces)
        standing = {n: Standing(s.licence, s.remaining + held.get(n, 0))
                    for n, s in standing.items()}
    verdict = check(canonical, standing, decided_on)
    if verdict.passed:
        return message, Judged(verdict, replaces)
    held_by = (*message.held_by, f"{HELD_BY}: {'; '.join(verdict.reasons)}")
    return replace(message, held_by=held_by), Judged(verdict)


@dataclass(frozen=True, slots=True)
class Trader:
    """Whom the decision answers, and how (from the submission being decided)."""

    partner_id: str
    submission: int
    interchange_ref: str | None
    reply_to: ReplyTo | None
    channel: str


async def record(connection: Connection, writes: Deferred, submission: int,
                 message: MessageOutcome, message_id: int, judged: Judged) -> None:
    """Reserve what a passed check needs (giving back what a replaced declaration held), and
    tell the history what was judged."""
    verdict = judged.verdict
    detail: dict[str, Any] = {
        "message_ref": message.reference, "on": verdict.on.isoformat(),
        "dated_by": "declaration" if verdict.dated_by_declaration else "decision"}
    if verdict.passed:
        await _give_back(connection, writes, judged.replaces, "replacement", message_id,
                         submission)
        await licences.reserve(connection, message_id, verdict.draws)
        detail["reserved"] = {n: str(q) for n, q in verdict.draws.items()}
        kind = "licence_check_passed"
    else:
        detail["reasons"] = list(verdict.reasons)
        kind = "licence_check_failed"
    writes.event(submission, kind, detail, message_id)


def trader_answer(mappings: Mappings, gateway: PartyId,
                  trader: Trader, message: MessageOutcome, message_id: int,
                  verdict: LicenceVerdict) -> outbox.NewRow:
    """The trader's answer to a failed check, queued like an agency's: a CUSRES in the
    declaration's release (RES-DMS to a DEC-DMS declaration), decision licence_failed."""
    canonical = message.canonical
    assert isinstance(canonical, CustomsDeclaration)
    source = canonical.source
    answer = CustomsResponse(
        source=source, agency=CHECKER, decision="licence_failed",
        answers=Answered(document_reference=canonical.declaration_number,
                         interchange_reference=source.interchange_reference,
                         message_reference=source.message_reference),
        decided_at=dt.datetime.now(dt.UTC),
        reasons=tuple(Reason(code="25", text=r) for r in verdict.reasons))
    control_reference = f"L{message_id}"
    if source.syntax == "XML":
        body = render_xml_decision(
            answer, message_type=message.identifier.type, gateway_id=gateway.id,
            reply_to=trader.reply_to.id if trader.reply_to else trader.partner_id,
            response_id=control_reference, prepared=answer.decided_at, mappings=mappings)
    else:
        body = _edifact(answer, mappings, gateway, trader, message, control_reference)
    kind = answer_message(answer.kind, source.syntax, message.identifier.type, mappings)
    file_name = answer_name(canonical.declaration_number, trader.submission,
                            answer_tail(message.position, CHECKER, 1, answer.kind,
                                        syntax=source.syntax,
                                        message_type=message.identifier.type,
                                        mappings=mappings))
    return outbox.NewRow(
        interchange_id=trader.submission, message_id=message_id, channel=trader.channel,
        destination=trader.partner_id, dispatch_key=f"licence-{message_id}", body=body,
        properties={"file_name": file_name, "kind": kind, "partner": trader.partner_id,
                    "interchange_ref": control_reference, "agency": CHECKER})


def _edifact(answer: CustomsResponse, mappings: Mappings, gateway: PartyId, trader: Trader,
             message: MessageOutcome, control_reference: str) -> bytes:
    reply = trader.reply_to or ReplyTo(trader.partner_id, "", "3")
    try:
        return render_answer(answer, mappings, release=message.identifier.directory,
                             gateway=gateway, reply_to=PartyId(reply.id, reply.qualifier),
                             syntax_version=reply.syntax_version,
                             control_reference=control_reference, prepared=answer.decided_at)
    except RenderError:  # a reason the character set cannot carry: say it plainly
        plain = answer.model_copy(update={"reasons": (Reason(
            code="25", text="A licence cited does not pass the licence check"),)})
        return render_answer(plain, mappings, release=message.identifier.directory,
                             gateway=gateway, reply_to=PartyId(reply.id, reply.qualifier),
                             syntax_version=reply.syntax_version,
                             control_reference=control_reference, prepared=answer.decided_at)


async def restore_for_cancellation(connection: Connection, writes: Deferred, partner_id: str,
                                   message: MessageOutcome, message_id: int,
                                   submission: int) -> None:
    """A cancellation of a declaration (same number, same partner) gives back what the
    declaration reserved or drew; so does a replacement citing no licence (one that cites
    some gives it back when it passes the check: ``record``)."""
    canonical = message.canonical
    if not isinstance(canonical, CustomsDeclaration) or not message.accepted or not (
            canonical.function == CANCELLATION
            or (canonical.function == REPLACEMENT and not cited(canonical))):
        return
    originals = await licences.reserved_by_original(connection, partner_id,
                                                    canonical.declaration_number, message_id)
    await _give_back(connection, writes, originals, canonical.function, message_id,
                     submission)


async def _give_back(connection: Connection, writes: Deferred, originals: Iterable[int],
                     because: str, message_id: int, submission: int) -> None:
    settled = await licences.settle(connection, originals, "restored")
    if settled:
        writes.event(submission, "licence_restored", {
            "superseded_messages": sorted(set(originals)), "because": because,
            "restored": {s.licence_number: str(s.quantity) for s in settled}}, message_id)


#: The declaration's overall state -> what becomes of its reservations.
SETTLE_ON: dict[str, str] = {"released": "drawn", "rejected": "restored",
                             "cancelled": "restored"}


async def settle_on_clearance(connection: Connection, message_id: int,
                              clearance: str) -> list[licences.Settled]:
    """The declaration reached ``clearance``: released draws what it reserved; rejected or
    cancelled gives it back."""
    to = SETTLE_ON.get(clearance)
    if to is None:
        return []
    return await licences.settle(connection, [message_id], to)
