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


_UNSEEN = object()


class Extractor:
    """Flat values of the segments of one message, each matched once: by the validator's
    quick pass when it ran (``matched``), else here."""

    __slots__ = ("_matched", "_patterns", "_ready", "_release")

    def __init__(self, patterns: dict[str, re.Pattern[str]], release: str,
                 matched: dict[int, Flat] | None = None) -> None:
        self._patterns = patterns
        self._release = release
        self._matched = matched or {}
        self._ready: dict[int, Flat | None] = {}

    def flat(self, segment: Segment) -> Flat | None:
        key = segment.position
        ready = self._ready.get(key, _UNSEEN)
        if ready is not _UNSEEN:
            return ready  # type: ignore[return-value]
        values = self._matched.get(key)
        if values is None:
            pattern = self._patterns.get(segment.tag)
            found = pattern.fullmatch(segment.raw) if pattern is not None else None
            values = found.groups() if found is not None else None
        release = self._release
        if values is not None and release and release in segment.raw:
            values = tuple(unescape(v, release) if v and release in v else v for v in values)
        self._ready[key] = values
        return values
