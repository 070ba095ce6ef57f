"""The example adapters' decisions: the customs risk table (heaviest channel, conditions on one
goods item, AEO one channel lighter and sampled less, sampling fixed per delivery) and the
quarantine permit rules (documents on the declaration or the item, first rule per item); and
the shipped rules on the shipped demo sample."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.agency import customs, quarantine
from gateway.agency.customs import CustomsRules
from gateway.agency.quarantine import QuarantineRules
from gateway.agency.sampling import draw, sampled
from gateway.config.yamlfile import load_model, load_model_text
from gateway.errors import ConfigError
from gateway.model.canonical import CustomsDeclaration, CustomsResponse
from gateway.pipeline.process import process_submission
from tests.support.agencies import declaration, delivery
from tests.support.pipeline import demo_context

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"


def customs_rules(*rules: dict[str, Any], sample_rate: float = 0.0, trusted_rate: float = 0.0,
                  default: str = "green") -> CustomsRules:
    return CustomsRules.model_validate({
        "seed": "s", "sample_rate": sample_rate, "default_channel": default,
        "trusted": {"sample_rate": trusted_rate, "lighter": 1}, "rules": list(rules)})


def rule(name: str, channel: str, **conditions: Any) -> dict[str, Any]:
    return {"name": name, "channel": channel, "reason": f"because {name}", **conditions}


def channel_of(rules: CustomsRules, message: CustomsDeclaration, aeo: bool = False,
               message_id: str = "swg-1-1-customs") -> customs.Verdict:
    return customs.assess(rules, message, message_id, aeo)


def test_the_heaviest_channel_of_the_rules_that_hold_wins() -> None:
    rules = customs_rules(rule("fish", "yellow", hs_chapters=["03"]),
                          rule("norway", "red", origin_countries=["NO"]),
                          rule("guns", "red", commodity_codes=["9301-9306"]))
    verdict = channel_of(rules, declaration([("0303.55", "NO", ())]))
    assert (verdict.channel, verdict.by, verdict.reasons) == ("red", ("norway",),
                                                              ("because norway",))
    assert channel_of(rules, declaration([("0303.55", "IS", ())])).channel == "yellow"
    assert channel_of(rules, declaration([("8438.50", "IS", ())])).channel == "green"
    assert channel_of(customs_rules(default="yellow"),
                      declaration([("8438.50", "IS", ())])).channel == "yellow"


def test_goods_conditions_hold_for_one_and_the_same_item() -> None:
    rules = customs_rules(rule("vietnamese-fish", "red", hs_chapters=["03"],
                               origin_countries=["VN"]))
    split = declaration([("0303.55", "NO", ()), ("8438.50", "VN", ())])
    assert channel_of(rules, split).channel == "green"
    assert channel_of(rules, declaration([("0303.55", "VN", ())])).channel == "red"


def test_the_customs_value_is_the_declarations() -> None:
    rules = customs_rules(rule("valuable", "yellow",
                               customs_value_at_least={"amount": 1500, "currency": "USD"}))
    assert channel_of(rules, declaration([("8438", "NO", ())], value_usd="1000")).channel \
        == "green"
    two_items = declaration([("8438", "NO", ()), ("8471", "NO", ())], value_usd="1000")
    assert channel_of(rules, two_items).channel == "yellow"


def test_a_trusted_trader_goes_one_channel_lighter_unless_the_rule_says_not() -> None:
    rules = customs_rules(rule("fish", "red", hs_chapters=["03"]),
                          rule("guns", "red", commodity_codes=["9301"], trusted_lighter=False))
    fish = declaration([("0303.55", "NO", ())])
    assert channel_of(rules, fish, aeo=False).channel == "red"
    assert channel_of(rules, fish, aeo=True).channel == "yellow"
    assert channel_of(rules, declaration([("9301.10", "NO", ())]), aeo=True).channel == "red"
    yellow_by_default = customs_rules(default="yellow")
    assert channel_of(yellow_by_default, fish, aeo=True).channel == "green"


def test_a_trusted_trader_is_sampled_at_its_own_rate() -> None:
    rules = customs_rules(sample_rate=1.0, trusted_rate=0.0)
    fish = declaration([("0303.55", "NO", ())])
    untrusted = channel_of(rules, fish, aeo=False)
    assert (untrusted.channel, untrusted.by) == ("red", ("sample",))
    assert untrusted.reasons == (customs.SAMPLED_REASON,)
    assert channel_of(rules, fish, aeo=True).channel == "green"


def test_sampling_is_fixed_per_delivery_and_seed() -> None:
    ids = [f"swg-{n}-1-customs" for n in range(1, 401)]
    picked = [i for i in ids if sampled("seed", i, 0.25)]
    assert picked == [i for i in ids if sampled("seed", i, 0.25)]  # a redelivery draws alike
    assert 60 <= len(picked) <= 140  # about a quarter of 400 (fixed ids: always the same)
    assert picked != [i for i in ids if sampled("other", i, 0.25)]
    assert not any(sampled("seed", i, 0.0) for i in ids)
    assert all(sampled("seed", i, 1.0) for i in ids)
    assert all(0.0 <= draw("seed", i) < 1.0 for i in ids)
    rules = customs_rules(sample_rate=0.25)
    fish = declaration([("0303.55", "NO", ())])
    assert [i for i in ids if channel_of(rules, fish, message_id=i).channel == "red"] \
        == [i for i in ids if sampled("s", i, 0.25)]


def test_customs_registers_then_decides_with_its_reference() -> None:
    rules = customs_rules(rule("fish", "yellow", hs_chapters=["03"]))
    answers = customs.decide(rules, delivery(declaration([("0303.55", "NO", ())])))
    assert [a.decision for a in answers if isinstance(a, CustomsResponse)] \
        == ["accepted", "documents_required"]
    references = {a.agency_reference for a in answers if isinstance(a, CustomsResponse)}
    (reference,) = references
    assert reference is not None
    assert re.fullmatch(rf"CUS-{dt.datetime.now(dt.UTC):%Y%m%d}-[0-9A-F]{{8}}", reference)
    assert [r.text for r in answers[1].reasons] == ["because fish"]  # type: ignore[union-attr]


def test_customs_acknowledges_a_cancellation_and_registers_other_kinds() -> None:
    rules = customs_rules()
    cancelled = customs.decide(rules, delivery(declaration(function="cancellation")))
    assert [a.decision for a in cancelled] == ["cancelled"]  # type: ignore[union-attr]
    empty = customs.decide(rules, delivery(declaration(goods=())))
    assert [a.kind for a in empty] == ["ApplicationError"]


def quarantine_rules(*rules: dict[str, Any], sample_rate: float = 0.0) -> QuarantineRules:
    return QuarantineRules.model_validate({"seed": "s", "sample_rate": sample_rate,
                                           "rules": list(rules)})


FISH_RULES = (
    {"name": "recognised", "hs_chapters": ["03"], "origin_countries": ["NO"],
     "documents": ["861"], "reason": "Needs 861"},
    {"name": "fish", "hs_chapters": ["03"], "documents": ["852", "853"],
     "reason": "Needs 852 or 853"},
    {"name": "plants", "hs_chapters": ["06-14"], "documents": ["851"], "reason": "Needs 851"},
)


def decisions(answers: Any) -> list[tuple[str, list[str]]]:
    return [(a.decision, [r.text for r in a.reasons]) for a in answers]


def test_quarantine_passes_a_licence_when_each_item_has_its_document() -> None:
    rules = quarantine_rules(*FISH_RULES)
    norwegian = declaration([("0303.55", "NO", ("861",)), ("8438.50", "NO", ())])
    assert decisions(quarantine.decide(rules, delivery(norwegian, agency="quarantine"))) \
        == [("licence_passed", []), ("released", [])]
    on_the_declaration = declaration([("0303.55", "VN", ())], documents=("853",))
    assert decisions(quarantine.decide(rules, delivery(on_the_declaration))) \
        == [("licence_passed", []), ("released", [])]


def test_quarantine_fails_a_licence_naming_each_missing_document() -> None:
    rules = quarantine_rules(*FISH_RULES)
    vietnamese = declaration([("0303.55", "VN", ("861",)), ("0701.10", "VN", ()),
                              ("0302.11", "VN", ())])
    assert decisions(quarantine.decide(rules, delivery(vietnamese))) \
        == [("licence_failed", ["Needs 852 or 853", "Needs 851"])]
    # Another item's certificate does not cover this one.
    other_item = declaration([("0303.55", "VN", ()), ("0302.11", "VN", ("852",))])
    assert decisions(quarantine.decide(rules, delivery(other_item))) \
        == [("licence_failed", ["Needs 852 or 853"])]


def test_the_first_rule_for_an_item_decides_and_one_without_documents_exempts() -> None:
    exempt = {"name": "smoked", "commodity_codes": ["0305"]}
    rules = quarantine_rules(exempt, *FISH_RULES)
    assert decisions(quarantine.decide(rules, delivery(declaration([("0305.41", "VN", ())])))) \
        == [("released", [])]
    assert decisions(quarantine.decide(rules, delivery(declaration([("8438", "VN", ())])))) \
        == [("released", [])]


def test_quarantine_inspects_by_the_highest_sample_rate_that_applied() -> None:
    always = {**FISH_RULES[2], "sample_rate": 1.0}
    rules = quarantine_rules(FISH_RULES[1], always, sample_rate=0.0)
    fish = declaration([("0303.55", "VN", ("852",))])
    assert decisions(quarantine.decide(rules, delivery(fish)))[1][0] == "released"
    both = declaration([("0303.55", "VN", ("852",)), ("0701", "VN", ("851",))])
    assert decisions(quarantine.decide(rules, delivery(both))) == [
        ("licence_passed", []), ("inspection", [quarantine.SAMPLED_REASON])]


def test_rules_files_are_strict_and_name_file_and_line() -> None:
    text = (DEMO / "quarantine-rules.yaml").read_text().replace(
        "reason: Fish needs a sanitary or veterinary certificate (852 or 853)",
        "reason: " + "x" * 71)
    with pytest.raises(ConfigError, match=r"quarantine-rules.yaml:\d+:\d+ rules\[1\]\.reason"):
        load_model_text(text, "quarantine-rules.yaml", QuarantineRules)
    with pytest.raises(ValueError, match="rule name used twice: a"):
        customs_rules(rule("a", "red", hs_chapters=["03"]), rule("a", "red", hs_chapters=["04"]))
    with pytest.raises(ValueError, match="needs a condition"):
        customs_rules(rule("everything", "red"))
    with pytest.raises(ValueError, match="says why"):
        quarantine_rules({"name": "x", "hs_chapters": ["03"], "documents": ["852"]})


def test_the_shipped_rules_tell_the_frozen_fish_story() -> None:
    """The demo sample (HS 0303.55 from NO with a certificate of origin, 861, and a filleting
    machine): customs registers and releases it unless its sample picks it; quarantine passes
    its licence check on the certificate of origin, then releases it unless its sample picks
    it (docs/agencies.md)."""
    sample = (DEMO / "samples" / "cusdec-frozen-fish.edi").read_bytes()
    fish = process_submission(sample, demo_context()).messages[0].canonical
    assert isinstance(fish, CustomsDeclaration)
    customs_rules_ = load_model(DEMO / "customs-rules.yaml", CustomsRules)
    quarantine_rules_ = load_model(DEMO / "quarantine-rules.yaml", QuarantineRules)
    for submission in range(1, 41):
        said = decisions(customs.decide(customs_rules_, delivery(fish, submission=submission)))
        assert said[0] == ("accepted", [])
        assert said[1] in (("released", []), ("inspection", [customs.SAMPLED_REASON]))
        said = decisions(quarantine.decide(quarantine_rules_, delivery(
            fish, agency="quarantine", submission=submission)))
        assert said[0] == ("licence_passed", [])
        assert said[1] in (("released", []), ("inspection", [quarantine.SAMPLED_REASON]))
    without_origin_certificate = fish.model_copy(update={"goods_items": tuple(
        g.model_copy(update={"documents": ()}) for g in fish.goods_items)})
    assert decisions(quarantine.decide(quarantine_rules_, delivery(
        without_origin_certificate, agency="quarantine"))) == [
        ("licence_failed", ["Fish from a recognised country needs its certificate of origin "
                            "(861)"])]
