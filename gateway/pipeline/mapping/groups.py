"""Split a run of segments into top-level segments and segment-group instances.

Segment groups in a UN/EDIFACT message stand in a fixed order, each opened by its trigger
segment (ISO 9735-1 clause 7.2).  A trigger of the same or a later group opens a new instance;
a trigger tag of an earlier group can only be nested inside the current instance.  That is
enough to read groups at one level without the full message structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.model.edifact import Segment


@dataclass
class GroupInstance:
    trigger: Segment
    members: list[Segment] = field(default_factory=list)


@dataclass
class Level:
    """Segments of one level: those before the first group, then each group instance."""

    top: list[Segment] = field(default_factory=list)
    groups: list[GroupInstance] = field(default_factory=list)

    def first(self, tag: str) -> Segment | None:
        return next((s for s in self.top if s.tag == tag), None)

    def all(self, tag: str) -> list[Segment]:
        return [s for s in self.top if s.tag == tag]

    def triggers(self, tag: str) -> list[Segment]:
        return [g.trigger for g in self.groups if g.trigger.tag == tag]


def split_level(segments: Sequence[Segment], group_triggers: Sequence[str]) -> Level:
    order = {tag: index for index, tag in enumerate(group_triggers)}
    level = Level()
    current = -1
    for segment in segments:
        rank = order.get(segment.tag)
        if rank is not None and rank >= current:
            level.groups.append(GroupInstance(segment))
            current = rank
        elif level.groups:
            level.groups[-1].members.append(segment)
        else:
            level.top.append(segment)
    return level


def split_at(segments: Sequence[Segment], tag: str) -> list[list[Segment]]:
    """Cut a run of segments before each ``tag`` (the run before the first is dropped)."""
    parts: list[list[Segment]] = []
    for segment in segments:
        if segment.tag == tag:
            parts.append([segment])
        elif parts:
            parts[-1].append(segment)
    return parts
