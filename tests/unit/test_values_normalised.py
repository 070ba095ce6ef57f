"""What routing reads is normalised, or the message is answered with an error (issue 9 item 3).

End to end through ``process_submission``: a commodity code, a country of origin, a customs
office, a trader identification, an amount with its qualifier and currency, a weight, in
another script's digits, full-width letters, lower case, with an exponent or a control
character.  Each is either brought to its one spelling (and routed by it) or refused with a
finding at its segment, element and component; none reaches a routing condition as sent."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.partners import Partner
from gateway.config.routing import RoutingTable
from gateway.model.canonical import KINDS, CustomsDeclaration
from gateway.model.outcome import MessageOutcome, Outcome
from gateway.pipeline.process import process_submission
from gateway.pipeline.route_conditions import Facts
from tests.support.edifact import cusdec_message, interchange
from tests.support.pipeline import DEMO_PARTNER, demo_context

ROUTING = RoutingTable.model_validate({"rules": [
    {"name": "customs", "match": {"kind": "CustomsDeclaration"}, "deliver": ["customs"]},
    {"name": "quarantine", "match": {"hs_chapters": ["01-24"]}, "deliver": ["quarantine"]},
    {"name": "licensing", "match": {"origin_countries": ["KP"]}, "deliver": ["licensing"]},
    {"name": "watch", "match": {"traders": ["12345678"]}, "deliver": ["investigation"]},
    {"name": "statistics", "match": {"customs_offices": ["TWKHH"], "customs_value_at_least":
                                     {"amount": 100000, "currency": "USD"}},
     "deliver": ["statistics"]},
]})
#: A partner whose values outside their UN code lists are only warned about: the code-list
#: check does not stand between such a value and routing.
LENIENT = Partner(id=DEMO_PARTNER.id, name=DEMO_PARTNER.name,
                  edifact_ids=DEMO_PARTNER.edifact_ids, code_lists="warning")
#: HS 0302 81 00 in Arabic-Indic digits: under UNOY it once reached customs only.
ARABIC_INDIC_HS_0302 = "\u0660\u0663\u0660\u0662\u0668\u0661\u0660\u0660"


def submitted(replace: dict[str, str], *, syntax: str = "UNOY:4", codes: tuple[str, ...] = (
        "8471",), lenient: bool = False) -> Outcome:
    """A CUSDEC D96B in UTF-8 with some of its segments' text replaced."""
    text = interchange([cusdec_message(commodity_codes=codes)], syntax=syntax).decode("latin-1")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    context = demo_context(LENIENT if lenient else DEMO_PARTNER, ROUTING)
    return process_submission(text.encode("utf-8"), context)


def one(outcome: Outcome) -> MessageOutcome:
    (message,) = outcome.messages
    return message


def refused_at(outcome: Outcome) -> tuple[int, str, int | None, int | None]:
    message = one(outcome)
    assert message.canonical is None and not message.agencies, outcome.summary
    (finding,) = message.findings
    return int(finding.code), finding.segment_tag, finding.element, finding.component


def declaration(outcome: Outcome) -> CustomsDeclaration:
    canonical = one(outcome).canonical
    assert isinstance(canonical, CustomsDeclaration), outcome.summary
    return canonical


def test_an_arabic_indic_commodity_code_is_answered_with_an_error_not_sent_to_customs() -> None:
    """Issue 9 item 3: HS 0302 in Arabic-Indic digits under UNOY was routed to customs only,
    past the quarantine rule for chapters 01-24."""
    outcome = submitted({"CST+1+8471": f"CST+1+{ARABIC_INDIC_HS_0302}"})
    assert refused_at(outcome) == (12, "CST", 2, 1)
    assert outcome.status.value == "rejected"
    assert b"UCS+" in outcome.acknowledgement.body  # type: ignore[union-attr]


@pytest.mark.parametrize("code", [
    "\uff10\uff13\uff10\uff12",  # full-width
    "03\u00b22",  # a superscript
    "\u0966\u0969\u0966\u0968",  # Devanagari
    "0302\u200b",  # a zero-width space
    "3",  # no chapter: it would pass every chapter rule by
    "03A2",
])
def test_a_commodity_code_that_is_not_ascii_digits_is_refused_at_its_place(code: str) -> None:
    assert refused_at(submitted({"CST+1+8471": f"CST+1+{code}"})) == (12, "CST", 2, 1)


def test_a_commodity_code_with_dots_or_spaces_is_read_as_its_digits_and_routed() -> None:
    outcome = submitted({}, codes=("0302.81", "0302 81 00"))
    assert [g.commodity_code for g in declaration(outcome).goods_items] == ["030281",
                                                                           "03028100"]
    assert one(outcome).agencies[:2] == ("customs", "quarantine")


