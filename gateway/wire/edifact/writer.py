"""Write segments as EDIFACT text (ISO 9735-1 clause 7), releasing every service character.

Our own and not pydifact's Serializer: that one does not release the syntax 4 repetition
separator, and our acknowledgements echo partner references that may contain it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.model.edifact import Delimiters

#: A segment to write: its tag and its data elements, each a string or its components.
OutSegment = tuple[str, Sequence[str | Sequence[str]]]


class Writer:
    def __init__(self, delimiters: Delimiters) -> None:
        self._d = delimiters
        specials = {
            delimiters.component, delimiters.element, delimiters.terminator,
            delimiters.release, delimiters.repetition,
        }
        self._specials = frozenset(c for c in specials if c)

    def service_string_advice(self) -> str:
        d = self._d
        return f"UNA{d.component}{d.element}{d.decimal}{d.release or ' '}" \
               f"{d.repetition or ' '}{d.terminator}"

    def write(self, segments: Iterable[OutSegment], *, with_una: bool = True,
              line_breaks: bool = True) -> str:
        newline = "\n" if line_breaks else ""
        head = self.service_string_advice() + newline if with_una else ""
        return head + "".join(self.segment(tag, elements) + newline for tag, elements in segments)

    def segment(self, tag: str, elements: Sequence[str | Sequence[str]]) -> str:
        d = self._d
        rendered = [
            self._escape(e) if isinstance(e, str)
            else d.component.join(self._escape(c) for c in _without_trailing_empties(e))
            for e in elements
        ]
        while rendered and not rendered[-1]:
            rendered.pop()
        return d.element.join([tag, *rendered]) + d.terminator

    def _escape(self, value: str) -> str:
        if not self._specials.intersection(value):
            return value
        release = self._d.release
        return "".join(release + ch if ch in self._specials else ch for ch in value)


def _without_trailing_empties(components: Sequence[str]) -> list[str]:
    kept = list(components)
    while kept and not kept[-1]:
        kept.pop()
    return kept
