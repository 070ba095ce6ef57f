"""Read an interchange's envelope: UNB..UNZ, UNG..UNE, UNH..UNT (ISO 9735-1 clause 7, -2).

The reader never stops at the first problem: it records every finding at the level it belongs
to (interchange, or one message) so the CONTRL can accept the good messages and reject the bad
ones.  It raises EnvelopeError only when there is no readable UNB to answer.
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
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.model.numbers import parse_count
from gateway.wire.edifact.characters import CharacterCheck, lex_checked, segment_tag, shown
from gateway.wire.edifact.decoding import decode
from gateway.wire.edifact.syntax import (
    MESSAGE_IDENTIFIER_LENGTHS,
    PARTY_ID_LENGTH,
    QUALIFIER_LENGTH,
    REFERENCE_LENGTH,
)

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
    header = _interchange_header(lexed.segments[0])
    walker = _Walker()
    walker.walk(lexed.segments)
    if lexed.unterminated:
        walker.interchange_finding(
            Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
            f"text after the last segment terminator: {shown(lexed.unterminated)}",
            position=len(lexed.segments) + 1,
        )
    messages, stray = _place_character_findings(walker.messages, checked)
    findings = [*decoded.findings, *stray, *walker.findings, *_header_findings(header)]
    return Interchange(
        delimiters=decoded.delimiters,
        header=header,
        messages=tuple(messages),
        findings=tuple(findings[:MAX_FINDINGS]),
        segment_count=len(lexed.segments),
        groups=tuple(walker.groups),
    )


def _interchange_header(unb: Segment) -> InterchangeHeader:
    sender, recipient, reference = unb.value(2), unb.value(3), unb.value(5)
    if not sender or not reference:
        missing = "sender identification (S002)" if not sender else "control reference (0020)"
        raise EnvelopeError(
            f"UNB has no {missing}: there is no one to answer",
            syntax_error_code=Code.MISSING,
            segment_position=1,
        )
    return InterchangeHeader(
        syntax_identifier=unb.value(1, 1).upper(),
        syntax_version=unb.value(1, 2),
        sender=PartyId(sender, unb.value(2, 2)),
        recipient=PartyId(recipient, unb.value(3, 2)),
        prepared_date=unb.value(4, 1),
        prepared_time=unb.value(4, 2),
        control_reference=reference,
        application_reference=unb.value(7),
        test_indicator=unb.value(11),
    )


def _header_findings(header: InterchangeHeader) -> list[Finding]:
    checks = [
        (header.recipient.id, 3, "interchange recipient (S003)"),
        (header.prepared_date, 4, "date of preparation (S004)"),
    ]
    findings = [
        Finding(Code.MISSING, f"UNB has no {what}", "UNB", 1, element)
        for value, element, what in checks
        if not value
    ]
    return findings + _too_long("UNB", 1, [
        (header.sender.id, PARTY_ID_LENGTH, 2, 1, "interchange sender (0004)"),
        (header.sender.qualifier, QUALIFIER_LENGTH, 2, 2, "sender code qualifier (0007)"),
        (header.recipient.id, PARTY_ID_LENGTH, 3, 1, "interchange recipient (0010)"),
        (header.recipient.qualifier, QUALIFIER_LENGTH, 3, 2,
         "recipient code qualifier (0007)"),
        (header.control_reference, REFERENCE_LENGTH, 5, None,
         "interchange control reference (0020)"),
    ])


#: (value, its an..n, element, component or None, what it is)
LengthCheck = tuple[str, int, int, int | None, str]


def _too_long(tag: str, position: int, values: list[LengthCheck]) -> list[Finding]:
    """A finding (39) for each value longer than its service data element may be (ISO 9735-2):
    the CONTRL that echoes it could not hold it, and no reader should be asked to."""
    return [Finding(Code.DATA_ELEMENT_TOO_LONG,
                    f"the {what} {shown(value)} is longer than an..{length}",
                    tag, position, element, component)
            for value, length, element, component, what in values if len(value) > length]


def _place_character_findings(messages: list[Message],
                              checked: CharacterCheck) -> tuple[list[Message], list[Finding]]:
    """Give each message the invalid characters found in it, and the interchange those found
    outside messages (service segments, the text after the last segment); at most
    MAX_FINDINGS a level, so the work stops early in a file full of them."""
    if checked.clean:
        return messages, []
    stray: list[Finding] = []
    updated: list[Message] = []
    after = 0  # the position of the last segment looked at
    for message in messages:
        first, last = message.segments[0].position, message.segments[-1].position
        stray += checked.findings(after + 1, first - 1, MAX_FINDINGS - len(stray))
        found = checked.findings(first, last, MAX_FINDINGS)
        updated.append(_with_findings(message, tuple(found)) if found else message)
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
    messages: int = 0


@dataclass
class _Walker:
    """A small state machine over the segments after UNB (ISO 9735-2 clause 5)."""

    messages: list[Message] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    groups: list[GroupHeader] = field(default_factory=list)
    _group: _OpenGroup | None = None
    _groups_seen: int = 0
    _loose_messages: int = 0
    _trailer_seen: bool = False

    def interchange_finding(self, code: Code, text: str, position: int, tag: str = "",
                            element: int | None = None) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(code, text, segment_tag(tag), position, element))

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
                self._service_segment(segment, unb)
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

    def _service_segment(self, segment: Segment, unb: Segment) -> None:
        handlers = {"UNG": self._group_header, "UNE": self._group_trailer}
        if segment.tag == "UNZ":
            self._interchange_trailer(segment, unb)
        elif segment.tag in handlers:
            handlers[segment.tag](segment)
        else:
            self.interchange_finding(
                Code.INVALID_OCCURRENCE_OUTSIDE_MESSAGE,
                f"segment {shown(segment.tag)} stands outside any message", segment.position,
                segment.tag)

    def _group_header(self, ung: Segment) -> None:
        if self._group is not None:
            self.interchange_finding(Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
                                     "UNG opens a group while another is open", ung.position,
                                     "UNG")
        self._group = _OpenGroup(ung)
        self._groups_seen += 1
        self.findings += _too_long("UNG", ung.position, [
            (ung.value(5), REFERENCE_LENGTH, 5, None, "group reference (0048)")])
        # UNG: 0038 group identification, S006 application sender, S007 recipient, S004
        # date/time, 0048 group reference (ISO 9735-2).
        self.groups.append(GroupHeader(ung.value(5), PartyId(ung.value(2, 1), ung.value(2, 2)),
                                       PartyId(ung.value(3, 1), ung.value(3, 2))))

    def _group_trailer(self, une: Segment) -> None:
        group = self._group
        if group is None:
            self.interchange_finding(Code.INVALID_OCCURRENCE_OUTSIDE_MESSAGE,
                                     "UNE without UNG", une.position, "UNE")
            return
        self._check_count(une, 1, group.messages, "messages in the group")
        self._check_reference(une, 2, group.header.value(5), "UNG group reference (0048)")
        self._group = None

    def _interchange_trailer(self, unz: Segment, unb: Segment) -> None:
        self._trailer_seen = True
        if self._groups_seen and self._loose_messages:
            self.interchange_finding(Code.GROUPS_AND_MESSAGES_MIXED,
                                     "groups and messages outside groups are mixed",
                                     unz.position, "UNZ")
        expected = self._groups_seen or len(self.messages)
        self._check_count(unz, 1, expected, "groups" if self._groups_seen else "messages")
        self._check_reference(unz, 2, unb.value(5), "UNB control reference (0020)")

    def _check_count(self, trailer: Segment, element: int, actual: int, what: str) -> None:
        declared = trailer.value(element)
        if parse_count(declared) != actual:
            self.interchange_finding(
                Code.CONTROL_COUNT_DOES_NOT_MATCH,
                f"{trailer.tag} says {_count(declared)} but the interchange has {actual} "
                f"{what}", trailer.position, trailer.tag, element)

    def _check_reference(self, trailer: Segment, element: int, expected: str, what: str) -> None:
        if trailer.value(element) != expected:
            self.interchange_finding(
                Code.REFERENCES_DO_NOT_MATCH,
                f"{trailer.tag} reference {shown(trailer.value(element))} does not match the "
                f"{what} {shown(expected)}", trailer.position, trailer.tag, element)

    def _message(self, segments: list[Segment], start: int) -> int:
        """Collect UNH..UNT; return the index after the message."""
        end = start + 1
        while end < len(segments) and segments[end].tag not in {"UNT", "UNH", "UNZ", "UNE",
                                                                 "UNG"}:
            end += 1
        closed = end < len(segments) and segments[end].tag == "UNT"
        body = segments[start : end + 1] if closed else segments[start:end]
        self.messages.append(_check_message(tuple(body), closed, self._group))
        if self._group is not None:
            self._group.messages += 1
        else:
            self._loose_messages += 1
        return end + 1 if closed else end


def _check_message(segments: tuple[Segment, ...], closed: bool,
                   group: _OpenGroup | None) -> Message:
    unh = segments[0]
    identifier = MessageIdentifier(
        type=unh.value(2, 1).upper(), version=unh.value(2, 2).upper(),
        release=unh.value(2, 3).upper(), agency=unh.value(2, 4).upper(),
        association=unh.value(2, 5),
    )
    findings: list[Finding] = []
    if not unh.value(1):
        findings.append(Finding(Code.MISSING, "UNH has no message reference (0062)", "UNH",
                                unh.position, 1))
    echoed = (identifier.type, identifier.version, identifier.release, identifier.agency)
    findings += _too_long("UNH", unh.position, [
        (unh.value(1), REFERENCE_LENGTH, 1, None, "message reference (0062)"),
        *((value, length, 2, component, f"message identifier (S009) component {component}")
          for component, (value, length) in enumerate(
              zip(echoed, MESSAGE_IDENTIFIER_LENGTHS, strict=True), start=1))])
    if not identifier.type or not identifier.version or not identifier.release:
        findings.append(Finding(Code.MISSING, "UNH has no complete message identifier (S009)",
                                "UNH", unh.position, 2))
    if closed:
        findings += _trailer_findings(unh, segments[-1], len(segments))
    else:
        findings.append(Finding(Code.SERVICE_SEGMENT_MISSING_OR_INVALID,
                                "UNT (message trailer) is missing", "UNT",
                                segments[-1].position + 1))
    return Message(
        reference=unh.value(1), identifier=identifier, segments=segments,
        group_reference=group.header.value(5) if group else "", findings=tuple(findings),
    )


def _trailer_findings(unh: Segment, unt: Segment, count: int) -> list[Finding]:
    findings = []
    declared = unt.value(1)
    if parse_count(declared) != count:
        findings.append(Finding(
            Code.CONTROL_COUNT_DOES_NOT_MATCH,
            f"UNT says {_count(declared)} segments but the message has {count}",
            "UNT", unt.position, 1))
    if unt.value(2) != unh.value(1):
        findings.append(Finding(
            Code.REFERENCES_DO_NOT_MATCH,
            f"UNT reference {shown(unt.value(2))} does not match UNH reference "
            f"{shown(unh.value(1))}", "UNT", unt.position, 2))
    return findings


def _count(declared: str) -> str:
    """A declared count as a finding tells it (ISO 9735-1 clause 10: ASCII digits only)."""
    if not declared:
        return "nothing"
    return declared if parse_count(declared) is not None else f"{shown(declared)} (not a count)"
