"""Build the syntax acknowledgement CONTRL (ISO 9735-4 / UN/EDIFACT CONTRL, syntax 3 and 4).

UCI answers the interchange (0083: 7 acknowledged unless a message is explicitly rejected, 4
rejected); one UCM per message (7 or 4); UCS/UCD locate errors in a message's data segments.
The CONTRL is written in the syntax version and character set of the interchange it answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.model.edifact import Delimiters, GroupHeader, InterchangeHeader, PartyId
from gateway.model.findings import Finding
from gateway.model.outcome import MessageOutcome
from gateway.wire.edifact.syntax import (
    CODECS,
    MESSAGE_IDENTIFIER_LENGTHS,
    PARTY_ID_LENGTH,
    QUALIFIER_LENGTH,
    REFERENCE_LENGTH,
    REPERTOIRES,
    invalid_characters,
)
from gateway.wire.edifact.writer import OutSegment, Writer

ACKNOWLEDGED = "7"  # 0083: this level and lower levels acknowledged if not explicitly rejected
REJECTED = "4"  # 0083: this level and all lower levels rejected
#: UNH S009 of CONTRL: syntax 3 uses the D:3 directory, syntax 4 its own 4:1.
CONTRL_IDENTIFIER = {"3": ("CONTRL", "D", "3", "UN"), "4": ("CONTRL", "4", "1", "UN")}
FALLBACK_SYNTAX = "UNOC"
SERVICE_TAGS = frozenset({"UNB", "UNZ", "UNG", "UNE", "UNH", "UNT", "UNA"})
#: What stands for a character the answer cannot carry.
UNREPRESENTABLE = "."


@dataclass(frozen=True, slots=True)
class AckEnvelope:
    """Who the CONTRL goes from and to, and its own control reference."""

    sender: PartyId
    recipient: PartyId
    control_reference: str
    prepared: dt.datetime


def build_contrl(
    envelope: AckEnvelope,
    subject: InterchangeHeader,
    interchange_findings: Sequence[Finding],
    messages: Sequence[MessageOutcome],
    groups: Sequence[GroupHeader] = (),
) -> bytes:
    version = "4" if subject.syntax_version.strip() == "4" else "3"
    identifier = subject.syntax_identifier if subject.syntax_identifier in CODECS \
        else FALLBACK_SYNTAX
    body: list[OutSegment] = [("UNH", ["1", list(CONTRL_IDENTIFIER[version])])]
    body.append(_uci(subject, interchange_findings))
    if not interchange_findings:
        body += _message_responses(messages, groups)
    body.append(("UNT", [str(len(body) + 1), "1"]))
    return write_interchange(envelope, identifier, version, body)


def write_interchange(envelope: AckEnvelope, identifier: str, version: str,
                      body: list[OutSegment]) -> bytes:
    """UNB, the messages' segments (UNH..UNT each), UNZ; in the character set of
    ``identifier`` (UNOA, UNOC ...) and syntax ``version`` 3 or 4."""
    codec = CODECS[identifier]
    delimiters = Delimiters(repetition="*" if version == "4" else "")
    count = sum(1 for tag, _ in body if tag == "UNH")
    segments = [_unb(envelope, identifier, version), *body,
                ("UNZ", [str(count), envelope.control_reference])]
    text = Writer(delimiters).write(_representable(segments, codec,
                                                   REPERTOIRES.get(identifier)))
    return text.encode(codec)


def _unb(envelope: AckEnvelope, identifier: str, version: str) -> OutSegment:
    # ISO 9735: syntax 4 dates are CCYYMMDD, earlier versions YYMMDD.
    date_format = "%Y%m%d" if version == "4" else "%y%m%d"
    return ("UNB", [
        [identifier, version],
        _party(envelope.sender),
        _party(envelope.recipient),
        [envelope.prepared.strftime(date_format), envelope.prepared.strftime("%H%M")],
        envelope.control_reference,
    ])


def _uci(subject: InterchangeHeader, findings: Sequence[Finding]) -> OutSegment:
    elements: list[str | list[str]] = [
        subject.control_reference[:REFERENCE_LENGTH],
        _party(subject.sender),
        _party(subject.recipient),
        REJECTED if findings else ACKNOWLEDGED,
    ]
    if findings:
        elements += _error_elements(findings[0])
    return ("UCI", elements)


def _message_responses(messages: Sequence[MessageOutcome],
                       groups: Sequence[GroupHeader]) -> list[OutSegment]:
    """SG1 (UCM per message outside groups), then SG3: per group a UCF and its messages'
    UCMs (CONTRL SG3/SG4)."""
    segments: list[OutSegment] = []
    for message in messages:
        if not message.group_reference:
            segments += _ucm(message)
    for group in groups:
        members = [m for m in messages if m.group_reference == group.reference]
        # UNG/UNE errors reject the whole interchange (UCI), so a group listed here is
        # acknowledged; its messages say for themselves whether they are rejected.
        segments.append(("UCF", [
            group.reference[:REFERENCE_LENGTH],
            _party(group.application_sender),
            _party(group.application_recipient),
            ACKNOWLEDGED,
        ]))
        for message in members:
            segments += _ucm(message)
    return segments


def _ucm(message: MessageOutcome) -> list[OutSegment]:
    identifier = message.identifier
    echoed = (identifier.type, identifier.version, identifier.release, identifier.agency)
    elements: list[str | list[str]] = [
        message.reference[:REFERENCE_LENGTH],
        [value[:length] for value, length in zip(echoed, MESSAGE_IDENTIFIER_LENGTHS, strict=True)],
        ACKNOWLEDGED if message.accepted else REJECTED,
    ]
    service = [f for f in message.findings if f.segment_tag in SERVICE_TAGS]
    data = [f for f in message.findings if f.segment_tag not in SERVICE_TAGS]
    if service:
        elements += _error_elements(service[0])
    segments: list[OutSegment] = [("UCM", elements)]
    for finding in data:
        segments += _ucs(finding, message)
    return segments


def _error_elements(finding: Finding) -> list[str | list[str]]:
    """0085, 0013 and S011 of UCI/UCM for an error in a service segment."""
    elements: list[str | list[str]] = [str(int(finding.code))]
    # 0013 names a service segment (a3); an error in anything else is told by its code only.
    if finding.segment_tag in SERVICE_TAGS:
        elements.append(finding.segment_tag)
        if finding.element is not None:
            elements.append(_position(finding))
    return elements


def _ucs(finding: Finding, message: MessageOutcome) -> list[OutSegment]:
    """UCS 0096 counts from UNH = 1; UCD gives the element (and component) in error."""
    position = str((finding.segment_position or message.unh_position) - message.unh_position + 1)
    if finding.element is None:
        return [("UCS", [position, str(int(finding.code))])]
    return [("UCS", [position]), ("UCD", [str(int(finding.code)), _position(finding)])]


def _position(finding: Finding) -> list[str]:
    """S011: 0098 counts the segment tag as position 1 (ISO 9735-4), so the first data element
    is 2; 0104 counts components from 1."""
    element = (finding.element or 0) + 1
    return [str(element), str(finding.component) if finding.component else ""]


def _party(party: PartyId) -> list[str]:
    """S002/S003/S006/S007 as echoed: identification and its code qualifier, each cut to its
    length so the CONTRL stays valid (the envelope reader reports a longer one)."""
    return [party.id[:PARTY_ID_LENGTH], party.qualifier[:QUALIFIER_LENGTH]]


#: Our CONTRL is written with the level A service characters, so every control is invalid.
_INVALID = invalid_characters(Delimiters()).pattern


def _representable(segments: list[OutSegment], codec: str,
                   repertoire: frozenset[str] | None) -> list[OutSegment]:
    """Echoed partner values may hold characters our answer's charset cannot, that its
    repertoire leaves out (level A has no lower case), or that no repertoire holds (NUL, other
    controls: the partner is told of them with 0085 = 21): replace them, so the answer is
    always a valid interchange in its own charset and repertoire."""

    def clean(value: str) -> str:
        if _INVALID.search(value) is not None:
            value = _INVALID.sub(UNREPRESENTABLE, value)
        if repertoire is not None:
            if not repertoire.issuperset(value):
                value = "".join(ch if ch in repertoire else UNREPRESENTABLE
                                for ch in (value.upper() if "a" not in repertoire else value))
            return value
        return value if value.isascii() else "".join(
            ch if _encodable(ch, codec) else UNREPRESENTABLE for ch in value
        )

    return [
        (tag, [clean(e) if isinstance(e, str) else [clean(c) for c in e] for e in elements])
        for tag, elements in segments
    ]


def _encodable(character: str, codec: str) -> bool:
    try:
        character.encode(codec)
    except UnicodeEncodeError:
        return False
    return True
