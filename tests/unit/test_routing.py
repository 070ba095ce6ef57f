"""The routing language: content conditions, named lists, strict loading, explanations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.load import parse_routing
from gateway.config.routing import RoutingTable
from gateway.errors import ConfigError
from gateway.model.canonical import CustomsDeclaration
from gateway.pipeline.process import process_submission
from gateway.pipeline.route import explain, route
from tests.support.edifact import cusdec_message, interchange
from tests.support.pipeline import demo_context

AGENCIES = ("customs", "quarantine", "licensing", "statistics")


def table(text: str) -> RoutingTable:
    return parse_routing(text, "routing.yaml", AGENCIES)


def declaration(*codes: str, function: str = "9", origin: str = "NO",
                value: str = "1000") -> CustomsDeclaration:
    message = [s.replace("BGM+929+DEC-1+9", f"BGM+929+DEC-1+{function}")
                .replace("LOC+27+NO", f"LOC+27+{origin}")
                .replace("MOA+40:1000:USD", f"MOA+40:{value}:USD")
               for s in cusdec_message(commodity_codes=codes)]
    outcome = process_submission(interchange([message], sender="DEMOVAN"), demo_context())
    canonical = outcome.messages[0].canonical
    assert isinstance(canonical, CustomsDeclaration), outcome.summary
    return canonical


RULES = """
lists:
  food: ["01-24"]
  sanctioned_origins: [KP, IR]
rules:
  - name: customs
    deliver: [customs]
  - name: quarantine
    match: {hs_chapters: "@food"}
    deliver: [quarantine]
  - name: licensing-weapons
    match: {commodity_codes: ["9301-9306", "8710"]}
    deliver: [licensing]
  - name: licensing-origins
    match: {origin_countries: "@sanctioned_origins"}
    deliver: [licensing]
  - name: statistics-big-imports
    match:
      functions: [original]
      customs_offices: [TWKHH]
      customs_value_at_least: {amount: 100000, currency: USD}
    deliver: [statistics]
"""


def agencies(message: CustomsDeclaration) -> tuple[str, ...]:
    return route(table(RULES), message, "demo-van").agencies


def test_table_values_take_the_form_message_values_have() -> None:
    """A routing table names offices, countries and currencies as ops type them; they are
    put in the normal form the canonical messages carry (upper case), or a lower-case office
    in routing.yaml would never match a normalised message."""
    lower = table(RULES.replace("customs_offices: [TWKHH]", "customs_offices: [twkhh]")
                  .replace("currency: USD", "currency: usd"))
    assert route(lower, declaration("8471", value="250000"), "demo-van").agencies == (
        "customs", "statistics")


def test_content_conditions() -> None:
    assert agencies(declaration("0303")) == ("customs", "quarantine")
    assert agencies(declaration("9302.00")) == ("customs", "licensing")
    assert agencies(declaration("8710")) == ("customs", "licensing")
    assert agencies(declaration("9307")) == ("customs",)
    assert agencies(declaration("8471", origin="KP")) == ("customs", "licensing")
    assert agencies(declaration("8471", value="250000")) == ("customs", "statistics")
    assert agencies(declaration("8471", value="250000", function="1")) == ("customs",)


def test_each_agency_gets_a_message_once() -> None:
    both = declaration("0303", "9302", origin="IR")
    assert agencies(both) == ("customs", "quarantine", "licensing")


def test_explain_tells_each_condition() -> None:
    verdicts = {v.rule: v for v in explain(table(RULES), declaration("8471", value="250000"),
                                           "demo-van")}
    assert verdicts["statistics-big-imports"].matched
    assert verdicts["statistics-big-imports"].conditions == (
        "yes function in original (message: original)",
        "yes customs office in TWKHH (message: TWKHH)",
        "yes customs value at least 100000 USD (message: 250000 USD)",
    )
    assert verdicts["licensing-weapons"].conditions == (
        "no  a commodity code under 9301-9306, 8710 (message: 8471)",)
    assert verdicts["customs"].conditions == ("yes every message (no condition)",)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("rules:\n  - name: q\n    match: {hs_chapters: '@fish'}\n    deliver: [quarantine]\n",
     3, "unknown list '@fish' (known: none)"),
    ("rules:\n  - name: l\n    match:\n      origin_countries: [norway]\n"
     "    deliver: [licensing]\n", 4, "is not an ISO 3166-1 alpha-2 country code"),
    ("rules:\n  - name: l\n    match:\n      commodity_codes: ['93-9306']\n"
     "    deliver: [licensing]\n", 4, "range of prefixes of one length"),
    ("rules:\n  - name: s\n    match:\n      customs_value_at_least: {amount: 1}\n"
     "    deliver: [statistics]\n", 4, "customs_value_at_least.currency: Field required"),
])
def test_mistakes_are_refused_at_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        table(text)
    assert f"routing.yaml:{line}:" in str(caught.value) and message in str(caught.value)


def test_the_shipped_table_uses_a_named_list() -> None:
    shipped = Path(__file__).resolve().parents[2] / "routing.yaml"
    loaded = parse_routing(shipped.read_text(), str(shipped),
                           ("customs", "quarantine", "port", "trade", "bank", "tax"))
    assert "quarantine_hs_chapters" in loaded.lists
    context = replace(demo_context(), routing=loaded)
    outcome = process_submission(interchange([cusdec_message(commodity_codes=("0303",))],
                                             sender="DEMOVAN"), context)
    assert outcome.messages[0].agencies == ("customs", "quarantine")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 80))
def test_the_rule_index_changes_speed_never_results(seed: int, size: int) -> None:
    """Indexed routing agrees with checking every rule in order, on random tables."""
    import random

    from bench.routing import declarations
    from bench.routing import table as random_table
    from gateway.pipeline.route_conditions import Facts, compile_match

    rng = random.Random(seed)
    routing = random_table(size, rng)
    for message in declarations(30, rng):
        facts = Facts.of(message)
        every_rule = tuple(r.name for r in routing.rules
                           if all(c.check(facts, "demo-van") for c in compile_match(r.match)))
        assert route(routing, message, "demo-van").rules == every_rule


def test_a_rule_an_earlier_rule_always_covers_is_refused_at_its_line() -> None:
    text = ("rules:\n"
            "  - name: food\n    match: {hs_chapters: ['01-24']}\n    deliver: [quarantine]\n"
            "  - name: fish\n    match: {hs_chapters: ['03'], origin_countries: [NO]}\n"
            "    deliver: [quarantine]\n")
    with pytest.raises(ConfigError) as caught:
        table(text)
    message = str(caught.value)
    assert "routing.yaml:5:" in message and "rules[1]" in message
    assert "rule 'fish' never changes a route: the earlier rule 'food'" in message


@pytest.mark.parametrize("later", [
    "{match: {hs_chapters: ['03']}, deliver: [licensing]}",  # another agency
    "{match: {hs_chapters: ['25']}, deliver: [quarantine]}",  # outside the earlier range
    "{match: {commodity_codes: ['0303']}, deliver: [quarantine]}",  # other kind of condition
])
def test_rules_that_can_still_add_something_are_kept(later: str) -> None:
    text = ("rules:\n  - name: food\n    match: {hs_chapters: ['01-24']}\n"
            "    deliver: [quarantine]\n  - name: later\n    " + later.strip("{}")
            .replace(", deliver", "\n    deliver") + "\n")
    assert len(table(text).rules) == 2


def test_cover_rules_for_codes_and_thresholds() -> None:
    from gateway.config.routing import Match, covers

    def match(**conditions: object) -> Match:
        return Match.model_validate(conditions)

    assert covers(match(commodity_codes=["93"]), match(commodity_codes=["9301-9306"]))
    assert not covers(match(commodity_codes=["9301"]), match(commodity_codes=["93"]))
    value = {"amount": 1000, "currency": "USD"}
    assert covers(match(customs_value_at_least=value),
                  match(customs_value_at_least={"amount": 5000, "currency": "USD"}))
    assert not covers(match(customs_value_at_least=value),
                      match(customs_value_at_least={"amount": 5000, "currency": "EUR"}))
    assert covers(match(), match(origin_countries=["NO"]))
    assert not covers(match(origin_countries=["NO"]), match())


ACTIONS = """
rules:
  - name: customs
    deliver: [customs]
  - name: statistics-watches-imports
    match: {functions: [original]}
    copy_to: [statistics, customs]
  - name: hold-sanctioned-origins
    match: {origin_countries: [KP]}
    hold: true
