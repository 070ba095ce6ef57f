"""Split interchange text into segments (ISO 9735-1 clause 7), honouring the release character.

Splitting uses ``str.split`` and then re-joins pieces whose separator was released; that keeps
the common case (no released separator) at the speed of ``str.split``.  Every step is linear in
the length of its input, whatever the partner sends: a run of released separators is gathered
and joined once, never re-joined piece by piece (that was quadratic: 1 MB of ``?'`` took 20 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from sys import intern

from gateway.model.edifact import Components, Delimiters, Elements, Segment

_WHITESPACE_BETWEEN_SEGMENTS = "\r\n\t "


@dataclass(frozen=True, slots=True)
class Lexed:
    """Segments in order plus any text after the last terminator that is not white space."""

    segments: list[Segment]
    unterminated: str
    #: What ``lex(..., screen=...)`` said of the segments' text and the unterminated rest.
    screened: bool = False


def split_unreleased(text: str, separator: str, release: str) -> list[str]:
    """Split on ``separator`` except where an odd run of release characters precedes it
    (ISO 9735-1 clause 8: a release character restores the character after it, itself
    included, so ``??+`` separates and ``???+`` does not)."""
    parts = text.split(separator)
    if not release or release + separator not in text:
        return parts  # no separator is released
    joined: list[str] = []
    held: list[str] = []
    for part in parts:
        # An odd run of release characters at the end of ``part`` releases the separator
        # after it (the run stops at the separator before ``part``: never a release character).
        if part.endswith(release) and (len(part) - len(part.rstrip(release))) % 2:
            held.append(part)  # the separator after it is data: join once the run ends
        elif held:
            held.append(part)
            joined.append(separator.join(held))
            held = []
        else:
            joined.append(part)
    if held:
        joined.append(separator.join(held))
    return joined


class Lexer:
    """A lexer bound to one interchange's delimiters."""

    def __init__(self, delimiters: Delimiters) -> None:
        self._d = delimiters

    def lex(self, text: str, first_position: int = 1, *,
            screen: Callable[[str], bool] | None = None) -> Lexed:
        """The segments of ``text``.  ``screen``, when given, is asked once about the text of
        all segments together, white space between them left out (``Lexed.screened``)."""
        pieces = split_unreleased(text, self._d.terminator, self._d.release)
        trailing = pieces.pop().strip(_WHITESPACE_BETWEEN_SEGMENTS)
        element = self._d.element
        split = self.elements
        segments = []
        for index, piece in enumerate(pieces):
            raw = piece.lstrip(_WHITESPACE_BETWEEN_SEGMENTS)
            pieces[index] = raw  # the segment holds it anyway: the unstripped copy goes now
            position = first_position + index
            # A tag is three letters: no separator or release character can stand in it.
            tag = intern(raw.partition(element)[0])
            segments.append(Segment(tag, position, raw, split))
        screened = screen is not None and (screen(trailing) or screen("".join(pieces)))
        return Lexed(segments=segments, unterminated=trailing, screened=screened)

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
        return tuple(tuple(self._value(c) for c in self.components(o))
                     for o in self.occurrences(raw))

    def occurrences(self, element: str) -> list[str]:
        """The occurrences of one data element's text (syntax 4 repetitions), still escaped."""
        d = self._d
        if d.repetition and d.repetition in element:
            return split_unreleased(element, d.repetition, d.release)
        return [element]

    def components(self, occurrence: str) -> list[str]:
        """The components of one occurrence's text, still escaped."""
        return split_unreleased(occurrence, self._d.component, self._d.release)

    def data_elements(self, raw: str) -> list[str]:
        """A segment's text split at its data element separators (the tag first), escaped."""
        return split_unreleased(raw, self._d.element, self._d.release)

    def _value(self, raw: str) -> str:
        release = self._d.release
        if not release or release not in raw:
            return raw
        return unescape(raw, release)


def unescape(value: str, release: str) -> str:
    """Drop each release character and keep the one it releases (ISO 9735-1 clause 8).

    In a run of release characters they pair up from the left: each pair stands for one
    release character, and a last odd one releases the character after it (which is kept as
    it is).  So the pairs are split out, the lone ones dropped, and the pairs put back, in a
    few C-speed passes whatever the input.
    """
    if release not in value:
        return value
    pair = release + release
    if pair not in value:
        return value.replace(release, "")
    return release.join([piece.replace(release, "") for piece in value.split(pair)])
