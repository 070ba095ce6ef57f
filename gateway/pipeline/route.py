"""Decide which agencies receive a canonical message (the routing table is config/routing.py).

Every matching rule adds its agencies; an agency appears once, in first-match order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

from gateway.config.routing import RoutingTable
from gateway.model.canonical import CanonicalMessage
from gateway.model.outcome import MessageOutcome
from gateway.pipeline.route_conditions import Facts
from gateway.pipeline.route_index import index_of


@dataclass(frozen=True, slots=True)
class RouteDecision:
    agencies: tuple[str, ...]
    rules: tuple[str, ...]
    #: Observers that get a copy (never an agency that already acts on the message).
    copies: tuple[str, ...] = ()
    #: The rules that hold the message for ops; empty when it goes out at once.
    held_by: tuple[str, ...] = ()
    priority: int | None = None


def route(table: RoutingTable, message: CanonicalMessage, partner_id: str,
          trusted_traders: frozenset[str] = frozenset()) -> RouteDecision:
    """``trusted_traders``: the identifications the trader registry lists as authorised
    economic operators (AEO)."""
    agencies: list[str] = []
    copies: list[str] = []
    rules: list[str] = []
    held_by: list[str] = []
    priority: int | None = None
    facts = Facts.of(message, trusted_traders)
    index = index_of(table)
    for position in index.candidates(facts):
        rule = table.rules[position]
        if index.matches(position, facts, partner_id):
            rules.append(rule.name)
            agencies += [a for a in rule.deliver if a not in agencies]
            copies += [a for a in rule.copy_to if a not in copies]
            if rule.hold:
                held_by.append(rule.name)
            if rule.priority is not None:
                priority = max(priority or 0, rule.priority)
    return RouteDecision(agencies=tuple(agencies), rules=tuple(rules),
                         copies=tuple(a for a in copies if a not in agencies),
                         held_by=tuple(held_by), priority=priority)


def route_on_state(table: RoutingTable, message: CanonicalMessage, partner_id: str,
                   state: str) -> RouteDecision:
    """The rules on a declaration's ``state`` (``match.state``) that hold now its overall
    clearance has become it: the agencies the stored declaration goes on to (issue 15 item 3,
    e.g. a released export declaration to the tax agency for refunds)."""
    facts = Facts.of(message, state=state)
    index = index_of(table)
    agencies: list[str] = []
    copies: list[str] = []
    rules: list[str] = []
    for position, rule in enumerate(table.rules):
        if rule.match.state == state and index.matches(position, facts, partner_id):
            rules.append(rule.name)
            agencies += [a for a in rule.deliver if a not in agencies]
            copies += [a for a in rule.copy_to if a not in copies]
    return RouteDecision(agencies=tuple(agencies), rules=tuple(rules),
                         copies=tuple(a for a in copies if a not in agencies))


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule on one message: whether it matched, and each condition as it was found."""

    rule: str
    matched: bool
    conditions: tuple[str, ...]
    deliver: tuple[str, ...]
    copy_to: tuple[str, ...] = ()
    hold: bool = False


def explain(table: RoutingTable, message: CanonicalMessage, partner_id: str,
            trusted_traders: frozenset[str] = frozenset(),
            state: str | None = None) -> list[RuleVerdict]:
    """Every rule with the conditions that made it match or not (``gateway routes explain``),
    judged by the very conditions ``route`` uses; with ``state``, as when the declaration's
    clearance becomes it (the rules on a state)."""
    facts = Facts.of(message, trusted_traders, state)
    index = index_of(table)
    verdicts = []
    for position, rule in enumerate(table.rules):
        found = [(c.check(facts, partner_id), c.say(facts, partner_id))
                 for c in index.conditions[position]]
        lines = tuple(f"{'yes' if holds else 'no '} {text}" for holds, text in found) or (
            "yes every message (no condition)",)
        verdicts.append(RuleVerdict(rule.name, all(holds for holds, _ in found), lines,
                                    rule.deliver, rule.copy_to, rule.hold))
    return verdicts


#: What a cancellation is: the canonical message function.
CANCELLATION = "cancellation"
REPLACEMENT = "replacement"
FOLLOWS_ORIGINAL = "(follows the original's route)"


#: A route as the processor decides it (MessageOutcome) or ``gateway replay`` does again.
Routed = TypeVar("Routed", MessageOutcome, RouteDecision)


def follow_original(routed: Routed, original: tuple[tuple[str, ...], tuple[str, ...]]
                    ) -> Routed:
    """A cancellation goes where its original went (agencies and observers), whatever its own
    content would route to: every agency that acted on the declaration must learn it is
    withdrawn, and no other agency needs to."""
    agencies, copies = original
    return replace(routed, agencies=agencies, copies=copies,
                   rules=(*routed.rules, FOLLOWS_ORIGINAL))


def is_cancellation(message: CanonicalMessage) -> bool:
    return message.function_name == CANCELLATION
