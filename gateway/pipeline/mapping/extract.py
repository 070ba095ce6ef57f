"""Read a segment's values from one regular-expression match instead of splitting it.

Splitting a segment into nested element and component tuples is most of what reading a
message costs in Python; the validator's quick-pass pattern of a segment (``patterns.py``)
captures every component as a group in one C-speed match.  ``Position.flat`` is a value's
group index.  A segment the pattern does not take (a repeated element in syntax 4, a value out
of its format) falls back to splitting: the answer is the same, only slower.
"""

from __future__ import annotations

from gateway.model.arranged import Flat
from gateway.model.edifact import Segment
from gateway.pipeline.patterns import SegmentPatterns
from gateway.wire.edifact.lexer import unescape


class Extractor:
    """The values of the segments of one message, each segment matched once: by the
    validator's quick pass when it ran (``matched``), else here.  Values keep their release
    characters; ``clean`` takes them out of a value read (most values have none)."""

    __slots__ = ("_matched", "_patterns", "_unmatched", "release")

    def __init__(self, patterns: SegmentPatterns, release: str,
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
        found = pattern.regex.fullmatch(segment.raw) if pattern is not None else None
        if found is None:
            self._unmatched.add(key)
            return None
        values = self._matched[key] = found.groups()
        return values

    def clean(self, text: str) -> str:
        release = self.release
        return unescape(text, release) if release and release in text else text