@pytest.mark.parametrize(("weight", "code"), [
    ("\uff11\uff18\uff15\uff10\uff10", 37),  # KGM:18500 in full-width digits (UNOW)
    ("1E999999999", 37), ("Infinity", 37), ("NaN", 37), ("1_000", 37), ("?+5", 37),
    ("\u0661\u0662", 37), ("12\u00b2", 37),
])
def test_a_weight_is_the_numeric_representation_or_refused(weight: str, code: int) -> None:
    """D96B MEA 6314 is an..18 (``number: true`` in the mapping): the validator lets any text
    through, the number conversion must not (Decimal reads all of these)."""
    outcome = submitted({"KGM:1250.5": f"KGM:{weight}"}, syntax="UNOW:4")
    assert refused_at(outcome) == (code, "MEA", 3, 2)


def test_a_weight_with_a_comma_is_still_a_number() -> None:
    outcome = submitted({"KGM:1250.5": "KGM:-1250,5"})
    weight = declaration(outcome).goods_items[0].gross_weight
    assert weight is not None and str(weight.value) == "-1250.5"


def test_an_origin_country_in_lower_case_is_upper_cased_and_routed() -> None:
    outcome = submitted({"LOC+27+NO": "LOC+27+kp"})
    assert declaration(outcome).origin_countries == frozenset({"KP"})
    assert "licensing" in one(outcome).agencies


@pytest.mark.parametrize("country", ["\uff2b\uff30", "K\u0420", "K", "KPX", "K1"])
def test_an_origin_country_not_two_letters_a_z_is_refused(country: str) -> None:
    """Full-width KP, a Cyrillic Er: spelled so, a sanctioned origin passed its rule by."""
    assert refused_at(submitted({"LOC+27+NO": f"LOC+27+{country}"})) == (12, "LOC", 2, 1)


def test_a_customs_office_in_lower_case_is_upper_cased_and_routed() -> None:
    outcome = submitted({"LOC+22+TWKHH": "LOC+22+twkhh", "MOA+40:1000:USD": "MOA+40:250000:USD"})
    assert declaration(outcome).customs_office == "TWKHH"
    assert "statistics" in one(outcome).agencies


@pytest.mark.parametrize("office", ["\uff34\uff37\uff2b\uff28\uff28", "TW KHH", "TWKHH\u0000"])
def test_a_customs_office_not_letters_and_digits_is_refused(office: str) -> None:
    outcome = submitted({"LOC+22+TWKHH": f"LOC+22+{office}"}, syntax="UNOW:4")
    assert refused_at(outcome)[:3] in {(12, "LOC", 2), (21, "LOC", 2)}


def test_a_trader_id_with_spaces_at_its_ends_is_trimmed_and_routed() -> None:
    outcome = submitted({"NAD+DT+12345678::": "NAD+DT+ 12345678 ::"})
    assert declaration(outcome).trader_ids == frozenset({"12345678"})
    assert "investigation" in one(outcome).agencies


@pytest.mark.parametrize("trader", ["\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
                                    "1234\u06705678", "12345678\u0085"])
def test_a_trader_id_that_is_not_printable_ascii_is_refused(trader: str) -> None:
    """Full-width digits spelled a watched trader past the rule that names it."""
    outcome = submitted({"NAD+DT+12345678::": f"NAD+DT+{trader}::"}, syntax="UNOW:4")
    assert refused_at(outcome)[:3] in {(12, "NAD", 2), (21, "NAD", 2)}


def test_an_amount_in_lower_case_currency_counts_towards_the_customs_value() -> None:
    outcome = submitted({"MOA+40:1000:USD": "MOA+40:250000:usd"}, lenient=True)
    assert declaration(outcome).customs_value("USD") == 250000
    assert "statistics" in one(outcome).agencies


@pytest.mark.parametrize(("moa", "where"), [
    ("MOA+\u0664\u0660:250000:USD", (12, "MOA", 1, 1)),  # 40 in Arabic-Indic digits
    ("MOA+40:250000:\uff35\uff33\uff24", (12, "MOA", 1, 3)),  # full-width USD
    ("MOA+40:250000:US", (12, "MOA", 1, 3)),
    ("MOA+40:\u0662\u0665\u0660\u0660\u0660\u0660:USD", (37, "MOA", 1, 2)),
])
def test_an_amount_routing_cannot_read_is_refused(moa: str, where: tuple[int, str, int, int]
                                                  ) -> None:
    """With code lists only warned about, a qualifier or currency in another spelling left the
    amount out of the customs value, past the threshold rule."""
    assert refused_at(submitted({"MOA+40:1000:USD": moa}, lenient=True)) == where


