"""What a new routing table would change, replayed over stored messages: for each agency, the
messages one table delivers to it and the other does not (``gateway routes diff`` and the
console's routing proposals).  Pure: the messages are given, nothing is read or written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.config.routing import RoutingTable
from gateway.model.canonical import CANONICAL_ADAPTER
from gateway.pipeline.route import route

#: References kept per agency and direction (the counts are always whole).
SAMPLE = 5


@dataclass
class RoutingDiff:
    replayed: int = 0
    #: agency -> references of the messages it would receive and did not.
    gained: dict[str, list[str]] = field(default_factory=dict)
    #: agency -> references of the messages it received and would not.
    lost: dict[str, list[str]] = field(default_factory=dict)
    #: Messages routed somewhere before and nowhere now (they would be parked as unroutable).
    unroutable: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.gained or self.lost)


def replay(old: RoutingTable, new: RoutingTable,
           stored: Iterable[tuple[str, str]]) -> RoutingDiff:
    """``stored``: (partner id, canonical JSON) of each message, as store.interchanges'
    recent_canonical gives them."""
    gained: dict[str, list[str]] = defaultdict(list)
    lost: dict[str, list[str]] = defaultdict(list)
    diff = RoutingDiff()
    for partner_id, text in stored:
        message = CANONICAL_ADAPTER.validate_json(text)
        before = route(old, message, partner_id)
        after = route(new, message, partner_id)
        reference = message.document_reference or message.source.message_reference
        for agency in sorted(set(after.agencies) - set(before.agencies)):
            gained[agency].append(reference)
        for agency in sorted(set(before.agencies) - set(after.agencies)):
            lost[agency].append(reference)
        if (before.agencies or before.copies) and not (after.agencies or after.copies):
            diff.unroutable.append(reference)
        diff.replayed += 1
    diff.gained, diff.lost = dict(sorted(gained.items())), dict(sorted(lost.items()))
    return diff


def summary(references: list[str]) -> str:
    """``3 messages (A, B, C)``, at most SAMPLE references named."""
    sample = ", ".join(references[:SAMPLE]) + (" ..." if len(references) > SAMPLE else "")
    return f"{len(references)} message{'s' if len(references) != 1 else ''} ({sample})"
