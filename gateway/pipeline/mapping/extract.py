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
from gateway.model.arranged import Flat
from gateway.model.edifact import Delimiters, Segment
from gateway.wire.edifact.lexer import unescape


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


class Extractor:
    """The values of the segments of one message, each segment matched once: by the
    validator's quick pass when it ran (``matched``), else here.  Values keep their release
    characters; ``clean`` takes them out of a value read (most values have none)."""

    __slots__ = ("_matched", "_patterns", "_unmatched", "release")

    def __init__(self, patterns: dict[str, re.Pattern[str]], release: str,
                 matched: dict[int, Flat] | None = None) -> None:
        self._patterns = patterns
        self.release = release
        self._matched = matched if matched is not None else {}
        self._unmatched: set[int] = set()

    def flat(self, segment: Segment) -> Flat | None:
        key = segment.position
        values = self._matched.get(key)
        if values is not None or key in self._unmatched:
            return values
        pattern = self._patterns.get(segment.tag)
        found = pattern.fullmatch(segment.raw) if pattern is not None else None
        if found is None:
            self._unmatched.add(key)
            return None
        values = self._matched[key] = found.groups()
        return values

    def clean(self, text: str) -> str:
        release = self.release
        return unescape(text, release) if release and release in text else text
