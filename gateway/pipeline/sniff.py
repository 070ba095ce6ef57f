"""Tell what a submission is before any parser sees it."""

from __future__ import annotations

from enum import StrEnum

from gateway.wire.edifact.syntax import BYTE_ORDER_MARK


class Syntax(StrEnum):
    EDIFACT = "EDIFACT"
    XML = "XML"
    UNKNOWN = "unknown"


def sniff(data: bytes) -> Syntax:
    head = data.removeprefix(BYTE_ORDER_MARK).lstrip(b"\r\n\t ")[:3]
    if head in (b"UNA", b"UNB"):
        return Syntax.EDIFACT
    if head.startswith(b"<"):
        return Syntax.XML
    return Syntax.UNKNOWN
