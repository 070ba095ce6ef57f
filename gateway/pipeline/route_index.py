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
from dataclasses import dataclass, field

from gateway.config.routing import Match, RoutingTable
from gateway.pipeline.route_conditions import Facts, compile_match

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


class RouteIndex:
    def __init__(self, table: RoutingTable) -> None:
        self._buckets: dict[str, _Bucket] = defaultdict(_Bucket)
        #: Each rule's conditions, in table order (``route`` and ``explain`` both use them).
        self.conditions = tuple(compile_match(rule.match) for rule in table.rules)
        for position, rule in enumerate(table.rules):
            self._buckets[rule.match.kind or ANY_KIND].add(position, rule.match)

    def matches(self, position: int, facts: Facts, partner_id: str) -> bool:
        for check, _ in self.conditions[position]:  # noqa: SIM110 - a plain loop: hot path
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
