"""A message as the validator found it: its segments in their segment groups, and the values
of each segment the quick pass matched.  The mapper reads this instead of walking and
splitting the message again (what reading costs most)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.model.edifact import Segment

#: A segment's values in specification order, components laid flat (a simple element is one
#: value); None or "" where absent; release characters still in.
Flat = tuple[str | None, ...]


@dataclass(slots=True)
class Instance:
    """The message level or one instance of a segment group (ISO 9735-1 clause 7.2)."""

    segments: dict[str, list[Segment]] = field(default_factory=dict)
    groups: dict[str, list[Instance]] = field(default_factory=dict)
    trigger: Segment | None = None


@dataclass(frozen=True, slots=True)
class Arranged:
    root: Instance
    #: By segment position: its values as the validator's pattern matched them.
    flat: dict[int, Flat]
