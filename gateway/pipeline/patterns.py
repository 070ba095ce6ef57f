"""Whole-segment patterns: one regular expression per segment of a message structure that
matches exactly the segments the detailed check would find faultless (formats, lengths,
mandatory and conditional elements and components, too many constituents), leaving only
code-list values to look up.  Matching a segment's text in one C call is what makes
validation fast; anything the pattern does not take goes to the detailed check, which says
what is wrong, so a pattern may be stricter than the rules but never more lenient.

ISO 9735-1: a value's length counts released characters once and leaves the sign and the
decimal mark of a number out (clause 10); trailing empty elements and components may be
omitted (clause 7).

Every value is a capturing group, numbered in specification order with the components laid
flat (a simple element is one value): a matched segment's ``groups()`` are its values, which
the mapper reads without splitting the segment again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.catalog.specs import ComponentSpec, ElementSpec, Representation, SegmentSpec
from gateway.model.edifact import Delimiters

DECIMAL_MARKS = frozenset(".,")


@dataclass(frozen=True, slots=True)
class SegmentPattern:
    regex: re.Pattern[str]
    #: (group number, the codes its value must be one of)
    coded: tuple[tuple[int, frozenset[str]], ...]


class PatternBuilder:
    """Builds the patterns of one interchange's delimiters.  ``usable`` is False when the
    delimiters make patterns ambiguous (a decimal mark used as a separator): then every
    segment gets the detailed check."""

    def __init__(self, delimiters: Delimiters, codes: dict[str, frozenset[str]]) -> None:
        d = delimiters
        separators = {d.element, d.component, d.repetition, d.release} - {""}
        self.usable = not (separators & DECIMAL_MARKS)
        self._element = re.escape(d.element)
        self._component = re.escape(d.component)
        excluded = "".join(re.escape(ch) for ch in sorted(separators))
        release = re.escape(d.release) if d.release else ""
        self._unit = f"(?:[^{excluded}]|{release}.)" if release else f"[^{excluded}]"
        self._letter = (f"(?:[^{excluded}0-9]|{release}[^0-9])" if release
                        else f"[^{excluded}0-9]")
        self._codes = codes
        self._coded: list[tuple[int, frozenset[str]]] = []

    def segment(self, spec: SegmentSpec) -> SegmentPattern:
        self._coded = []
        offsets = [0]
        for element in spec.elements:
            offsets.append(offsets[-1] + max(1, len(element.components)))
        tail = ""
        for index in range(len(spec.elements) - 1, -1, -1):
            element = spec.elements[index]
            required = any(e.mandatory for e in spec.elements[index:])
            value = self._data_element(element, offsets[index])
            tail = f"(?:{self._element}{value}{tail})" + ("" if required else "?")
        regex = re.compile(re.escape(spec.tag) + tail, re.DOTALL)
        assert regex.groups == offsets[-1]  # one group a value, in specification order
        return SegmentPattern(regex, tuple(sorted(self._coded)))

    def _data_element(self, spec: ElementSpec, flat: int) -> str:
        if not spec.composite:
            assert spec.representation is not None
            value = self._value(spec.id, spec.representation, flat)
            return value if spec.mandatory else f"(?:{value})?"
        components = spec.components
        tail = ""
        for index in range(len(components) - 1, 0, -1):
            required = any(c.mandatory for c in components[index:])
            value = self._component_value(components[index], flat + index)
            tail = f"(?:{self._component}{value}{tail})" + ("" if required else "?")
        body = self._component_value(components[0], flat) + tail
        if spec.mandatory:
            # present: at least one component holds a value
            return f"(?!(?:{self._component})*(?:{self._element}|$)){body}"
        return f"(?:{body}|(?:{self._component}){{0,{len(components) - 1}}})"

    def _component_value(self, spec: ComponentSpec, flat: int) -> str:
        value = self._value(spec.id, spec.representation, flat)
        return value if spec.mandatory else f"(?:{value})?"

    def _value(self, element_id: str, r: Representation, flat: int) -> str:
        """The value's pattern as capturing group ``flat + 1``."""
        if r.format == "n":
            digits = rf"(?=(?:[.,]?\d){{{r.min},{r.max}}}(?![.,]?\d))"
            body = rf"-?{digits}(?:\d+(?:[.,]\d*)?|[.,]\d+)"
        else:
            unit = self._letter if r.format == "a" else self._unit
            body = f"{unit}{{{r.min},{r.max}}}"
        codes = self._codes.get(element_id)
        if codes is not None:
            self._coded.append((flat + 1, codes))
        return f"({body})"
