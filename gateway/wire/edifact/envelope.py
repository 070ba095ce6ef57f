"""Read an interchange's envelope: UNB..UNZ, UNG..UNE, UNH..UNT (ISO 9735-1 clause 7, -2).

The reader never stops at the first problem: it records every finding at the level it belongs
to (interchange, or one message) so the CONTRL can accept the good messages and reject the bad
ones.  It raises EnvelopeError only when there is no readable UNB to answer.

Each service segment is checked against its definition in the interchange's syntax version
(``service.py``: mandatory elements, lengths, kinds of characters, code lists): a fault in UNB,
UNG, UNE or UNZ rejects the interchange, one in UNH or UNT its message, except in what names the
message (``names_the_message``).  References are unique where ISO 9735 says: a group's in its
interchange, a message's in its group (or interchange).  So whatever the CONTRL echoes of an
accepted interchange is valid where it stands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import EnvelopeError
from gateway.model.edifact import (
    GroupHeader,
    Interchange,
    InterchangeHeader,
    Message,
    MessageIdentifier,
    PartyId,
    Segment,
)
from gateway.model.findings import Finding, SyntaxErrorCode, shown
from gateway.model.numbers import parse_count
from gateway.wire.edifact.characters import CharacterCheck, lex_checked, segment_tag
from gateway.wire.edifact.decoding import decode
from gateway.wire.edifact.service import ServiceChecker, Values

Code = SyntaxErrorCode
#: Findings told per level (the interchange, each message): the first rejects it already, and
#: a hostile file could otherwise make the answer grow far beyond its own size.
MAX_FINDINGS = 100


def read_interchange(data: bytes) -> Interchange:
    """Parse and check the envelope of one interchange."""
    decoded = decode(data)
    checked = lex_checked(decoded)
    lexed = checked.lexed
    if not lexed.segments or lexed.segments[0].tag != "UNB":
        raise EnvelopeError(
            "the interchange does not start with UNB",
            syntax_error_code=Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
            segment_position=1,
        )
    unb = lexed.segments[0]
    service = ServiceChecker(unb.value(1, 2), decoded.syntax_identifier, decoded.delimiters)
    header_checked = service.check(unb)
    header = _interchange_header(header_checked.values)
    walker = _Walker(service, header)
    walker.add(header_checked.findings)
    walker.walk(lexed.segments)
    if lexed.unterminated:
        walker.interchange_finding(
            Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
            f"text after the last segment terminator: {shown(lexed.unterminated)}",
            position=len(lexed.segments) + 1,
        )
    messages, stray = _place_character_findings(walker.messages, checked)
    findings = [*decoded.findings, *stray, *walker.findings]
    return Interchange(
        delimiters=decoded.delimiters,
        header=header,
        messages=tuple(messages),
        findings=tuple(findings[:MAX_FINDINGS]),
        segment_count=len(lexed.segments),
        groups=tuple(walker.groups),
    )


def _interchange_header(unb: Values) -> InterchangeHeader:
    sender, reference = unb.get(2), unb.get(5)
    if not sender or not reference:
        missing = "sender identification (S002)" if not sender else "control reference (0020)"
        raise EnvelopeError(
            f"UNB has no {missing}: there is no one to answer",
            syntax_error_code=Code.MISSING,
            segment_position=1,
        )
    return InterchangeHeader(
        syntax_identifier=unb.get(1, 1).upper(),
        syntax_version=unb.get(1, 2),
        sender=PartyId(sender, unb.get(2, 2)),
        recipient=PartyId(unb.get(3), unb.get(3, 2)),
        prepared_date=unb.get(4, 1),
        prepared_time=unb.get(4, 2),
        control_reference=reference,
        application_reference=unb.get(7),
        test_indicator=unb.get(11),
    )


#: The components of UNH S009 a UCM echoes: message type, version, release, agency.
ECHOED_IDENTIFIER = 4


def names_the_message(finding: Finding) -> bool:
    """Whether a finding in UNH is in what the CONTRL names the message by (UCM 0062 and
    S009 0065/0052/0054/0051, mandatory in syntax 3).  Such a message cannot be answered on its
    own: a UCM could neither leave the value out nor echo it as it is, so the finding rejects
    the interchange (UCI 0013 = UNH says where).  ISO 9735-4: the message reference number
    and identifier identify the message acknowledged."""
    return finding.element == 1 or (
        finding.element == 2 and (finding.component or 1) <= ECHOED_IDENTIFIER)


def _place_character_findings(messages: list[Message],
                              checked: CharacterCheck) -> tuple[list[Message], list[Finding]]:
    """Give each message the invalid characters found in it, and the interchange those found
    outside messages (service segments, the text after the last segment) and those in what
    names a message (``names_the_message``); at most MAX_FINDINGS a level, so the work stops
    early in a file full of them."""
    if checked.clean:
        return messages, []
    stray: list[Finding] = []
    updated: list[Message] = []
    after = 0  # the position of the last segment looked at
    for message in messages:
        first, last = message.segments[0].position, message.segments[-1].position
        stray += checked.findings(after + 1, first - 1, MAX_FINDINGS - len(stray))
        # One pass sorts them (a look-up of each in the list of the others was 100 x 100
        # comparisons a message: 0.2 MB/s on messages whose UNH holds 100 NULs).
        naming: list[Finding] = []
        own: list[Finding] = []
        for finding in checked.findings(first, last, MAX_FINDINGS):
            names = finding.segment_position == first and names_the_message(finding)
            (naming if names else own).append(finding)
        stray += naming[: MAX_FINDINGS - len(stray)]
        updated.append(_with_findings(message, tuple(own)) if own else message)
        after = last
    stray += checked.findings(after + 1, len(checked.lexed.segments) + 1,
                              MAX_FINDINGS - len(stray))
    return updated, stray


def _with_findings(message: Message, extra: tuple[Finding, ...]) -> Message:
    return Message(
        reference=message.reference,
        identifier=message.identifier,
        segments=message.segments,
        group_reference=message.group_reference,
        findings=(message.findings + extra)[:MAX_FINDINGS],
    )


@dataclass
class _OpenGroup:
    header: Segment
    reference: str
    messages: int = 0
    #: The message references seen in the group (ISO 9735: unique within it).
    references: set[str] = field(default_factory=set)


@dataclass
class _Walker:
    """A small state machine over the segments after UNB (ISO 9735-2 clause 5)."""

    service: ServiceChecker
    header: InterchangeHeader
    messages: list[Message] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    groups: list[GroupHeader] = field(default_factory=list)
    _group: _OpenGroup | None = None
    _loose_messages: int = 0
    _trailer_seen: bool = False
    #: References already used: groups' in the interchange, loose messages' in it.
    _group_references: set[str] = field(default_factory=set)
    _loose_references: set[str] = field(default_factory=set)

    def add(self, findings: list[Finding]) -> None:
        if findings and len(self.findings) < MAX_FINDINGS:
            self.findings += findings[: MAX_FINDINGS - len(self.findings)]

    def interchange_finding(self, code: Code, text: str, position: int, tag: str = "",
                            element: int | None = None) -> None:
        self.add([Finding(code, text, segment_tag(tag), position, element)])

    def walk(self, segments: list[Segment]) -> None:
        unb = segments[0]
        index = 1
        while index < len(segments):
            segment = segments[index]
            if self._trailer_seen:
                self.interchange_finding(
                    Code.INVALID_OCCURRENCE_OUTSIDE_MESSAGE,
                    f"{shown(segment.tag)} after UNZ", segment.position, segment.tag)
                index += 1
            elif segment.tag == "UNH":
                index = self._message(segments, index)
            else:
                self._service_segment(segment)
                index += 1
        if not self._trailer_seen:
            self.interchange_finding(Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
                                     "UNZ (interchange trailer) is missing",
                                     len(segments) + 1, "UNZ")
        if self._group is not None:
            self.interchange_finding(Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
                                     "UNE (group trailer) is missing", len(segments) + 1, "UNE")
        if not self.messages:
            self.interchange_finding(Code.LOWER_LEVEL_EMPTY, "the interchange holds no message",
                                     unb.position, "UNB")

    def _service_segment(self, segment: Segment) -> None:
        handlers = {"UNG": self._group_header, "UNE": self._group_trailer,
                    "UNZ": self._interchange_trailer}
        handler = handlers.get(segment.tag)
        if handler is None:
            self.interchange_finding(
                Code.INVALID_OCCURRENCE_OUTSIDE_MESSAGE,
                f"segment {shown(segment.tag)} stands outside any message", segment.position,
                segment.tag)
            return
        checked = self.service.check(segment)
        self.add(checked.findings)
        handler(segment, checked.values)

    def _group_header(self, ung: Segment, values: Values) -> None:
        if self._group is not None:
            self.interchange_finding(Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
                                     "UNG opens a group while another is open", ung.position,
                                     "UNG")
        # UNG: 0038 group identification, S006 application sender, S007 recipient, S004
        # date/time, 0048 group reference (ISO 9735-2).
        reference = values.get(5)
        if reference in self._group_references:
            # ISO 9735-2: 0048 is unique within its interchange; CONTRL answers a group by it.
            self.add([Finding(Code.DUPLICATE_DETECTED, f"UNG group reference {shown(reference)}"
                              " is that of an earlier group", "UNG", ung.position, 5)])
        elif reference:
            self._group_references.add(reference)
        self._group = _OpenGroup(ung, reference)
        self.groups.append(GroupHeader(reference, PartyId(values.get(2, 1), values.get(2, 2)),
                                       PartyId(values.get(3, 1), values.get(3, 2))))

    def _group_trailer(self, une: Segment, values: Values) -> None:
        group = self._group
        if group is None:
            self.interchange_finding(Code.INVALID_OCCURRENCE_OUTSIDE_MESSAGE,
                                     "UNE without UNG", une.position, "UNE")
            return
        self._check_count(une, values.get(1), group.messages, "messages in the group")
        self._check_reference(une, values.get(2), group.reference,
                              "UNG group reference (0048)")
        self._group = None

    def _interchange_trailer(self, unz: Segment, values: Values) -> None:
        self._trailer_seen = True
        if self.groups and self._loose_messages:
            self.interchange_finding(Code.GROUPS_AND_MESSAGES_MIXED,
                                     "groups and messages outside groups are mixed",
                                     unz.position, "UNZ")
        expected = len(self.groups) or len(self.messages)
        self._check_count(unz, values.get(1), expected, "groups" if self.groups else "messages")
        self._check_reference(unz, values.get(2), self.header.control_reference,
                              "UNB control reference (0020)")

    def _check_count(self, trailer: Segment, declared: str, actual: int, what: str) -> None:
        if parse_count(declared) != actual:
            self.interchange_finding(
                Code.CONTROL_COUNT_DOES_NOT_MATCH,
                f"{trailer.tag} says {_count(declared)} but the interchange has {actual} "
                f"{what}", trailer.position, trailer.tag, 1)

    def _check_reference(self, trailer: Segment, declared: str, expected: str,
                         what: str) -> None:
        if declared != expected:
            self.interchange_finding(
                Code.REFERENCES_DO_NOT_MATCH,
                f"{trailer.tag} reference {shown(declared)} does not match the "
                f"{what} {shown(expected)}", trailer.position, trailer.tag, 2)

    def _message(self, segments: list[Segment], start: int) -> int:
        """Collect UNH..UNT; return the index after the message."""
        end = start + 1
        while end < len(segments) and segments[end].tag not in {"UNT", "UNH", "UNZ", "UNE",
                                                                 "UNG"}:
            end += 1
        closed = end < len(segments) and segments[end].tag == "UNT"
        body = segments[start : end + 1] if closed else segments[start:end]
        message, naming = _check_message(tuple(body), closed, self._group, self.service)
        self.add(naming)
        if not naming:
            message = self._unique(message)
        self.messages.append(message)
        if self._group is not None:
            self._group.messages += 1
        else:
            self._loose_messages += 1
        return end + 1 if closed else end

    def _unique(self, message: Message) -> Message:
        """ISO 9735-2: the message reference number is unique within its group, or within the
        interchange when there are no groups.  A second message under a reference already
        used is refused (0085 26, duplicate detected): it could be the first sent again, and
        no agency could tell the two apart; the first stands."""
        seen = self._group.references if self._group is not None else self._loose_references
        if message.reference not in seen:
            seen.add(message.reference)
            return message
        where = "group" if self._group is not None else "interchange"
        duplicate = Finding(Code.DUPLICATE_DETECTED,
                            f"UNH message reference {shown(message.reference)} is that of an "
                            f"earlier message in the {where}", "UNH",
                            message.segments[0].position, 1)
        return _with_findings(message, (duplicate,))


def _check_message(segments: tuple[Segment, ...], closed: bool, group: _OpenGroup | None,
                   service: ServiceChecker) -> tuple[Message, list[Finding]]:
    """The message with its own findings, and those that reject the interchange
    (``names_the_message``)."""
    unh = service.check(segments[0])
    header = unh.values
    identifier = MessageIdentifier(
        type=header.get(2, 1).upper(), version=header.get(2, 2).upper(),
        release=header.get(2, 3).upper(), agency=header.get(2, 4).upper(),
        association=header.get(2, 5),
    )
    naming = [f for f in unh.findings if names_the_message(f)]
    findings = [f for f in unh.findings if not names_the_message(f)]
    reference = header.get(1)
    if closed:
        unt = service.check(segments[-1])
        findings += unt.findings
        findings += _trailer_findings(reference, segments[-1], unt.values, len(segments))
    else:
        findings.append(Finding(Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
                                "UNT (message trailer) is missing", "UNT",
                                segments[-1].position + 1))
    message = Message(reference=reference, identifier=identifier, segments=segments,
                      group_reference=group.reference if group else "",
                      findings=tuple(findings[:MAX_FINDINGS]))
    return message, naming


def _trailer_findings(reference: str, unt: Segment, values: Values,
                      count: int) -> list[Finding]:
    findings = []
    declared = values.get(1)
    if parse_count(declared) != count:
        findings.append(Finding(
            Code.CONTROL_COUNT_DOES_NOT_MATCH,
            f"UNT says {_count(declared)} segments but the message has {count}",
            "UNT", unt.position, 1))
    if values.get(2) != reference:
        findings.append(Finding(
            Code.REFERENCES_DO_NOT_MATCH,
            f"UNT reference {shown(values.get(2))} does not match UNH reference "
            f"{shown(reference)}", "UNT", unt.position, 2))
    return findings


def _count(declared: str) -> str:
    """A declared count as a finding tells it (ISO 9735-1 clause 10: ASCII digits only)."""
    if not declared:
        return "nothing"
    return declared if parse_count(declared) is not None else f"{shown(declared)} (not a count)"