def test_a_negative_customs_value_is_refused_not_subtracted() -> None:
    """A second goods item declaring -240000 USD brought the total under the statistics
    threshold."""
    text = interchange([cusdec_message(commodity_codes=("8471", "8472"))],
                       syntax="UNOY:4").decode("latin-1")
    first = text.index("MOA+40:1000:USD")
    text = text[:first] + "MOA+40:250000:USD" + text[first + 15:].replace(
        "MOA+40:1000:USD", "MOA+40:-240000:USD", 1)
    outcome = process_submission(text.encode("utf-8"), demo_context(DEMO_PARTNER, ROUTING))
    (finding,) = one(outcome).findings
    assert int(finding.code) == 12 and "customs value" in finding.text
    assert not one(outcome).agencies


@pytest.mark.parametrize("date", [
    "\u0662\u0660\u0662\u0666\u0661\u0661\u0662\u0662",  # 20261122 in Arabic-Indic digits
    "2026112",  # strptime read it as 2 November
    "2026 112",
])
def test_a_date_is_fixed_width_ascii_digits_or_refused(date: str) -> None:
    """strptime reads any script's digits and one-digit months and days."""
    outcome = submitted({"DTM+137:20261122:102": f"DTM+137:{date}:102"})
    assert refused_at(outcome) == (12, "DTM", 1, 2)


@pytest.mark.parametrize("zone", ["+\u0660\u0668", "+\uff10\uff18", "+8", "+08?:0"])
def test_a_zone_offset_in_other_digits_is_refused(zone: str) -> None:
    dated = f"DTM+137:202612031015?{zone}:303"
    assert declaration(submitted({"DTM+137:20261122:102": "DTM+137:202612031015?+08:303"}))
    assert refused_at(submitted({"DTM+137:20261122:102": dated})) == (12, "DTM", 1, 2)


# --- the property: no routing condition sees a value that is not normalised -----------------

#: The elements routing reads, by the text the builder's CUSDEC has there.
ROUTED = ["CST+1+8471", "LOC+27+NO", "LOC+22+TWKHH", "NAD+DT+12345678", "MOA+40:1000:USD",
          "BGM+929+DEC-1+9", "UNH+1+CUSDEC"]
HOSTILE = ("0123456789.,-+: AZaz\u0660\u0663\u0966\uff10\uff13\uff21\uff41\u00b2\u2460"
           "\u0410\u00e9\x00\x01\x7f\x85\u200b\ufeff")


@st.composite
def retouched(draw: st.DrawFn) -> tuple[bytes, bool]:
    text = interchange([cusdec_message(commodity_codes=("0303", "8471"))],
                       syntax="UNOW:4").decode("latin-1")
    for _ in range(draw(st.integers(1, 4))):
        old = draw(st.sampled_from(ROUTED))
        tag, _, rest = old.partition("+")
        kept = rest.rpartition(draw(st.sampled_from(["+", ":"])))[0]
        new = f"{tag}+{kept}{draw(st.sampled_from(['+', ':']))}" if kept else f"{tag}+"
        text = text.replace(old, new + draw(st.text(HOSTILE, min_size=1, max_size=12)), 1)
    return text.encode("utf-8"), draw(st.booleans())


FORMS = {
    "chapters": re.compile("[0-9]{2}"), "codes": re.compile("[0-9]{2,18}"),
    "origins": re.compile("[A-Z]{2}"), "offices": re.compile("[A-Z0-9]{1,35}"),
    "traders": re.compile("[!-~](?:[ -~]{0,33}[!-~])?"), "message_type": re.compile("[A-Z]{6}"),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(retouched())
def test_every_value_routing_reads_is_normalised_or_the_message_refused(
        case: tuple[bytes, bool]) -> None:
    data, lenient = case
    outcome = process_submission(data, demo_context(LENIENT if lenient else DEMO_PARTNER,
                                                    ROUTING))
    for message in outcome.messages:
        if message.canonical is None:
            assert all(f.segment_tag for f in message.findings), message.findings
            continue
        facts = Facts.of(message.canonical)
        assert facts.kind in KINDS and facts.function in (
            "original", "replacement", "cancellation", "change", "deletion", "copy",
            "duplicate", "other")
        for name, form in FORMS.items():
            value = getattr(facts, name)
            for text in (value if isinstance(value, frozenset | tuple) else (value,)):
                assert form.fullmatch(text), (name, text)
        for goods in message.canonical.goods_items:  # type: ignore[union-attr]
            for amount in goods.amounts:
                assert re.fullmatch("[A-Z0-9]{1,17}", amount.qualifier), amount
                assert amount.currency is None or re.fullmatch("[A-Z]{3}", amount.currency)
                assert amount.value.is_finite() and len(amount.value.as_tuple().digits) <= 35
