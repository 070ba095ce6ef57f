"""Read a segment's values with one regular expression instead of splitting it.

Splitting a segment into nested element and component tuples is most of what reading a
message costs in Python; a pattern generated from the segment's specification gives every
component as a group in one C-speed match.  ``Position.flat`` is a value's group index.  A
segment the pattern does not take (a repeated element in syntax 4, more elements than the
directory has) falls back to splitting: the answer is the same, only slower.
"""

from __future__ import annotations

import re

from gateway.catalog.specs import SegmentSpec
from gateway.model.edifact import Delimiters, Segment
from gateway.wire.edifact.lexer import unescape

#: A segment's values in specification order, components flattened; None: absent.
Flat = tuple[str | None, ...]


def extractor(spec: SegmentSpec, d: Delimiters) -> re.Pattern[str]:
    separators = {d.element, d.component, d.release, d.repetition} - {""}
    excluded = "".join(re.escape(ch) for ch in sorted(separators))
    unit = (f"((?:[^{excluded}]|{re.escape(d.release)}.)*)" if d.release
            else f"([^{excluded}]*)")
    tail = ""
    for element in reversed(spec.elements):
        count = max(1, len(element.components))
        inner = ""
        for _ in range(count - 1):
            inner = f"(?:{re.escape(d.component)}{unit}{inner})?"
        tail = f"(?:{re.escape(d.element)}{unit}{inner}{tail})?"
    return re.compile(re.escape(spec.tag) + tail, re.DOTALL)


_UNSEEN = object()


class Extractor:
    """Flat values of the segments of one message, each matched once."""

    __slots__ = ("_cache", "_patterns", "_release")

    def __init__(self, patterns: dict[str, re.Pattern[str]], release: str) -> None:
        self._patterns = patterns
        self._cache: dict[int, Flat | None] = {}
        self._release = release

    def flat(self, segment: Segment) -> Flat | None:
        key = segment.position
        cached = self._cache.get(key, _UNSEEN)
        if cached is not _UNSEEN:
            return cached  # type: ignore[return-value]
        pattern = self._patterns.get(segment.tag)
        found = pattern.fullmatch(segment.raw) if pattern is not None else None
        values: Flat | None = None
        if found is not None:
            values = found.groups()
            release = self._release
            if release and release in segment.raw:
                values = tuple(unescape(v, release) if v and release in v else v
                               for v in values)
        self._cache[key] = values
        return values
