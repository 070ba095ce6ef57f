"""Decide which agencies receive a canonical message (the routing table is config/routing.py).

Every matching rule adds its agencies; an agency appears once, in first-match order.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.routing import Match, RoutingTable
from gateway.model.canonical import CanonicalMessage


@dataclass(frozen=True, slots=True)
class RouteDecision:
    agencies: tuple[str, ...]
    rules: tuple[str, ...]

    @property
    def routable(self) -> bool:
        return bool(self.agencies)


def route(table: RoutingTable, message: CanonicalMessage, partner_id: str) -> RouteDecision:
    agencies: list[str] = []
    rules: list[str] = []
    for rule in table.rules:
        if matches(rule.match, message, partner_id):
            rules.append(rule.name)
            agencies += [a for a in rule.deliver if a not in agencies]
    return RouteDecision(agencies=tuple(agencies), rules=tuple(rules))


def matches(match: Match, message: CanonicalMessage, partner_id: str) -> bool:
    if match.kind is not None and match.kind != message.kind:
        return False
    if match.message_type is not None and match.message_type != message.source.message_type:
        return False
    if match.partners is not None and partner_id not in match.partners:
        return False
    if match.hs_chapters is not None:
        return any(r.contains(c) for r in match.hs_chapters for c in message.hs_chapters)
    return True
