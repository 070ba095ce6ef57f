"""Typed message structures, segments and code lists of a UN/EDIFACT directory, and their JSON
form (the files under ``schemas/edifact``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# ISO 9735's own (the envelope reader's service segments have one too): named here with the
# specs that hold it.
from gateway.model.edifact import Representation as Representation


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    id: str
    name: str
    mandatory: bool
    representation: Representation


@dataclass(frozen=True, slots=True)
class ElementSpec:
    """A stand-alone data element (``representation``) or a composite (``components``)."""

    id: str
    name: str
    mandatory: bool
    repeat: int
    representation: Representation | None = None
    components: tuple[ComponentSpec, ...] = ()

    @property
    def composite(self) -> bool:
        return bool(self.components)


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    tag: str
    name: str
    elements: tuple[ElementSpec, ...]


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A segment's place in a message: mandatory or not, how often."""

    tag: str
    mandatory: bool
    repeat: int


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    mandatory: bool
    repeat: int
    content: tuple[SegmentRef | GroupSpec, ...]

    @property
    def trigger(self) -> str:
        """The segment that opens the group (its first, always mandatory)."""
        first = self.content[0]
        assert isinstance(first, SegmentRef)
        return first.tag


@dataclass(frozen=True, slots=True)
class MessageSpec:
    type: str
    version: str
    release: str
    agency: str
    content: tuple[SegmentRef | GroupSpec, ...]


# --- JSON ----------------------------------------------------------------------------------


def representation_json(r: Representation | None) -> str | None:
    return None if r is None else str(r)


def segment_json(spec: SegmentSpec) -> dict[str, Any]:
    return {"name": spec.name, "elements": [_element_json(e) for e in spec.elements]}


def _element_json(e: ElementSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"id": e.id, "name": e.name, "mandatory": e.mandatory,
                            "repeat": e.repeat}
    if e.composite:
        data["components"] = [
            {"id": c.id, "name": c.name, "mandatory": c.mandatory,
             "representation": str(c.representation)} for c in e.components]
    else:
        data["representation"] = representation_json(e.representation)
    return data


def segment_from_json(tag: str, data: dict[str, Any]) -> SegmentSpec:
    return SegmentSpec(tag, data["name"], tuple(_element_from_json(e) for e in data["elements"]))


def _element_from_json(data: dict[str, Any]) -> ElementSpec:
    components = tuple(
        ComponentSpec(c["id"], c["name"], c["mandatory"],
                      Representation.parse(c["representation"]))
        for c in data.get("components", ()))
    representation = data.get("representation")
    return ElementSpec(data["id"], data["name"], data["mandatory"], data["repeat"],
                       Representation.parse(representation) if representation else None,
                       components)


def message_json(spec: MessageSpec) -> dict[str, Any]:
    return {"type": spec.type, "version": spec.version, "release": spec.release,
            "agency": spec.agency, "content": [_node_json(n) for n in spec.content]}


def _node_json(node: SegmentRef | GroupSpec) -> dict[str, Any]:
    if isinstance(node, SegmentRef):
        return {"segment": node.tag, "mandatory": node.mandatory, "repeat": node.repeat}
    return {"group": node.name, "mandatory": node.mandatory, "repeat": node.repeat,
            "content": [_node_json(n) for n in node.content]}


def message_from_json(data: dict[str, Any]) -> MessageSpec:
    return MessageSpec(data["type"], data["version"], data["release"], data["agency"],
                       tuple(_node_from_json(n) for n in data["content"]))


def _node_from_json(data: dict[str, Any]) -> SegmentRef | GroupSpec:
    if "segment" in data:
        return SegmentRef(data["segment"], data["mandatory"], data["repeat"])
    return GroupSpec(data["group"], data["mandatory"], data["repeat"],
                     tuple(_node_from_json(n) for n in data["content"]))
