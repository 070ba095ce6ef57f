"""Write segments as EDIFACT text (ISO 9735-1 clause 7), releasing every service character.

Our own and not pydifact's Serializer: that one does not release the syntax 4 repetition
separator, and our acknowledgements echo partner references that may contain it.

Speed (every answer the gateway sends is written here): a value is looked at by one compiled
character class, in C, and goes as it is unless it holds a service character (or one that
``replace`` changes); only then is it rewritten, by ``str.translate`` through a table of what
each character becomes, worked out once per character.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from gateway.model.edifact import Delimiters

#: A segment to write: its tag and its data elements, each a string or its components.
OutSegment = tuple[str, Sequence[str | Sequence[str]]]


class ByPosition(Protocol):
    """A segment as its values by (data element, component), both from 1 (as ISO 9735-4
    S011 0098 and 0104 count, less the tag)."""

    @property
    def tag(self) -> str: ...

    @property
    def values(self) -> Mapping[tuple[int, int], str]: ...

#: Characters remembered per writer (what a value holds beyond them is worked out again).
_REMEMBERED = 4096


class Writer:
    """``replace``, when given, is what a character becomes before service characters are
    released (an answer replacing what its character set cannot carry).  It is applied to
    one character at a time and gives one or more characters for each, never none (so an
    empty value stays the only kind that is left out).  ``kept`` are characters it leaves
    as they are: a value of nothing else (and no service character) is written unchanged."""

    def __init__(self, delimiters: Delimiters, *,
                 replace: Callable[[str], str] | None = None, kept: Iterable[str] = ()) -> None:
        self._d = delimiters
        specials = {
            delimiters.component, delimiters.element, delimiters.terminator,
            delimiters.release, delimiters.repetition,
        }
        # A service character longer than one character never equals one of a value's.
        single = frozenset(c for c in specials if len(c) == 1)
        self._table = _Characters(delimiters.release, single, replace)
        self._untouched = _any_but(frozenset(kept) - single) if replace is not None \
            else _any_of(single)
        self._join_components = delimiters.component.join
        self._join_elements = delimiters.element.join

    def service_string_advice(self) -> str:
        d = self._d
        return f"UNA{d.component}{d.element}{d.decimal}{d.release or ' '}" \
               f"{d.repetition or ' '}{d.terminator}"

    def write(self, segments: Iterable[OutSegment], *, with_una: bool = True,
              line_breaks: bool = True) -> str:
        segment = self.segment
        return self.lines([segment(tag, elements) for tag, elements in segments],
                          with_una=with_una, line_breaks=line_breaks)

    def lines(self, written: Iterable[str], *, with_una: bool = True,
              line_breaks: bool = True) -> str:
        """Segments already written (``segment``, ``positioned``) as one text."""
        newline = "\n" if line_breaks else ""
        head = self.service_string_advice() + newline if with_una else ""
        return head + "".join([text + newline for text in written])

    def value(self, text: str) -> str:
        """One value as it is written: replaced where ``replace`` says, released."""
        return text if self._untouched(text) is None else text.translate(self._table)

    def element(self, element: str | Sequence[str]) -> str:
        """One data element as ``segment`` writes it (its components joined, trailing empty
        ones left out)."""
        if isinstance(element, str):
            return self.value(element)
        components = [self.value(c) for c in element]
        while components and not components[-1]:
            components.pop()
        return self._join_components(components)

    def assemble(self, tag: str, elements: Sequence[str]) -> str:
        """A segment of elements written by ``element``: ``segment(tag, elements)`` is
        ``assemble(tag, [element(e) for e in elements])``."""
        kept = len(elements)
        while kept and not elements[kept - 1]:
            kept -= 1
        return self._join_elements([tag, *elements[:kept]]) + self._d.terminator

    def segment(self, tag: str, elements: Sequence[str | Sequence[str]]) -> str:
        untouched, table, join = self._untouched, self._table, self._join_components
        rendered = [tag]
        for element in elements:
            if isinstance(element, str):
                rendered.append(element if untouched(element) is None
                                else element.translate(table))
                continue
            components = [c if untouched(c) is None else c.translate(table) for c in element]
            while components and not components[-1]:
                components.pop()
            rendered.append(join(components))
        while len(rendered) > 1 and not rendered[-1]:
            rendered.pop()
        return self._join_elements(rendered) + self._d.terminator

    def from_values(self, segments: Iterable[ByPosition]) -> list[str]:
        """Segments from their values by position: what ``segment`` writes of the elements
        they make (gaps empty), without making them.  Empty values are left out like the
        trailing empties ``segment`` drops; the separators before a value stand for the
        empty ones between.  (One call for all: a call per segment costs more than most
        segments.)"""
        untouched, table = self._untouched, self._table
        element_separator, component_separator, terminator = \
            self._d.element, self._d.component, self._d.terminator
        written: list[str] = []
        for segment in segments:
            values = segment.values
            if not values:
                written.append(segment.tag + terminator)
                continue
            if len(values) == 1:  # the most common: one value, nothing to sort
                ((at, within), text), = values.items()
                if untouched(text) is not None:
                    text = text.translate(table)
                written.append(f"{segment.tag}{element_separator * at}"
                               f"{component_separator * (within - 1)}{text}{terminator}"
                               if text else segment.tag + terminator)
                continue
            released = untouched("".join(values.values())) is not None
            parts = [segment.tag]
            element = component = 0
            for key in sorted(values):
                text = values[key]
                if not text:
                    continue
                at, within = key
                if at != element:
                    parts.append(element_separator * (at - element))
                    element, component = at, 1
                if within != component:
                    parts.append(component_separator * (within - component))
                    component = within
                parts.append(text.translate(table) if released else text)
            parts.append(terminator)
            written.append("".join(parts))
        return written


class _Characters(dict[int, str]):
    """What each character of a value becomes (``str.translate`` table): ``replace``d, then
    released when it is a service character; worked out on first sight."""

    def __init__(self, release: str, specials: frozenset[str],
                 replace: Callable[[str], str] | None) -> None:
        super().__init__()
        self._release = release
        self._specials = specials
        self._replace = replace

    def __missing__(self, code: int) -> str:
        character = chr(code)
        replaced = character if self._replace is None else self._replace(character)
        becomes = "".join(self._release + c if c in self._specials else c for c in replaced)
        if len(self) < _REMEMBERED:
            self[code] = becomes
        return becomes


def _any_of(characters: frozenset[str]) -> Callable[[str], re.Match[str] | None]:
    """The first of ``characters`` in a text (none: never found)."""
    if not characters:
        return lambda _: None
    return re.compile("[" + "".join(re.escape(c) for c in sorted(characters)) + "]").search


def _any_but(characters: frozenset[str]) -> Callable[[str], re.Match[str] | None]:
    """The first character of a text that is not one of ``characters``."""
    if not characters:
        return re.compile("(?s).").search
    return re.compile("[^" + "".join(re.escape(c) for c in sorted(characters)) + "]").search
