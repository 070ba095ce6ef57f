"""Routing conditions a partner could steer (found by an adversarial review of issue 9): the
AEO lane opens only for an answerable party (declarant, representative, importer, exporter),
and a customs value declared only in the heading counts for a threshold."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.config.routing import RoutingTable
from gateway.pipeline.process import process_submission
from tests.support.edifact import cusdec_message, interchange
from tests.support.pipeline import demo_context

AEO = "AEO00001"
AEO_LANE = RoutingTable.model_validate({"rules": [
    {"name": "aeo-lane", "match": {"kind": "CustomsDeclaration", "trusted_trader": True},
     "deliver": ["port"]},
    {"name": "inspect", "match": {"kind": "CustomsDeclaration", "trusted_trader": False},
     "deliver": ["customs"]},
]})
#: AEO00001 is registered to the sending partner (demo-van), as the trader registry says.
CONTEXT = dataclasses.replace(demo_context(routing=AEO_LANE), trusted_traders=frozenset({AEO}))


def declaration(*extra_parties: str) -> bytes:
    """A CUSDEC whose declarant (NAD+DT) is a small trader that is no AEO."""
    message = cusdec_message()
    at = next(k for k, s in enumerate(message) if s.startswith("NAD+DT"))
    message[at] = "NAD+DT+NOTAEO9::ZZZ++Small Trader+1 Road+Town++1+TW"
    message[at + 1:at + 1] = list(extra_parties)
    message[-1] = f"UNT+{len(message)}+1"
    return interchange([message])


def test_the_declarant_that_is_no_aeo_is_inspected() -> None:
    outcome = process_submission(declaration(), CONTEXT)
    assert outcome.messages[0].agencies == ("customs",)


@pytest.mark.parametrize("role", ["DT", "AE", "IM", "EX"])
def test_an_aeo_answerable_for_the_declaration_takes_the_aeo_lane(role: str) -> None:
    """The other side of the tests below: the lane opens in this context, for the registered
    AEO in each answerable role, so their "customs" is the role's doing, not a lane that
    never opens."""
    outcome = process_submission(declaration(f"NAD+{role}+{AEO}::9"), CONTEXT)
    assert outcome.messages[0].agencies == ("port",), outcome.summary


def test_naming_an_aeo_as_notify_party_does_not_open_the_aeo_lane() -> None:
    """The AEO lane used to open for any heading party's id, whatever its role (3035): a
    trader that is no AEO, sending through the same VAN as an AEO, named the AEO as notify
    party (NI) and its declaration took the AEO lane."""
    outcome = process_submission(declaration(f"NAD+NI+{AEO}::9"), CONTEXT)
    assert outcome.messages[0].agencies == ("customs",), outcome.summary


def test_naming_an_aeo_as_consignee_does_not_open_the_aeo_lane() -> None:
    outcome = process_submission(
        declaration(f"NAD+CN+{AEO}::ZZZ++Big Co+2 Road+Town++1+TW"), CONTEXT)
    assert outcome.messages[0].agencies == ("customs",), outcome.summary


HIGH_VALUE = RoutingTable.model_validate({"rules": [
    {"name": "customs", "match": {"kind": "CustomsDeclaration"}, "deliver": ["customs"]},
    {"name": "high-value", "match": {"customs_value_at_least": {"amount": 500,
                                                                  "currency": "USD"}},
     "deliver": ["port"]},
]})


def test_a_customs_value_declared_in_the_heading_counts_for_the_threshold() -> None:
    """CUSDEC SG8 MOA 5025=40 (customs value) in the heading is read into
    CustomsDeclaration.amounts; customs_value() used to add up the goods items only, so a
    declaration of 1,000 USD, with its value in the heading, passed a 500 USD rule unseen."""
    message = [s for s in cusdec_message(commodity_codes=("8471",)) if not s.startswith("MOA")]
    message.insert(message.index("UNS+D"), "MOA+40:1000:USD")
    message[-1] = f"UNT+{len(message)}+1"
    outcome = process_submission(interchange([message]), demo_context(routing=HIGH_VALUE))
    assert outcome.messages[0].accepted, outcome.summary
    assert "port" in outcome.messages[0].agencies, outcome.summary
