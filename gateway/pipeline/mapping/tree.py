"""A message's segments arranged as its directory structure says: the message level, and each
segment group instance with its own segments and nested groups (ISO 9735-1 clause 7.2).

The walk is the validator's greedy one (a segment goes to the first place at or after the
current one that takes its tag; a group's trigger opens a new instance) without the counting:
the mapper only runs on messages the validator has accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.catalog.specs import GroupSpec, SegmentRef
from gateway.model.arranged import Instance
from gateway.model.edifact import Segment

Node = SegmentRef | GroupSpec


@dataclass(frozen=True, slots=True)
class LevelPlan:
    """For one level: where each tag may go (entry indexes in order), and what each entry is
    (``None`` for a segment, the nested level for a group)."""

    places: dict[str, tuple[int, ...]]
    groups: tuple[tuple[str, LevelPlan] | None, ...]
    #: (current entry, tag) -> (the entry the tag goes to or -1, the group it opens): learnt
    #: while arranging, so each step of a message is one dictionary look-up.
    memo: dict[tuple[int, str], tuple[int, tuple[str, LevelPlan] | None]] = field(
        default_factory=dict, compare=False)

    def place(self, at: int, tag: str) -> tuple[int, tuple[str, LevelPlan] | None]:
        key = (at, tag)
        found = self.memo.get(key)
        if found is None:
            index = next((i for i in self.places.get(tag, ()) if i >= at), -1)
            found = (index, self.groups[index] if index >= 0 else None)
            self.memo[key] = found
        return found

    @classmethod
    def of(cls, content: tuple[Node, ...], trigger_skipped: bool) -> LevelPlan:
        places: dict[str, list[int]] = {}
        groups: list[tuple[str, LevelPlan] | None] = []
        for index, node in enumerate(content):
            if isinstance(node, SegmentRef):
                places.setdefault(node.tag, []).append(index)
                groups.append(None)
            else:
                places.setdefault(node.trigger, []).append(index)
                groups.append((node.name, cls.of(node.content, trigger_skipped=True)))
        if trigger_skipped and content:
            # The trigger is placed when its instance opens; inside, it only opens anew.
            first = content[0]
            assert isinstance(first, SegmentRef)
            places[first.tag] = [i for i in places[first.tag] if i != 0]
        return cls({tag: tuple(i) for tag, i in places.items()}, tuple(groups))


def arrange(segments: Sequence[Segment], plan: LevelPlan) -> Instance:
    root = Instance()
    stack: list[tuple[Instance, LevelPlan, int]] = [(root, plan, 0)]
    for segment in segments:
        tag = segment.tag
        while True:
            instance, level, at = stack[-1]
            index, group = level.memo.get((at, tag)) or level.place(at, tag)
            if index < 0 and len(stack) > 1:
                stack.pop()
                continue
            if index < 0:  # not where the structure puts it: keep it at the top
                instance.segments.setdefault(tag, []).append(segment)
                break
            if index != at:
                stack[-1] = (instance, level, index)
            if group is None:
                same = instance.segments.get(tag)
                if same is None:
                    instance.segments[tag] = [segment]
                else:
                    same.append(segment)
            else:
                name, nested = group
                opened = Instance(segments={tag: [segment]}, trigger=segment)
                instance.groups.setdefault(name, []).append(opened)
                stack.append((opened, nested, 1))
            break
    return root
