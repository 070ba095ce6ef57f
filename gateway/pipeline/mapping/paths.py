"""EDIFACT paths of the mapping language, parsed and resolved against a message structure.

A path walks from where it stands (the message, a segment group instance or a segment) down
to what it names::

    SG30/CST/C246#2/7361          the 2nd C246 of CST in each goods item (SG30), its 7361
    SG6/NAD[3035=DT|DE]/C082/3039 the party identification of the declarant's NAD
    MEA[6313=G]                   the MEA segments whose C502 6313 is G

Steps are group names (``SG6``), segment tags, and data element ids (simple ``3035`` or
composite ``C082``), ``#n`` for the n-th of the same id (CST repeats C246 five times).  A
condition ``[element=code|code, ...]`` on a segment checks its own elements; on a group it
checks the group's trigger segment (ISO 9735-1 clause 7.2: the first segment opens the group).
Resolving a path checks each step against the directory: a group that is not a child of the
current level, a segment that does not stand at that level, an element the segment does not
have, is an error saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from gateway.catalog.specs import (
    ComponentSpec,
    ElementSpec,
    GroupSpec,
    Representation,
    SegmentRef,
    SegmentSpec,
)
from gateway.model.numbers import parse_count

Node = SegmentRef | GroupSpec

# ASCII digits ("\d" takes any script's) and whole texts (fullmatch: "$" also matches before a
# final newline); #n counts from 1.
_STEP = re.compile(r"(?P<name>SG[0-9]+|[A-Z]{3}|[CSE][0-9]{3}|[0-9]{4})"
                   r"(?:#(?P<nth>[1-9][0-9]*))?(?:\[(?P<conditions>[^\]]+)\])?")
_CONDITION = re.compile(r"(?P<element>[A-Z0-9#/]+)=(?P<codes>[^|=]+(?:\|[^|=]+)*)")


class PathError(ValueError):
    """A path that does not parse or does not exist in the message structure."""


# --- what a resolved path says ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """A value inside a segment: 1-based data element and component (ISO 9735-4 0098)."""

    element: int
    component: int
    id: str
    representation: Representation | None
    #: For ``join``: the positions of every same-id component of the element (C108 4440 x5).
    siblings: tuple[int, ...] = ()
    #: Index of the value among the segment's components laid flat (``extract.py``).
    flat: int = 0


@dataclass(frozen=True, slots=True)
class Condition:
    position: Position
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """A group or segment step; ``conditions`` apply to the segment (a group's trigger)."""

    group: bool
    name: str
    conditions: tuple[Condition, ...] = ()
    #: A group's trigger segment (rendering opens an instance with it).
    trigger: str | None = None


@dataclass(frozen=True, slots=True)
class GroupScope:
    name: str
    content: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class SegmentScope:
    spec: SegmentSpec


Scope = GroupScope | SegmentScope


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where a path leads: through ``steps`` to a scope (``end``), and to a value position
    inside the last segment when the path goes that far."""

    steps: tuple[Step, ...]
    end: Scope
    value: Position | None


# --- parsing and resolving -------------------------------------------------------------------


def resolve(text: str, scope: Scope, segments: dict[str, SegmentSpec]) -> Resolved:
    parts = _split(text)
    steps: list[Step] = []
    current = scope
    index = 0
    while index < len(parts) and isinstance(current, GroupScope):
        name, nth, conditions = _parse_step(parts[index], text)
        step, current = _descend(current, name, nth, conditions, segments, text)
        if steps and steps[-1].group and steps[-1].trigger == step.name:
            # SG6/NAD[3035=DT]: the condition picks the group instance by its trigger, so
            # rendering opens one SG6 whose NAD says DT (not a second NAD in it).
            group = steps[-1]
            steps[-1] = replace(group, conditions=group.conditions + step.conditions)
        steps.append(step)
        index += 1
    value = None
    if index < len(parts):
        assert isinstance(current, SegmentScope)
        value = _element(current.spec, parts[index:], text)
    return Resolved(tuple(steps), current, value)


def element_position(spec: SegmentSpec, text: str) -> Position:
    """An element path inside one segment (``C082/3039``, ``3035``, ``C246#2/7361``)."""
    return _element(spec, _split(text), text)


def _split(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "/" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if depth or any(not p.strip() for p in parts):
        raise PathError(f"path {text!r} does not parse (empty step or unbalanced [ ])")
    return [p.strip() for p in parts]


def _parse_step(part: str, text: str) -> tuple[str, int, list[tuple[str, tuple[str, ...]]]]:
    found = _STEP.fullmatch(part)
    if not found:
        raise PathError(f"path {text!r}: {part!r} is not a group (SG6), segment tag (NAD) or "
                        "data element id (C082, 3035), with #n and [element=code|code]")
    conditions = []
    for item in (found.group("conditions") or "").split(","):
        if not item.strip():
            continue
        condition = _CONDITION.fullmatch(item.strip())
        if not condition:
            raise PathError(f"path {text!r}: condition {item!r} is not element=code|code")
        codes = tuple(c.strip() for c in condition.group("codes").split("|"))
        conditions.append((condition.group("element"), codes))
    return (*_id_and_nth(part.partition("[")[0], text), conditions)


def _descend(scope: GroupScope, name: str, nth: int,
             conditions: list[tuple[str, tuple[str, ...]]],
             segments: dict[str, SegmentSpec], text: str) -> tuple[Step, Scope]:
    if nth != 1:
        raise PathError(f"path {text!r}: #n counts data elements, not groups or segments")
    if name.startswith("SG"):
        group = next((n for n in scope.content
                      if isinstance(n, GroupSpec) and n.name == name), None)
        if group is None:
            raise PathError(f"path {text!r}: {name} is not a segment group of "
                            f"{_where(scope)} (it has {_children(scope) or 'none'})")
        trigger = segments[group.trigger]
        return (Step(True, name, _conditions(trigger, conditions, text), group.trigger),
                GroupScope(name, group.content))
    if not name.isalpha():
        raise PathError(f"path {text!r}: {name} is a data element; name its segment first")
    here = any(isinstance(n, SegmentRef) and n.tag == name for n in scope.content)
    if not here:
        nested = next((n.name for n in scope.content
                       if isinstance(n, GroupSpec) and n.trigger == name), None)
        hint = f"; it opens {nested}: write {nested}/{name}" if nested else ""
        raise PathError(f"path {text!r}: segment {name} does not stand in "
                        f"{_where(scope)}{hint}")
    spec = segments[name]
    return Step(False, name, _conditions(spec, conditions, text)), SegmentScope(spec)


def _conditions(spec: SegmentSpec, conditions: list[tuple[str, tuple[str, ...]]],
                text: str) -> tuple[Condition, ...]:
    return tuple(Condition(_element(spec, _split(element), text), codes)
                 for element, codes in conditions)


def _element(spec: SegmentSpec, parts: list[str], text: str) -> Position:
    """Find ``parts`` (an element id, then a component id for a composite) in ``spec``; a
    simple element id that stands only inside one composite may be named alone (6313)."""
    if len(parts) > 2:
        raise PathError(f"path {text!r}: too many steps after segment {spec.tag}")
    first, nth = _id_and_nth(parts[0], text)
    matches = [i for i, e in enumerate(spec.elements, start=1) if e.id == first]
    if len(matches) >= nth:
        index = matches[nth - 1]
        element = spec.elements[index - 1]
        if len(parts) == 1:
            if element.composite:
                raise PathError(f"path {text!r}: {first} is a composite; name a component "
                                f"({', '.join(c.id for c in element.components)})")
            return Position(index, 1, element.id, element.representation, (1,),
                            flat_width(spec, index))
        return _component(spec, index, element, parts[1], text)
    if len(parts) == 1 and nth == 1:
        inside = [(i, e) for i, e in enumerate(spec.elements, start=1)
                  if any(c.id == first for c in e.components)]
        if len(inside) == 1:
            index, element = inside[0]
            return _component(spec, index, element, first, text)
        if len(inside) > 1:
            raise PathError(f"path {text!r}: {first} stands in several composites of "
                            f"{spec.tag}; name the composite")
    raise PathError(f"path {text!r}: segment {spec.tag} has no data element {parts[0]} "
                    f"(it has {', '.join(e.id for e in spec.elements)})")


def _component(spec: SegmentSpec, index: int, element: ElementSpec, part: str,
               text: str) -> Position:
    wanted, nth = _id_and_nth(part, text)
    matches = [i for i, c in enumerate(element.components, start=1) if c.id == wanted]
    if len(matches) < nth:
        raise PathError(f"path {text!r}: {spec.tag} {element.id} has no component {part} "
                        f"(it has {', '.join(c.id for c in element.components)})")
    component: ComponentSpec = element.components[matches[nth - 1] - 1]
    return Position(index, matches[nth - 1], wanted, component.representation,
                    tuple(matches), flat_width(spec, index) + matches[nth - 1] - 1)


def flat_width(spec: SegmentSpec, element: int) -> int:
    """How many values stand before data element ``element`` (1-based) when a segment's
    components are laid flat in specification order."""
    return sum(max(1, len(e.components)) for e in spec.elements[:element - 1])


def _id_and_nth(part: str, text: str) -> tuple[str, int]:
    name, _, nth = part.partition("#")
    count = parse_count(nth) if nth else 1
    if not count:  # None (not 0-9) or 0 (#n counts from 1)
        raise PathError(f"path {text!r}: {part!r}: #n takes a number from 1")
    return name, count


def _where(scope: GroupScope) -> str:
    return "the message level" if scope.name == "message" else scope.name


def _children(scope: GroupScope) -> str:
    return ", ".join(n.name if isinstance(n, GroupSpec) else n.tag for n in scope.content)
