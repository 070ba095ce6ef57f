"""Decide which agencies receive a canonical message (the routing table is config/routing.py).

Every matching rule adds its agencies; an agency appears once, in first-match order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal

from gateway.config.routing import ChapterRange, CodeRange, Match, RoutingTable
from gateway.model.canonical import CanonicalMessage
from gateway.model.outcome import MessageOutcome
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

    @property
    def routable(self) -> bool:
        return bool(self.agencies)


@dataclass(frozen=True)
class Facts:
    """What routing reads from a message, worked out once per decision (not once per rule)."""

    kind: str
    message_type: str
    function: str | None
    offices: frozenset[str]
    origins: frozenset[str]
    chapters: frozenset[str]
    codes: tuple[str, ...]
    traders: frozenset[str]
    trusted: bool
    message: CanonicalMessage
    _values: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    def of(cls, message: CanonicalMessage, trusted_traders: frozenset[str] = frozenset()
           ) -> Facts:
        traders = message.trader_ids
        return cls(message.kind, message.source.message_type, message.function_name,
                   message.customs_office_codes, message.origin_countries, message.hs_chapters,
                   message.commodity_codes, traders, not traders.isdisjoint(trusted_traders),
                   message)

    def customs_value(self, currency: str) -> Decimal:
        if currency not in self._values:
            self._values[currency] = self.message.customs_value(currency)
        return self._values[currency]


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


def matches(match: Match, message: Facts, partner_id: str) -> bool:
    """All conditions hold.  The same tests ``explain`` reports; their texts are only made
    when explained (this is the hot path)."""
    return all(holds for holds, _ in _tests(match, message, partner_id))


Test = tuple[bool, Callable[[], str]]


def _tests(match: Match, message: Facts, partner_id: str) -> Iterator[Test]:
    """Each condition of ``match`` that is set: whether it holds, and how to say so."""
    if match.kind is not None:
        yield (match.kind == message.kind,
               lambda: f"kind is {match.kind} (message: {message.kind})")
    if match.message_type is not None:
        yield (match.message_type == message.message_type,
               lambda: f"message type is {match.message_type} "
                       f"(message: {message.message_type})")
    if match.partners is not None:
        partners = match.partners
        yield (partner_id in partners,
               lambda: f"partner in {', '.join(partners)} (message: {partner_id})")
    if match.functions is not None:
        functions = match.functions
        yield (message.function in functions,
               lambda: f"function in {', '.join(functions)} (message: {message.function})")
    if match.customs_offices is not None:
        offices, wanted_offices = message.offices, match.customs_offices
        yield (bool(offices.intersection(wanted_offices)),
               lambda: f"customs office in {', '.join(wanted_offices)} "
                       f"(message: {', '.join(sorted(offices)) or 'none'})")
    if match.origin_countries is not None:
        origins, wanted_origins = message.origins, match.origin_countries
        yield (bool(origins.intersection(wanted_origins)),
               lambda: f"an origin in {', '.join(wanted_origins)} "
                       f"(message: {', '.join(sorted(origins)) or 'none'})")
    if match.hs_chapters is not None:
        yield _chapters_test(match.hs_chapters, message.chapters)
    if match.commodity_codes is not None:
        yield _codes_test(match.commodity_codes, message.codes)
    if match.traders is not None:
        traders, wanted_traders = message.traders, match.traders
        yield (not traders.isdisjoint(wanted_traders),
               lambda: f"a trader in {', '.join(wanted_traders)} "
                       f"(message: {', '.join(sorted(traders)) or 'none'})")
    if match.trusted_trader is not None:
        wanted = match.trusted_trader
        yield (message.trusted == wanted,
               lambda: f"trusted trader (AEO) is {str(wanted).lower()} "
                       f"(message: {str(message.trusted).lower()})")
    if match.customs_value_at_least is not None:
        threshold = match.customs_value_at_least
        value = message.customs_value(threshold.currency)
        yield (value >= threshold.amount,
               lambda: f"customs value at least {threshold.amount} {threshold.currency} "
                       f"(message: {value} {threshold.currency})")


def _chapters_test(ranges: tuple[ChapterRange, ...], chapters: frozenset[str]) -> Test:
    hits = sorted(c for c in chapters if any(r.contains(c) for r in ranges))

    def said() -> str:
        wanted = ", ".join(f"{r.first:02d}-{r.last:02d}" for r in ranges)
        found = ", ".join(sorted(chapters)) or "none"
        return f"an HS chapter in {wanted} (message: {found}" + (
            f"; matching {', '.join(hits)})" if hits else ")")

    return bool(hits), said


def _codes_test(ranges: tuple[CodeRange, ...], codes: tuple[str, ...]) -> Test:
    holds = any(r.contains(c) for r in ranges for c in codes)

    def said() -> str:
        wanted = ", ".join(r.first if r.first == r.last else f"{r.first}-{r.last}"
                           for r in ranges)
        return f"a commodity code under {wanted} (message: {', '.join(codes) or 'none'})"

    return holds, said


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
            trusted_traders: frozenset[str] = frozenset()) -> list[RuleVerdict]:
    """Every rule with the conditions that made it match or not (``gateway routes explain``).
    The verdicts agree with ``route`` by construction: ``matched`` is ``matches``."""
    facts = Facts.of(message, trusted_traders)
    return [
        RuleVerdict(rule.name, matches(rule.match, facts, partner_id),
                    tuple(_conditions(rule.match, facts, partner_id)), rule.deliver,
                    rule.copy_to, rule.hold)
        for rule in table.rules
    ]


def _conditions(match: Match, message: Facts, partner_id: str) -> list[str]:
    found = [f"{'yes' if holds else 'no '} {say()}"
             for holds, say in _tests(match, message, partner_id)]
    return found or ["yes every message (no condition)"]


#: What a cancellation is: the canonical message function.
CANCELLATION = "cancellation"
FOLLOWS_ORIGINAL = "(follows the original's route)"


def follow_original(message: MessageOutcome, original: tuple[tuple[str, ...], tuple[str, ...]]
                    ) -> MessageOutcome:
    """A cancellation goes where its original went (agencies and observers), whatever its own
    content would route to: every agency that acted on the declaration must learn it is
    withdrawn, and no other agency needs to."""
    agencies, copies = original
    return replace(message, agencies=agencies, copies=copies,
                   rules=(*message.rules, FOLLOWS_ORIGINAL))


def is_cancellation(message: MessageOutcome) -> bool:
    return message.canonical is not None and message.canonical.function_name == CANCELLATION
