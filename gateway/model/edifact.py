"""An EDIFACT interchange as the envelope reader sees it (ISO 9735-1 clause 7: structure).

Positions are 1-based and count segments from the start of the interchange (UNA excluded); a
message also knows the position of each segment inside itself (UNH = 1, ISO 9735-4 0096).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.model.findings import Finding

#: One occurrence of a data element: its components (a simple element has one).
Components = tuple[str, ...]


#: The data elements of a segment, each with one or more occurrences (syntax 4 repeats).
Elements = tuple[tuple[Components, ...], ...]


class Segment:
    """A segment: its tag, its text as received (``raw``, tag included, terminator and release
    characters as sent) and its data elements.

    The elements are split from ``raw`` on first use: most segments are only matched whole
    against their pattern by the validator, and never need splitting (speed and memory).
    """

    __slots__ = ("_elements", "_split", "position", "raw", "tag")

    def __init__(self, tag: str, position: int, raw: str,
                 split: Callable[[str], Elements]) -> None:
        self.tag = tag
        self.position = position
        self.raw = raw
        self._split = split
        self._elements: Elements | None = None

    @property
    def elements(self) -> Elements:
        if self._elements is None:
            self._elements = self._split(self.raw)
        return self._elements

    def __repr__(self) -> str:
        return f"Segment({self.raw!r}, position={self.position})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Segment) and (self.raw, self.position) == (
            other.raw, other.position)

    def __hash__(self) -> int:
        return hash((self.raw, self.position))

    def value(self, element: int, component: int = 1, occurrence: int = 1) -> str:
        """The value at a 1-based (element, component, occurrence) position, "" when absent.

        Element 1 is the first data element after the tag, as in ISO 9735-4 0098.
        """
        try:
            return self.elements[element - 1][occurrence - 1][component - 1]
        except IndexError:
            return ""

    def occurrences(self, element: int) -> tuple[Components, ...]:
        """Every occurrence of a data element (empty when the element is absent)."""
        if element > len(self.elements):
            return ()
        return self.elements[element - 1]

    @property
    def element_count(self) -> int:
        return len(self.elements)


@dataclass(frozen=True, slots=True)
class Delimiters:
    """Service characters of an interchange (ISO 9735-1 clause 8, UNA service string advice)."""

    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"
    repetition: str = "*"
    terminator: str = "'"


#: ISO 9735-1 clause 10 representations, as the directories write them.
_REPRESENTATION = re.compile(r"(an|a|n)(\.\.)?([0-9]+)")


@dataclass(frozen=True, slots=True)
class Representation:
    """ISO 9735 representation: ``an..35`` is alphanumeric, 1 to 35; ``n3`` numeric, exactly 3."""

    format: str
    min: int
    max: int

    @classmethod
    def parse(cls, text: str) -> Representation:
        found = _REPRESENTATION.fullmatch(text.strip())
        if not found:
            raise ValueError(f"not a representation: {text!r}")
        size = int(found.group(3))
        return cls(found.group(1), 1 if found.group(2) else size, size)

    def __str__(self) -> str:
        return f"{self.format}{'..' if self.min != self.max else ''}{self.max}"


@dataclass(frozen=True, slots=True)
class PartyId:
    """An interchange or group sender/recipient: identification and code qualifier (S002/S003)."""

    id: str
    qualifier: str = ""


@dataclass(frozen=True, slots=True)
class InterchangeHeader:
    """The fields of UNB the gateway acts on."""

    syntax_identifier: str
    syntax_version: str
    sender: PartyId
    recipient: PartyId
    prepared_date: str
    prepared_time: str
    control_reference: str
    application_reference: str = ""
    test_indicator: str = ""


@dataclass(frozen=True, slots=True)
class MessageIdentifier:
    """UNH S009: message type, version, release, controlling agency, association code."""

    type: str
    version: str
    release: str
    agency: str
    association: str = ""

    @property
    def directory(self) -> str:
        """The directory a message belongs to, e.g. ``D96B`` (version ``D`` + release ``96B``)."""
        return f"{self.version}{self.release}".upper()


@dataclass(frozen=True, slots=True)
class GroupHeader:
    """UNG: the functional group a message travels in (0048 reference, S006/S007 parties)."""

    reference: str
    application_sender: PartyId
    application_recipient: PartyId


@dataclass(frozen=True, slots=True)
class Message:
    """One UNH..UNT message; ``segments`` runs from UNH to UNT inclusive."""

    reference: str
    identifier: MessageIdentifier
    segments: tuple[Segment, ...]
    group_reference: str = ""
    findings: tuple[Finding, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.findings

    @property
    def body(self) -> tuple[Segment, ...]:
        """The segments between UNH and UNT."""
        return self.segments[1:-1] if len(self.segments) >= 2 else ()


@dataclass(frozen=True, slots=True)
class Interchange:
    """A parsed interchange with every finding of the envelope checks.

    ``findings`` are interchange-level (UNB/UNZ, UNG/UNE, segments outside messages); message
    findings live on each message.
    """

    delimiters: Delimiters
    header: InterchangeHeader
    messages: tuple[Message, ...]
    findings: tuple[Finding, ...] = field(default=())
    segment_count: int = 0
    groups: tuple[GroupHeader, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.findings
