"""An index over a routing table, so that a decision looks at the rules that can match a
message rather than at every rule.

Each rule gets one anchor: a condition every match must meet that a message's values can be
looked up by: its HS chapters (from ``hs_chapters`` or the chapters a ``commodity_codes`` range
spans), an origin country, or a customs office; rules without one are always candidates.
Rules are also split by ``kind``.  The candidates of a message are the union of its lookups,
checked in table order with the full conditions, so the index changes speed, never results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.config.routing import Match, RoutingTable

if TYPE_CHECKING:  # the facts type lives with the router, which imports this module
    from gateway.pipeline.route import Facts

ANY_KIND = "*"


@dataclass
class _Bucket:
    always: list[int] = field(default_factory=list)
    by_chapter: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_origin: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_office: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, position: int, match: Match) -> None:
        chapters = _chapters(match)
        if chapters is not None:
            for chapter in chapters:
                self.by_chapter[chapter].append(position)
        elif match.origin_countries is not None:
            for country in match.origin_countries:
                self.by_origin[country].append(position)
        elif match.customs_offices is not None:
            for office in match.customs_offices:
                self.by_office[office].append(position)
        else:
            self.always.append(position)

    def candidates(self, facts: Facts) -> set[int]:
        found = set(self.always)
        for chapter in facts.chapters:
            found.update(self.by_chapter.get(chapter, ()))
        for country in facts.origins:
            found.update(self.by_origin.get(country, ()))
        for office in facts.offices:
            found.update(self.by_office.get(office, ()))
        return found


def _chapters(match: Match) -> set[str] | None:
    """The HS chapters a match requires one of, when it names any (else None)."""
    if match.hs_chapters is not None:
        return {f"{c:02d}" for r in match.hs_chapters for c in range(r.first, r.last + 1)}
    if match.commodity_codes is not None:
        chapters: set[str] = set()
        for r in match.commodity_codes:
            if len(r.first) < 2:
                return None  # a one-digit prefix spans many chapters: no anchor
            chapters |= {f"{c:02d}" for c in range(int(r.first[:2]), int(r.last[:2]) + 1)}
        return chapters
    return None


Check = Callable[["Facts", str], bool]


def compile_match(match: Match) -> tuple[Check, ...]:
    """The conditions of a rule as small predicates, cheapest first: the hot path's version
    of ``route._tests`` (which also says why, for ``explain``); a property test keeps the two
    in agreement."""
    checks: list[Check] = []
    if match.kind is not None:
        kind = match.kind
        checks.append(lambda facts, _partner: facts.kind == kind)
    if match.message_type is not None:
        message_type = match.message_type
        checks.append(lambda facts, _partner: facts.message_type == message_type)
    if match.partners is not None:
        partners = frozenset(match.partners)
        checks.append(lambda _facts, partner: partner in partners)
    if match.functions is not None:
        functions = frozenset(match.functions)
        checks.append(lambda facts, _partner: facts.function in functions)
    if match.customs_offices is not None:
        offices = frozenset(match.customs_offices)
        checks.append(lambda facts, _partner: not offices.isdisjoint(facts.offices))
    if match.origin_countries is not None:
        origins = frozenset(match.origin_countries)
        checks.append(lambda facts, _partner: not origins.isdisjoint(facts.origins))
    if match.hs_chapters is not None:
        chapters = frozenset(f"{c:02d}" for r in match.hs_chapters
                             for c in range(r.first, r.last + 1))
        checks.append(lambda facts, _partner: not chapters.isdisjoint(facts.chapters))
    if match.commodity_codes is not None:
        ranges = match.commodity_codes
        checks.append(lambda facts, _partner: any(
            r.contains(code) for r in ranges for code in facts.codes))
    if match.traders is not None:
        traders = frozenset(match.traders)
        checks.append(lambda facts, _partner: not traders.isdisjoint(facts.traders))
    if match.trusted_trader is not None:
        trusted = match.trusted_trader
        checks.append(lambda facts, _partner: facts.trusted == trusted)
    if match.customs_value_at_least is not None:
        amount = match.customs_value_at_least.amount
        currency = match.customs_value_at_least.currency
        checks.append(lambda facts, _partner: facts.customs_value(currency) >= amount)
    return tuple(checks)


class RouteIndex:
    def __init__(self, table: RoutingTable) -> None:
        self._buckets: dict[str, _Bucket] = defaultdict(_Bucket)
        self.checks = tuple(compile_match(rule.match) for rule in table.rules)
        for position, rule in enumerate(table.rules):
            self._buckets[rule.match.kind or ANY_KIND].add(position, rule.match)

    def matches(self, position: int, facts: Facts, partner_id: str) -> bool:
        for check in self.checks[position]:  # noqa: SIM110 - a plain loop: the hot path
            if not check(facts, partner_id):
                return False
        return True

    def candidates(self, facts: Facts) -> list[int]:
        """Positions of the rules that may match, in table order."""
        found: set[int] = set()
        for kind in (facts.kind, ANY_KIND):
            bucket = self._buckets.get(kind)
            if bucket is not None:
                found |= bucket.candidates(facts)
        return sorted(found)


def index_of(table: RoutingTable) -> RouteIndex:
    """The table's index, built on first use and kept with the table."""
    index = table.derived.get("index")
    if not isinstance(index, RouteIndex):
        index = RouteIndex(table)
        table.derived["index"] = index
    return index
