"""Decide which agencies receive a canonical message (the routing table is config/routing.py).

Every matching rule adds its agencies; an agency appears once, in first-match order.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    """All conditions hold (cheapest first; the same tests ``explain`` reports)."""
    return all(holds for holds, _ in _tests(match, message, partner_id))


def _tests(match: Match, message: CanonicalMessage,
           partner_id: str) -> Iterator[tuple[bool, str]]:
    """Each condition of ``match`` that is set: whether it holds, and how it was found."""
    if match.kind is not None:
        yield match.kind == message.kind, f"kind is {match.kind} (message: {message.kind})"
    if match.message_type is not None:
        yield (match.message_type == message.source.message_type,
               f"message type is {match.message_type} "
               f"(message: {message.source.message_type})")
    if match.partners is not None:
        yield (partner_id in match.partners,
               f"partner in {', '.join(match.partners)} (message: {partner_id})")
    if match.functions is not None:
        yield (message.function_name in match.functions,
               f"function in {', '.join(match.functions)} (message: {message.function_name})")
    if match.customs_offices is not None:
        offices = message.customs_office_codes
        yield (bool(offices & set(match.customs_offices)),
               f"customs office in {', '.join(match.customs_offices)} "
               f"(message: {', '.join(sorted(offices)) or 'none'})")
    if match.origin_countries is not None:
        origins = message.origin_countries
        yield (bool(origins & set(match.origin_countries)),
               f"an origin in {', '.join(match.origin_countries)} "
               f"(message: {', '.join(sorted(origins)) or 'none'})")
    if match.hs_chapters is not None:
        wanted = ", ".join(f"{r.first:02d}-{r.last:02d}" for r in match.hs_chapters)
        hits = sorted(c for c in message.hs_chapters
                      if any(r.contains(c) for r in match.hs_chapters))
        chapters = ", ".join(sorted(message.hs_chapters)) or "none"
        yield bool(hits), (f"an HS chapter in {wanted} (message: {chapters}"
                           + (f"; matching {', '.join(hits)})" if hits else ")"))
    if match.commodity_codes is not None:
        wanted = ", ".join(r.first if r.first == r.last else f"{r.first}-{r.last}"
                           for r in match.commodity_codes)
        hits = [c for c in message.commodity_codes
                if any(r.contains(c) for r in match.commodity_codes)]
        yield bool(hits), (f"a commodity code under {wanted} (message: "
                           f"{', '.join(message.commodity_codes) or 'none'})")
    if match.customs_value_at_least is not None:
        threshold = match.customs_value_at_least
        value = message.customs_value(threshold.currency)
        yield (value >= threshold.amount,
               f"customs value at least {threshold.amount} {threshold.currency} "
               f"(message: {value} {threshold.currency})")


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
    found = [f"{'yes' if holds else 'no '} {text}"
             for holds, text in _tests(match, message, partner_id)]
    return found or ["yes every message (no condition)"]
