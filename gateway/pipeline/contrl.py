"""Build the syntax acknowledgement CONTRL (ISO 9735-4 / UN/EDIFACT CONTRL, syntax 3 and 4).

UCI answers the interchange (0083: 7 acknowledged unless a message is explicitly rejected, 4
rejected); one UCM per message (7 or 4); UCS/UCD locate errors in a message's data segments.
The CONTRL is written in the syntax version and character set of the interchange it answers.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.model.edifact import Delimiters, GroupHeader, InterchangeHeader, PartyId
from gateway.model.findings import Finding
from gateway.model.outcome import MessageOutcome
from gateway.wire.edifact.service import (
    SEGMENTS,
    ServiceValue,
    service_version,
    value_problem,
)
from gateway.wire.edifact.syntax import CODECS, REPERTOIRES, invalid_characters
from gateway.wire.edifact.writer import OutSegment, Writer

ACKNOWLEDGED = "7"  # 0083: this level and lower levels acknowledged if not explicitly rejected
REJECTED = "4"  # 0083: this level and all lower levels rejected
#: UNH S009 of CONTRL: syntax 3 uses the D:3 directory, syntax 4 its own 4:1.
CONTRL_IDENTIFIER = {"3": ("CONTRL", "D", "3", "UN"), "4": ("CONTRL", "4", "1", "UN")}
FALLBACK_SYNTAX = "UNOC"
#: The segments one CONTRL message may hold: its UNT 0074 is n..6 in syntax 3, n..10 in 4.
MAX_MESSAGE_SEGMENTS = {"3": 999_999, "4": 9_999_999_999}
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
    version = service_version(subject.syntax_version)
    identifier = subject.syntax_identifier if subject.syntax_identifier in CODECS \
        else FALLBACK_SYNTAX
    echo = _Echo(version, identifier)
    body: list[OutSegment] = [("UNH", ["1", list(CONTRL_IDENTIFIER[version])])]
    body.append(_uci(subject, interchange_findings, envelope, echo))
    if not interchange_findings:
        responses = _message_responses(messages, groups, echo)
        if len(body) + len(responses) + 1 > MAX_MESSAGE_SEGMENTS[version]:
            # Too long for its own UNT: the rejected messages are told by their first error's
            # code, the accepted ones go unlisted (UCI/UCF 0083 = 7: acknowledged unless
            # explicitly rejected, ISO 9735-4).
            responses = _message_responses(messages, groups, echo, brief=True)
        body += responses
    body.append(("UNT", [str(len(body) + 1), "1"]))
    return write_interchange(envelope, identifier, version, body)


def write_interchange(envelope: AckEnvelope, identifier: str, version: str,
                      body: list[OutSegment]) -> bytes:
    """UNB, the messages' segments (UNH..UNT each), UNZ; in the character set of
    ``identifier`` (UNOA, UNOC ...) and syntax ``version`` 3 or 4."""
    segment = writer_for(identifier, version).segment
    return write_written(envelope, identifier, version,
                         [segment(tag, elements) for tag, elements in body],
                         sum(1 for tag, _ in body if tag == "UNH"))


def write_written(envelope: AckEnvelope, identifier: str, version: str, body: list[str],
                  messages: int) -> bytes:
    """``write_interchange`` of ``messages`` messages whose segments are written already, by
    ``writer_for(identifier, version)``."""
    writer = writer_for(identifier, version)
    return writer.lines([_unb(writer, envelope, identifier, version), *body,
                         writer.segment("UNZ", [str(messages), envelope.control_reference])]
                        ).encode(CODECS[identifier])


@functools.lru_cache(maxsize=64)  # keyed by (identifier, version): a few dozen at most
def writer_for(identifier: str, version: str) -> Writer:
    """The writer of an answer in ``identifier``'s character set and repertoire, and in
    syntax ``version`` (4 has a repetition separator to release): what it cannot carry is
    replaced (``_representable``, whose every rule is one of a character at a time)."""
    codec, repertoire = CODECS[identifier], REPERTOIRES.get(identifier)
    return Writer(Delimiters(repetition="*" if version == "4" else ""),
                  replace=functools.partial(_representable, codec=codec,
                                            repertoire=repertoire),
                  kept=_kept(codec, repertoire))


def _unb(writer: Writer, envelope: AckEnvelope, identifier: str, version: str) -> str:
    return writer.assemble("UNB", [
        *_unb_head(envelope.sender, envelope.recipient, version, identifier),
        writer.element(_prepared(envelope.prepared, version)),
        writer.element(envelope.control_reference),
    ])


def _prepared(when: dt.datetime, version: str) -> list[str]:
    """S004: syntax 4 dates are CCYYMMDD, earlier versions YYMMDD (ISO 9735); then HHMM."""
    if not 1000 <= when.year <= 9999:  # as strftime writes a year of other than 4 digits
        return [when.strftime("%Y%m%d" if version == "4" else "%y%m%d"),
                when.strftime("%H%M")]
    year = when.year if version == "4" else when.year % 100
    return [f"{year:0{4 if version == '4' else 2}d}{when.month:02d}{when.day:02d}",
            f"{when.hour:02d}{when.minute:02d}"]


#: Parties longer than this are echoed without the cache (a partner's value may be huge).
_CACHED_PARTIES = 140


def _unb_head(sender: PartyId, recipient: PartyId, version: str,
              identifier: str) -> tuple[str, str, str]:
    """UNB S001, S002 and S003 as written: the syntax, and the parties as an answer may echo
    them.  The same few pairs are written again and again (the gateway and its partners)."""
    size = len(sender.id) + len(sender.qualifier) + len(recipient.id) + len(recipient.qualifier)
    if size > _CACHED_PARTIES:
        return _written_head(sender, recipient, version, identifier)
    return _cached_head(sender, recipient, version, identifier)


def _written_head(sender: PartyId, recipient: PartyId, version: str,
                  identifier: str) -> tuple[str, str, str]:
    echo, element = _Echo(version, identifier), writer_for(identifier, version).element
    return (element([identifier, version]), element(echo.party(sender, "UNB", 2)),
            element(echo.party(recipient, "UNB", 3)))


_cached_head = functools.lru_cache(maxsize=1024)(_written_head)


class _Echo:
    """What an answer may write back of a partner's envelope: a value only where it is valid,
    as its service segment defines it in the answer's syntax version, repertoire and character
    set (UCI S002/S003 are UNB's, UCF 0048/S006/S007 UNG's, UCM 0062/S009 UNH's, and our UNB
    recipient is the partner's UNB sender).  A conditional value that is not valid is left out
    (a qualifier outside the 0007 list, say).  A mandatory one that is not valid has been
    refused by the reader, so the interchange is rejected and only the UCI echoes: it stands
    cut to its length, its characters replaced (``_representable``).  Either way the answer is
    a valid interchange."""

    def __init__(self, version: str, identifier: str) -> None:
        self._segments = SEGMENTS[version]
        self._codec = CODECS[identifier]
        self._repertoire = REPERTOIRES.get(identifier)

    def value(self, text: str, tag: str, element: int, component: int = 1) -> str | None:
        spec = self._segments[tag].value(element, component)
        if text and self._valid(text, spec):
            return text
        return text[: spec.representation.max] if spec.mandatory else None

    def party(self, party: PartyId, tag: str, element: int) -> list[str] | str:
        """S002/S003/S006/S007: identification and qualifier; "" (left out) when there is no
        identification and the composite may be absent (UNG's in syntax 4)."""
        identification = self.value(party.id, tag, element, 1)
        if not identification:
            return ""
        return [identification, self.value(party.qualifier, tag, element, 2) or ""]

    def _valid(self, text: str, spec: ServiceValue) -> bool:
        if value_problem(spec, text, self._repertoire, every_list=True) is not None:
            return False
        if _INVALID.search(text) is not None:
            return False
        return text.isascii() or _encodable(text, self._codec)


def _uci(subject: InterchangeHeader, findings: Sequence[Finding], envelope: AckEnvelope,
         echo: _Echo) -> OutSegment:
    # S003 0010 is mandatory: without the partner's, the interchange came to us, the sender of
    # this answer (the reader has refused it for the missing recipient, 13).
    recipient = subject.recipient if subject.recipient.id else envelope.sender
    elements: list[str | list[str]] = [
        echo.value(subject.control_reference, "UNB", 5) or "",
        echo.party(subject.sender, "UNB", 2),
        echo.party(recipient, "UNB", 3),
        REJECTED if findings else ACKNOWLEDGED,
    ]
    if findings:
        elements += _error_elements(findings[0])
    return ("UCI", elements)


def _message_responses(messages: Sequence[MessageOutcome], groups: Sequence[GroupHeader],
                       echo: _Echo, *, brief: bool = False) -> list[OutSegment]:
    """SG1 (UCM per message outside groups), then SG3: per group a UCF and its messages'
    UCMs (CONTRL SG3/SG4).  The messages are sorted into their groups in one pass (a scan of
    every message per group was quadratic: 32,000 groups took 109 s), and each is acknowledged
    once: a group reference used twice (which the reader refuses, 26) lists its messages under
    its first UCF only."""
    members: dict[str, list[MessageOutcome]] = {}
    for message in messages:
        members.setdefault(message.group_reference, []).append(message)
    segments: list[OutSegment] = []
    for message in members.pop("", ()):
        segments += _ucm(message, echo, brief)
    for group in groups:
        # UNG/UNE errors reject the whole interchange (UCI), so a group listed here is
        # acknowledged; its messages say for themselves whether they are rejected.
        segments.append(("UCF", [
            echo.value(group.reference, "UNG", 5) or "",
            echo.party(group.application_sender, "UNG", 2),
            echo.party(group.application_recipient, "UNG", 3),
            ACKNOWLEDGED,
        ]))
        for message in members.pop(group.reference, ()):
            segments += _ucm(message, echo, brief)
    return segments


def _ucm(message: MessageOutcome, echo: _Echo, brief: bool = False) -> list[OutSegment]:
    """The UCM of one message, and a UCS (and UCD) per error in its data segments; ``brief``:
    a rejected message's UCM with its first error's code only, none for an accepted one."""
    if brief and message.accepted:
        return []
    identifier = message.identifier
    echoed = (identifier.type, identifier.version, identifier.release, identifier.agency)
    elements: list[str | list[str]] = [
        echo.value(message.reference, "UNH", 1) or "",
        [echo.value(value, "UNH", 2, component) or ""
         for component, value in enumerate(echoed, start=1)],
        ACKNOWLEDGED if message.accepted else REJECTED,
    ]
    service = [f for f in message.findings if f.segment_tag in SERVICE_TAGS]
    data = [f for f in message.findings if f.segment_tag not in SERVICE_TAGS]
    located: list[Finding] = []
    unlocated: list[Finding] = []
    for finding in data:
        told = not brief and _segment_number(finding, message) is not None
        (located if told else unlocated).append(finding)
    if service:
        elements += _error_elements(service[0])
    elif unlocated:
        # brief, or a segment UCS 0096 cannot count to (n..6): the UCM tells the error's code
        elements.append(str(int(unlocated[0].code)))
    segments: list[OutSegment] = [("UCM", elements)]
    for finding in located:
        segments += _ucs(finding, message)
    return segments


def _error_elements(finding: Finding) -> list[str | list[str]]:
    """0085, 0013 and S011 of UCI/UCM for an error in a service segment."""
    elements: list[str | list[str]] = [str(int(finding.code))]
    # 0013 names a service segment (a3); an error in anything else is told by its code only.
    if finding.segment_tag in SERVICE_TAGS:
        elements.append(finding.segment_tag)
        position = _position(finding)
        if position is not None:
            elements.append(position)
    return elements


#: UCS 0096 (segment position in the message) is n..6; S011 0098 and 0104 are n..3.
MAX_SEGMENT_NUMBER = 999_999
MAX_ELEMENT_NUMBER = 999


def _segment_number(finding: Finding, message: MessageOutcome) -> str | None:
    """UCS 0096, counting from UNH = 1; None when it would not fit n..6."""
    number = (finding.segment_position or message.unh_position) - message.unh_position + 1
    return str(number) if number <= MAX_SEGMENT_NUMBER else None


def _ucs(finding: Finding, message: MessageOutcome) -> list[OutSegment]:
    """UCS locates the segment; UCD the element (and component) in error, when S011 can."""
    number = _segment_number(finding, message) or ""  # _ucm passes located ones only
    position = _position(finding)
    if position is None:
        return [("UCS", [number, str(int(finding.code))])]
    return [("UCS", [number]), ("UCD", [str(int(finding.code)), position])]


def _position(finding: Finding) -> list[str] | None:
    """S011: 0098 counts the segment tag as position 1 (ISO 9735-4), so the first data element
    is 2; 0104 counts components from 1.  None when there is no element, or when a partner's
    segment put it beyond what n..3 counts (then left out: S011 is conditional in UCI and UCM,
    and a UCS without UCD names the segment and the error)."""
    if finding.element is None:
        return None
    element = finding.element + 1
    component = finding.component or 0
    if element > MAX_ELEMENT_NUMBER or component > MAX_ELEMENT_NUMBER:
        return None
    return [str(element), str(component) if component else ""]


#: Our CONTRL is written with the level A service characters, so every control is invalid.
_INVALID = invalid_characters(Delimiters()).pattern


def _representable(value: str, codec: str, repertoire: frozenset[str] | None) -> str:
    """Echoed partner values may hold characters our answer's charset cannot, that its
    repertoire leaves out (level A has no lower case), or that no repertoire holds (NUL, other
    controls: the partner is told of them with 0085 = 21): replace them, so the answer is
    always a valid interchange in its own charset and repertoire.

    Each rule is one of a single character (upper case too: it maps each on its own), so
    the writer applies this to one character at a time and remembers what each becomes
    (``writer_for``)."""
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


#: The characters worth knowing in advance to be kept: printable ASCII and the rest of
#: Latin-1 (UNOC, the character set of rendered answers).
_LATIN1_GRAPHIC = [chr(c) for c in (*range(0x20, 0x7F), *range(0xA0, 0x100))]


def _kept(codec: str, repertoire: frozenset[str] | None) -> frozenset[str]:
    """Those of ``_LATIN1_GRAPHIC`` that ``_representable`` leaves as they are: a value of
    nothing else is written without looking at each of its characters."""
    return frozenset(ch for ch in _LATIN1_GRAPHIC if _representable(ch, codec, repertoire) == ch)


def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True
