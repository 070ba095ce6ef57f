"""Syntax findings with their ISO 9735 codes (data element 0085, syntax error coded)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class SyntaxErrorCode(IntEnum):
    """ISO 9735-4 / service code list 0085; the values travel in UCI, UCM, UCS and UCD."""

    UNA_NOT_SUPPORTED = 1
    SYNTAX_VERSION_NOT_SUPPORTED = 2
    MESSAGE_VERSION_NOT_SUPPORTED = 3
    SERVICE_SEGMENT_MISSING_OR_INVALID = 4
    TRAILER_CHECK_IN_ERROR = 5
    DATA_SEGMENT_MISSING_OR_INVALID = 6
    RECIPIENT_NOT_ACTUAL_RECIPIENT = 7
    TOO_MANY_DATA_ELEMENTS = 8
    MANDATORY_DATA_ELEMENT_MISSING = 9
    INVALID_VALUE = 12
    MISSING = 13
    VALUE_NOT_SUPPORTED_IN_POSITION = 14
    NOT_SUPPORTED_IN_POSITION = 15
    TOO_MANY_CONSTITUENTS = 16
    NO_AGREEMENT = 17
    UNSPECIFIED = 18
    #: Syntax 4: a character the UNA advises cannot serve as a service character.
    CHARACTER_INVALID_AS_SERVICE_CHARACTER = 20
    INVALID_CHARACTERS = 21
    UNKNOWN_INTERCHANGE_SENDER = 23
    DUPLICATE_DETECTED = 26
    REFERENCES_DO_NOT_MATCH = 28
    CONTROL_COUNT_DOES_NOT_MATCH = 29
    GROUPS_AND_MESSAGES_MIXED = 30
    LOWER_LEVEL_EMPTY = 32
    INVALID_OCCURRENCE_OUTSIDE_MESSAGE = 33
    TOO_MANY_SEGMENT_REPETITIONS = 35
    TOO_MANY_GROUP_REPETITIONS = 36
    INVALID_TYPE_OF_CHARACTERS = 37
    DATA_ELEMENT_TOO_LONG = 39
    DATA_ELEMENT_TOO_SHORT = 40
    CHARACTER_SET_NOT_SUPPORTED = 46


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong, where it is, and the code the CONTRL reports for it.

    ``segment_position`` counts from the start of the interchange; ``element`` and ``component``
    are 1-based as in ISO 9735-4 S011 (0098 / 0104).  In an XML document, ``line`` and ``xpath``
    say where instead (the XPath with the document's own prefixes, e.g.
    ``/md:MetaData/Declaration/GoodsShipment``), and the code is the nearest 0085 meaning.
    """

    code: SyntaxErrorCode
    text: str
    segment_tag: str = ""
    segment_position: int | None = None
    element: int | None = None
    component: int | None = None
    line: int | None = None
    xpath: str = ""

    def describe(self) -> str:
        if self.line is not None or self.xpath:
            where = f"line {self.line}" if self.line is not None else ""
            where += f" {self.xpath}" if self.xpath else ""
            return f"{where.strip()}: {self.text} [0085={int(self.code)}]"
        where = f"{self.segment_tag} (segment {self.segment_position})" if self.segment_tag else ""
        if self.element is not None:
            where += f" element {self.element}"
            if self.component is not None:
                where += f".{self.component}"
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.text} [0085={int(self.code)}]"


#: How much of a partner's value a finding's text quotes: a finding says where the value
#: stands, and the answer and the stored summary stay small whatever the value's size.
SHOWN_CHARACTERS = 40


def shown(value: str) -> str:
    """A partner's value as a finding's text quotes it: its repr (every control character
    escaped, so a text never carries what the value could not), cut after
    ``SHOWN_CHARACTERS`` with its length told."""
    if len(value) <= SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:SHOWN_CHARACTERS]!r}... ({len(value):,} characters)"