"""


def test_observer_copies_and_holds() -> None:
    decision = route(table(ACTIONS), declaration("8471"), "demo-van")
    assert decision.agencies == ("customs",)
    assert decision.copies == ("statistics",)  # customs acts on it: no copy for customs
    assert decision.held_by == ()
    held = route(table(ACTIONS), declaration("8471", origin="KP"), "demo-van")
    assert held.held_by == ("hold-sanctioned-origins",) and held.agencies == ("customs",)


def test_a_rule_must_do_something() -> None:
    with pytest.raises(ConfigError) as caught:
        table("rules:\n  - name: idle\n    match: {origin_countries: [KP]}\n")
    assert "routing.yaml:2:" in str(caught.value)
    assert "a rule needs deliver, copy_to or hold: true" in str(caught.value)


def test_traders_and_their_aeo_status() -> None:
    rules = table("""
rules:
  - name: customs
    deliver: [customs]
  - name: inspect-untrusted
    match: {trusted_trader: false, hs_chapters: ['01-24']}
    deliver: [quarantine]
  - name: watch-a-trader
    match: {traders: ['12345678']}
    copy_to: [statistics]
""")
    fish = declaration("0303")  # the builder's declarant is 12345678
    assert route(rules, fish, "demo-van").agencies == ("customs", "quarantine")
    trusted = route(rules, fish, "demo-van", frozenset({"12345678"}))
    assert trusted.agencies == ("customs",) and trusted.copies == ("statistics",)
    verdicts = {v.rule: v for v in explain(rules, fish, "demo-van", frozenset({"12345678"}))}
    assert "no  trusted trader (AEO) is false (message: true)" in (
        verdicts["inspect-untrusted"].conditions)


def test_the_highest_priority_of_the_matching_rules_wins() -> None:
    rules = table("rules:\n  - name: customs\n    deliver: [customs]\n    priority: 2\n"
                  "  - name: urgent-food\n    match: {hs_chapters: ['03']}\n"
                  "    deliver: [quarantine]\n    priority: 8\n")
    assert route(rules, declaration("0303"), "demo-van").priority == 8
    assert route(rules, declaration("8471"), "demo-van").priority == 2
