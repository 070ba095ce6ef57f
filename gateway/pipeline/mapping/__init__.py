"""Message -> canonical model.  One module per message family; ``MAPPERS`` dispatches on
(message type, directory)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.model.canonical import CanonicalMessage
from gateway.model.edifact import Interchange, Message
from gateway.pipeline.mapping.cusdec import map_cusdec

Mapper = Callable[[Interchange, Message], CanonicalMessage]

MAPPERS: dict[tuple[str, str], Mapper] = {
    ("CUSDEC", "D96B"): map_cusdec,
    ("CUSDEC", "D01B"): map_cusdec,
}


def supported_releases(message_type: str) -> list[str]:
    return sorted(release for kind, release in MAPPERS if kind == message_type)
