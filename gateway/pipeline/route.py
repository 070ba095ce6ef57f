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


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule on one message: whether it matched, and each condition as it was found."""

    rule: str
    matched: bool
    conditions: tuple[str, ...]
    deliver: tuple[str, ...]


def explain(table: RoutingTable, message: CanonicalMessage,
            partner_id: str) -> list[RuleVerdict]:
    """Every rule with the conditions that made it match or not (``gateway routes explain``).
    The verdicts agree with ``route`` by construction: ``matched`` is ``matches``."""
    return [
        RuleVerdict(rule.name, matches(rule.match, message, partner_id),
                    tuple(_conditions(rule.match, message, partner_id)), rule.deliver)
        for rule in table.rules
    ]


def _conditions(match: Match, message: CanonicalMessage, partner_id: str) -> list[str]:
    def said(holds: bool, text: str) -> str:
        return f"{'yes' if holds else 'no '} {text}"

    found = []
    if match.kind is not None:
        found.append(said(match.kind == message.kind,
                          f"kind is {match.kind} (message: {message.kind})"))
    if match.message_type is not None:
        found.append(said(match.message_type == message.source.message_type,
                          f"message type is {match.message_type} "
                          f"(message: {message.source.message_type})"))
    if match.partners is not None:
        found.append(said(partner_id in match.partners,
                          f"partner in {', '.join(match.partners)} (message: {partner_id})"))
    if match.hs_chapters is not None:
        wanted = ", ".join(f"{r.first:02d}-{r.last:02d}" for r in match.hs_chapters)
        hits = sorted(c for c in message.hs_chapters
                      if any(r.contains(c) for r in match.hs_chapters))
        chapters = ", ".join(sorted(message.hs_chapters)) or "none"
        found.append(said(bool(hits), f"an HS chapter in {wanted} (message: {chapters}"
                          + (f"; matching {', '.join(hits)})" if hits else ")")))
    if not found:
        found.append("yes every message (no condition)")
    return found
