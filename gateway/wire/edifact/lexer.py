"""Split interchange text into segments (ISO 9735-1 clause 7), honouring the release character.

Splitting uses ``str.split`` and then re-joins pieces whose separator was released; that keeps
the common case (no release characters) at the speed of ``str.split``.
"""

from __future__ import annotations

from dataclasses import dataclass
from sys import intern

from gateway.model.edifact import Components, Delimiters, Elements, Segment

_WHITESPACE_BETWEEN_SEGMENTS = "\r\n\t "


@dataclass(frozen=True, slots=True)
class Lexed:
    """Segments in order plus any text after the last terminator that is not white space."""

    segments: list[Segment]
    unterminated: str


def split_unreleased(text: str, separator: str, release: str) -> list[str]:
    """Split on ``separator`` except where an odd run of release characters precedes it."""
    parts = text.split(separator)
    if not release or release not in text:
        return parts
    joined: list[str] = []
    pending: str | None = None
    for part in parts:
        if pending is not None:
            part = pending + separator + part
        released = len(part) - len(part.rstrip(release))
        if released % 2:
            pending = part
        else:
            joined.append(part)
            pending = None
    if pending is not None:
        joined.append(pending)
    return joined


class Lexer:
    """A lexer bound to one interchange's delimiters."""

    def __init__(self, delimiters: Delimiters) -> None:
        self._d = delimiters

    def lex(self, text: str, first_position: int = 1) -> Lexed:
        pieces = split_unreleased(text, self._d.terminator, self._d.release)
        trailing = pieces.pop().strip(_WHITESPACE_BETWEEN_SEGMENTS)
        element = self._d.element
        split = self.elements
        segments = []
        for index, piece in enumerate(pieces):
            raw = piece.lstrip(_WHITESPACE_BETWEEN_SEGMENTS)
            pieces[index] = ""  # let the unstripped copy go now (peak memory)
            position = first_position + index
            # A tag is three letters: no separator or release character can stand in it.
            tag = intern(raw.partition(element)[0])
            segments.append(Segment(tag, position, raw, split))
        return Lexed(segments=segments, unterminated=trailing)

    def segment(self, raw: str, position: int) -> Segment:
        return Segment(intern(raw.partition(self._d.element)[0]), position, raw, self.elements)

    def elements(self, raw: str) -> Elements:
        """The data elements of a segment's text (everything after its tag)."""
        d = self._d
        if not d.release or d.release not in raw:
            return self._plain_elements(raw)
        return tuple([self._element(e)
                      for e in split_unreleased(raw, d.element, d.release)[1:]])

    def _plain_elements(self, raw: str) -> Elements:
        """The common case: no release character in the segment, so plain splits suffice."""
        d = self._d
        parts = raw.split(d.element)
        component = d.component
        if d.repetition and d.repetition in raw:
            repetition = d.repetition
            return tuple([tuple([tuple(o.split(component)) for o in e.split(repetition)])
                          for e in parts[1:]])
        return tuple([(tuple(e.split(component)),) for e in parts[1:]])

    def _element(self, raw: str) -> tuple[Components, ...]:
        d = self._d
        occurrences = (
            split_unreleased(raw, d.repetition, d.release)
            if d.repetition and d.repetition in raw
            else [raw]
        )
        return tuple(
            tuple(self._value(c) for c in split_unreleased(o, d.component, d.release))
            for o in occurrences
        )

    def _value(self, raw: str) -> str:
        release = self._d.release
        if not release or release not in raw:
            return raw
        return unescape(raw, release)


def unescape(value: str, release: str) -> str:
    """Drop each release character and keep the one it releases (ISO 9735-1 clause 8)."""
    kept: list[str] = []
    start = 0
    while (at := value.find(release, start)) >= 0:
        kept.append(value[start:at])
        kept.append(value[at + 1 : at + 2])
        start = at + 2
    kept.append(value[start:])
    return "".join(kept)
