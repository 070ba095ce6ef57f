"""Routing decisions per second with a 10-rule and a 1,000-rule table, in one process.

    .venv/bin/python bench/routing.py

Rules carry content conditions (HS chapters, commodity code ranges, origins, customs offices,
value thresholds) as selective as a national table's: a declaration matches a handful of rules,
not hundreds (the script prints how many it matched and how many the index made it look at).
Declarations are varied.  Prints decisions/s for each table and the ratio (issue 5's target: at
least 20,000 decisions/s at 1,000 rules on one core, and cost growing well below linearly with
the number of rules).  Figures only: no pass/fail.
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config.routing import RoutingTable
from gateway.model.canonical import Amount, CustomsDeclaration, GoodsItem, Source
from gateway.pipeline.route import route
from gateway.pipeline.route_conditions import Facts
from gateway.pipeline.route_index import index_of

AGENCIES = ["customs", "quarantine", "licensing", "statistics", "health", "environment"]
COUNTRIES = ["NO", "JP", "US", "DE", "VN", "CN", "KR", "TH", "FR", "BR", "IN", "ID", "MY",
             "PH", "AU", "NZ", "CA", "MX", "CL", "PE", "GB", "IT", "ES", "NL", "BE", "PL",
             "TR", "EG", "ZA", "NG", "KE", "AR", "CO", "SA", "AE", "IL", "PK", "BD", "LK",
             "SG"]


def table(size: int, rng: random.Random) -> RoutingTable:
    rules = [{"name": "customs", "match": {"kind": "CustomsDeclaration"},
              "deliver": ["customs"]}]
    for n in range(1, size):
        match: dict[str, object] = {"kind": "CustomsDeclaration"}
        choice = n % 5
        if choice == 0:
            match["hs_chapters"] = [f"{rng.randint(1, 97):02d}"]
            match["origin_countries"] = [rng.choice(COUNTRIES)]
        elif choice == 1:
            start = rng.randint(100, 9800)
            match["commodity_codes"] = [f"{start:04d}-{start + rng.randint(0, 3):04d}"]
        elif choice == 2:
            match["origin_countries"] = [rng.choice(COUNTRIES)]
            match["customs_value_at_least"] = {"amount": rng.randint(1, 20) * 10_000,
                                               "currency": "USD"}
        elif choice == 3:
            match["customs_offices"] = [f"TW{rng.choice(['KHH', 'TPE', 'TXG'])}"]
            match["hs_chapters"] = [f"{rng.randint(1, 97):02d}"]
        else:
            match["hs_chapters"] = [f"{rng.randint(1, 97):02d}"]
            match["customs_value_at_least"] = {"amount": rng.randint(1, 50) * 100_000,
                                               "currency": "USD"}
        rules.append({"name": f"rule-{n}", "match": match, "deliver": [rng.choice(AGENCIES)]})
    return RoutingTable.model_validate({"rules": rules})


def declarations(count: int, rng: random.Random) -> list[CustomsDeclaration]:
    source = Source(syntax="EDIFACT", message_type="CUSDEC", release="D96B", sender="DEMOVAN",
                    recipient="SWGATEWAY", interchange_reference="B", message_reference="1")
    return [CustomsDeclaration(
        source=source, declaration_number=f"D{n}", document_code="929", function="original",
        customs_office=rng.choice(["TWKHH", "TWTPE", "TWTXG"]),
        goods_items=tuple(GoodsItem(
            commodity_code=f"{rng.randint(1, 97):02d}{rng.randrange(10**6):06d}",
            country_of_origin=rng.choice(COUNTRIES),
            amounts=(Amount(qualifier="40", value=Decimal(rng.randint(100, 90_000)),
                            currency="USD"),))
            for _ in range(rng.randint(1, 5)))) for n in range(count)]


def decisions_per_second(routing: RoutingTable, messages: list[CustomsDeclaration]) -> float:
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for message in messages:
            route(routing, message, "demo-van")
        best = max(best, len(messages) / (time.perf_counter() - start))
    return best


def main() -> None:
    rng = random.Random(5)
    messages = declarations(2_000, rng)
    small, large = table(10, rng), table(1_000, rng)
    fast = decisions_per_second(small, messages)
    slow = decisions_per_second(large, messages)
    index = index_of(large)
    looked = sum(len(index.candidates(Facts.of(m))) for m in messages) / len(messages)
    matched = sum(len(route(large, m, "demo-van").rules) for m in messages) / len(messages)
    print(f"1,000 rules: a declaration matches {matched:.1f} rules on average; the index "
          f"has {looked:.1f} of them checked")
    print(f"10 rules:    {fast:10,.0f} decisions/s")
    print(f"1,000 rules: {slow:10,.0f} decisions/s")
    print(f"cost ratio 1,000 vs 10 rules: x{fast / slow:.1f} (linear would be x100)")


if __name__ == "__main__":
    main()
