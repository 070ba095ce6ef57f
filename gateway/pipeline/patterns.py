"""Whole-segment patterns: one regular expression per segment of a message structure that
matches exactly the segments the detailed check would find faultless (formats, lengths,
mandatory and conditional elements and components, too many constituents), leaving only
code-list values to look up.  Matching a segment's text in one C call is what makes
validation fast; anything the pattern does not take goes to the detailed check, which says
what is wrong, so a pattern may be stricter than the rules but never more lenient.

ISO 9735-1: a value's length counts released characters once and leaves the sign and the
decimal mark of a number out (clause 10); trailing empty elements and components may be
omitted (clause 7).  What a digit is (0-9 in a number, any script's digit in an alphabetic
value) comes from ``model/numbers.py``, which the detailed check uses too.

The patterns are unambiguous: a value never holds a separator, and a composite that may be
absent has one way to match an empty text, so a segment the pattern does not take fails
after a walk along it, never after trying the ways its elements could have split (the old
second way to match ``::`` made a failing segment of many empty composites cost up to 2**k
walks).

Every value is a capturing group, numbered in specification order with the components laid
flat (a simple element is one value): a matched segment's ``groups()`` are its values, which
the mapper reads without splitting the segment again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.catalog.catalog import CompiledMessage
from gateway.catalog.specs import ComponentSpec, ElementSpec, Representation, SegmentSpec
from gateway.model.edifact import Delimiters
from gateway.model.numbers import (
    ASCII_DIGITS,
    DECIMAL_MARKS,
    DIGIT,
    MINUS,
    UNSIGNED,
    any_digit_class,
)

#: Characters a number may hold: a service character among them would make a pattern read a
#: separator as part of a number (or the release character as a digit).
NUMERIC_CHARACTERS = ASCII_DIGITS | frozenset(DECIMAL_MARKS + MINUS)


@dataclass(frozen=True, slots=True)
class SegmentPattern:
    regex: re.Pattern[str]
    #: (group number, the codes its value must be one of)
    coded: tuple[tuple[int, frozenset[str]], ...]


class PatternBuilder:
    """Builds the patterns of one interchange's delimiters.  ``usable`` is False when the
    delimiters make patterns ambiguous (a service character that a number may hold, or one
    used twice): then every segment gets the detailed check."""

    def __init__(self, delimiters: Delimiters, codes: dict[str, frozenset[str]]) -> None:
        d = delimiters
        service = [c for c in (d.element, d.component, d.repetition, d.release) if c]
        separators = set(service)
        self.usable = len(separators) == len(service) and not separators & NUMERIC_CHARACTERS
        self._element = re.escape(d.element)
        self._component = re.escape(d.component)
        excluded = "".join(re.escape(ch) for ch in sorted(separators))
        release = re.escape(d.release) if d.release else ""
        self._unit = f"(?:[^{excluded}]|{release}.)" if release else f"[^{excluded}]"
        digits = any_digit_class()
        self._letter = (f"(?:[^{excluded}{digits}]|{release}[^{digits}])" if release
                        else f"[^{excluded}{digits}]")
        self._codes = codes

    def segment(self, spec: SegmentSpec) -> SegmentPattern:
        """The pattern of one segment (the builder keeps no state from one to the next, so
        threads may build with it at once)."""
        tail = ""
        for index in range(len(spec.elements) - 1, -1, -1):
            element = spec.elements[index]
            required = any(e.mandatory for e in spec.elements[index:])
            value = self._data_element(element)
            tail = f"(?:{self._element}{value}{tail})" + ("" if required else "?")
        regex = re.compile(re.escape(spec.tag) + tail, re.DOTALL)
        # one group a value, in specification order
        assert regex.groups == sum(max(1, len(e.components)) for e in spec.elements)
        return SegmentPattern(regex, self._coded(spec))

    def _coded(self, spec: SegmentSpec) -> tuple[tuple[int, frozenset[str]], ...]:
        """The group of each coded value, with its codes."""
        found = []
        group = 0
        for element in spec.elements:
            for value_id in [c.id for c in element.components] or [element.id]:
                group += 1
                codes = self._codes.get(value_id)
                if codes is not None:
                    found.append((group, codes))
        return tuple(found)

    def _data_element(self, spec: ElementSpec) -> str:
        if not spec.composite:
            assert spec.representation is not None
            value = self._value(spec.representation)
            return value if spec.mandatory else f"(?:{value})?"
        components = spec.components
        tail = ""
        for index in range(len(components) - 1, 0, -1):
            required = any(c.mandatory for c in components[index:])
            value = self._component_value(components[index])
            tail = f"(?:{self._component}{value}{tail})" + ("" if required else "?")
        body = self._component_value(components[0]) + tail
        if spec.mandatory:
            # present: at least one component holds a value
            return f"(?!(?:{self._component})*(?:{self._element}|$)){body}"
        if not any(c.mandatory for c in components):
            return body  # it matches the empty text and bare separators already
        return f"(?:{body}|(?:{self._component}){{0,{len(components) - 1}}})"

    def _component_value(self, spec: ComponentSpec) -> str:
        value = self._value(spec.representation)
        return value if spec.mandatory else f"(?:{value})?"

    def _value(self, r: Representation) -> str:
        """The value's pattern: one capturing group (groups number the values in
        specification order, the components laid flat)."""
        if r.format == "n":
            digit, mark = f"[{DIGIT}]", f"[{DECIMAL_MARKS}]"
            length = rf"(?=(?:{mark}?{digit}){{{r.min},{r.max}}}(?!{mark}?{digit}))"
            body = rf"{MINUS}?{length}{UNSIGNED}"
        else:
            unit = self._letter if r.format == "a" else self._unit
            body = f"{unit}{{{r.min},{r.max}}}"
        return f"({body})"


class SegmentPatterns:
    """The segment patterns of one message for one set of delimiters, each built on first use:
    an interchange under a new UNA costs the patterns of the segments it has, not of all."""

    __slots__ = ("_builder", "_built", "_specs")

    def __init__(self, compiled: CompiledMessage, delimiters: Delimiters) -> None:
        builder = PatternBuilder(delimiters, compiled.codes)
        self._builder = builder if builder.usable else None
        self._specs = compiled.segments
        self._built: dict[str, SegmentPattern] = {}

    def get(self, tag: str) -> SegmentPattern | None:
        """The pattern of segment ``tag``; None for a tag the message does not have, or when
        the delimiters make patterns ambiguous (then the detailed check does it all)."""
        found = self._built.get(tag)
        if found is None and self._builder is not None:
            spec = self._specs.get(tag)
            if spec is not None:  # a dict holds at most one pattern per tag of the message
                found = self._built[tag] = self._builder.segment(spec)
        return found
