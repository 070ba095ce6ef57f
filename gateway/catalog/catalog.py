"""The schemas of ``schemas/edifact`` compiled once at start-up into what the validator walks.

Pure: the caller hands in a function that returns a schema file's text by its relative path
(``D96B/messages/CUSDEC.json``), so no file is opened here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.catalog.specs import (
    GroupSpec,
    MessageSpec,
    SegmentRef,
    SegmentSpec,
    message_from_json,
    segment_from_json,
)

ReadText = Callable[[str], str]
Node = SegmentRef | GroupSpec


@dataclass(frozen=True, slots=True)
class Level:
    """One level of a message structure with each node's key: its tag or group trigger."""

    nodes: tuple[Node, ...]
    keys: tuple[str, ...]
    children: tuple[Level | None, ...]

    @classmethod
    def of(cls, nodes: tuple[Node, ...]) -> Level:
        return cls(
            nodes=nodes,
            keys=tuple(n.tag if isinstance(n, SegmentRef) else n.trigger for n in nodes),
            children=tuple(None if isinstance(n, SegmentRef) else cls.of(n.content[1:])
                           for n in nodes),
        )


@dataclass(frozen=True)
class CompiledMessage:
    spec: MessageSpec
    root: Level
    segments: dict[str, SegmentSpec]
    codes: dict[str, frozenset[str]]
    tags: frozenset[str] = field(default_factory=frozenset)
    #: What a stage derives from this message once and keeps (e.g. the validator's tables).
    derived: dict[object, Any] = field(default_factory=dict, compare=False)


@dataclass
class Catalog:
    """Message structures by (type, directory), e.g. ("CUSDEC", "D96B")."""

    messages: dict[tuple[str, str], CompiledMessage] = field(default_factory=dict)

    def message(self, message_type: str, directory: str) -> CompiledMessage | None:
        return self.messages.get((message_type, directory))

    def releases_of(self, message_type: str) -> list[str]:
        return sorted(release for kind, release in self.messages if kind == message_type)

    @classmethod
    def load(cls, read: ReadText, releases: dict[str, tuple[str, ...]],
             service_version: str = "4") -> Catalog:
        """``releases`` maps a directory (D96B) to the message types to compile.  Messages use
        the syntax 4 service segments (UNH, UNS, UNT), a superset of syntax 3's.  The service
        messages (CONTRL) of syntax 3 and 4 are compiled too, under their own directory
        (``D3`` for CONTRL:D:3, ``41`` for CONTRL:4:1)."""
        catalog = cls()
        service: dict[str, tuple[dict[str, SegmentSpec], dict[str, frozenset[str]]]] = {}
        for version in SERVICE_VERSIONS:
            segments = _segments(read(f"service/{version}/segments.json"))
            codes = _codes(read(f"service/{version}/codes.json"))
            service[version] = (segments, codes)
            catalog._add(_message(read, f"service/{version}/messages/CONTRL.json"),
                         segments, codes)
        message_segments, message_codes = service[service_version]
        for release, types in releases.items():
            segments = {**_segments(read(f"{release}/segments.json")),
                        **_service_only(message_segments)}
            codes = {**_codes(read(f"{release}/codes.json")), **message_codes}
            for message_type in types:
                catalog._add(_message(read, f"{release}/messages/{message_type}.json"),
                             segments, codes, directory=release)
        return catalog

    def _add(self, spec: MessageSpec, segments: dict[str, SegmentSpec],
             codes: dict[str, frozenset[str]], directory: str | None = None) -> None:
        """Compile a message under (type, directory); a service message's directory is its
        version and release (CONTRL:D:3 -> D3)."""
        key = (spec.type, directory or f"{spec.version}{spec.release}")
        self.messages[key] = CompiledMessage(spec, Level.of(spec.content), segments, codes,
                                             frozenset(_tags(spec.content)))


def _message(read: ReadText, path: str) -> MessageSpec:
    return message_from_json(json.loads(read(path)))


SERVICE_VERSIONS = ("3", "4")


def _segments(text: str) -> dict[str, SegmentSpec]:
    data: dict[str, Any] = json.loads(text)
    return {tag: segment_from_json(tag, value) for tag, value in data.items()}


def _service_only(service: dict[str, SegmentSpec]) -> dict[str, SegmentSpec]:
    """UNH, UNT, UNS ...: the service segments a message body may hold."""
    return {tag: spec for tag, spec in service.items() if tag.startswith("U")}


#: UNH S009 values (message type, version, release, agency) are checked against the catalog
#: itself; the service code lists only know the releases of their own year.
_CHECKED_BY_CATALOG = frozenset({"0065", "0052", "0054", "0051"})


def _codes(text: str) -> dict[str, frozenset[str]]:
    data: dict[str, list[str]] = json.loads(text)
    return {element: frozenset(values) for element, values in data.items()
            if element not in _CHECKED_BY_CATALOG}


def _tags(nodes: tuple[Node, ...]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, SegmentRef):
            found.add(node.tag)
        else:
            found |= _tags(node.content)
    return found
