"""What the pure pipeline decided about one submission: verdicts, canonical messages, routes,
and the acknowledgement to send back."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.model.canonical import CanonicalMessage
from gateway.model.edifact import InterchangeHeader, MessageIdentifier, PartyId
from gateway.model.findings import Finding


class Status(StrEnum):
    ACCEPTED = "accepted"
    PARTIALLY_ACCEPTED = "partially_accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    position: int
    reference: str
    identifier: MessageIdentifier
    #: Interchange position of the message's UNH: UCS counts from it (ISO 9735-4 0096).
    unh_position: int
    #: The UNG group reference (0048) when the message travelled in a group.
    group_reference: str = ""
    findings: tuple[Finding, ...] = ()
    #: Told, not rejected: e.g. code-list values for a partner whose strictness is "warning".
    warnings: tuple[Finding, ...] = ()
    canonical: CanonicalMessage | None = None
    agencies: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    #: Observers that get a copy; and the rules that hold the message for ops.
    copies: tuple[str, ...] = ()
    held_by: tuple[str, ...] = ()
    priority: int | None = None

    @property
    def accepted(self) -> bool:
        return not self.findings


#: The end of an answer's outbox file name: ``<uploaded name>.<submission id>.<suffix>``.
#: Agencies' answers end ``<position>.<agency>.<n>.<suffix>`` (pipeline.respond.answer_tail).
ACK_SUFFIXES: dict[str, str] = {"CONTRL": "contrl.edi", "ERROR_REPORT": "error.txt",
                                "CUSRES": "cusres.edi", "APERAK": "aperak.edi",
                                "RES-DMS": "res-dms.xml",
                                "UBL-ApplicationResponse": "application-response.xml"}


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """The answer to a submission: a CONTRL, or a plain report when no UNB could be read."""

    kind: str
    body: bytes

    @property
    def suffix(self) -> str:
        return ACK_SUFFIXES[self.kind]


@dataclass(frozen=True, slots=True)
class Receipt:
    """A partner's CONTRL about an interchange we sent: recorded, never answered."""

    acknowledged_reference: str
    #: UCI 0083: 4 rejected, 7 acknowledged (unless a message is rejected), 8 received.
    action: str
    rejected_messages: tuple[str, ...] = ()
    #: The submission our answer was for, when the reference is one of ours (our CONTRLs use
    #: the submission id as their control reference); None for anything else, "²" included.
    acknowledged_submission: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    summary: str
    #: None when the submission must not be answered: a CONTRL is never answered by a CONTRL
    #: (ISO 9735-4), which also keeps two gateways from acknowledging each other for ever.
    acknowledgement: Acknowledgement | None
    header: InterchangeHeader | None = None
    findings: tuple[Finding, ...] = ()
    messages: tuple[MessageOutcome, ...] = ()
    receipts: tuple[Receipt, ...] = ()
    #: Whom the CONTRL went to: the agencies' answers to this interchange go there too.
    answer_to: PartyId | None = None

    @property
    def deliverable(self) -> tuple[MessageOutcome, ...]:
        return tuple(m for m in self.messages if m.accepted and m.agencies)
