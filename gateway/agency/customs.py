"""The example customs adapter (``gateway agency run customs``): a risk table a person edits
(``customs-rules.yaml``) sends each declaration down a channel:

- green: released;
- yellow: a documentary check (``documents_required``);
- red: a physical inspection (``inspection``).

Every rule whose conditions hold gives its channel; the heaviest wins, else the default
channel.  A declaration an authorised economic operator answers for (delivery header ``aeo``)
goes ``trusted.lighter`` channels lighter (except under rules with ``trusted_lighter: false``)
and is sampled at the trusted rate.  Of what is not red, a random sample (``sample_rate``,
drawn from the delivery's message id and the seed: a redelivery is sampled alike) is sent to a
physical inspection.

Each declaration is first registered (``accepted`` with the agency's reference, e.g.
``CUS-20261122-3F9A0C1B``), then its channel decided: two answers.  With ``duties`` in the
rules, the registration assesses them: ``rate`` of the declaration's customs value in that
currency (docs/payments.md: the gateway has a bank collect them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import Field, model_validator

from gateway.agency import answers
from gateway.agency.answers import Answer
from gateway.agency.delivery import Delivery
from gateway.agency.rules import (
    GoodsConditions,
    NamedRules,
    ReasonText,
    ReferencePrefix,
    SampleRate,
    Strict,
)
from gateway.agency.sampling import agency_reference, sampled
from gateway.config.routing import Threshold
from gateway.model.canonical import Amount, CustomsDeclaration
from gateway.model.canonical.common import CurrencyCode

Channel = Literal["green", "yellow", "red"]
#: Lightest first.
CHANNELS: tuple[Channel, ...] = ("green", "yellow", "red")
SAMPLED_REASON = "Selected at random for a physical inspection"


class RiskRule(GoodsConditions):
    name: str = Field(min_length=1, max_length=64)
    customs_value_at_least: Threshold | None = Field(
        default=None, description="the declaration's customs value in that currency")
    channel: Channel
    reason: ReasonText = Field(description="what the trader reads (at most 70 characters)")
    trusted_lighter: bool = Field(
        default=True, description="false: an AEO's declaration gets this channel too")

    @model_validator(mode="after")
    def _some_condition(self) -> RiskRule:
        if not self.on_goods and self.customs_value_at_least is None:
            raise ValueError("a rule needs a condition (hs_chapters, commodity_codes, "
                             "origin_countries, customs_value_at_least); use default_channel "
                             "for every declaration")
        return self

    def applies_to(self, declaration: CustomsDeclaration) -> bool:
        threshold = self.customs_value_at_least
        if threshold is not None and declaration.customs_value(threshold.currency) \
                < threshold.amount:
            return False
        return not self.on_goods or any(
            self.holds_for(item) for item in declaration.goods_items)


class Trusted(Strict):
    sample_rate: SampleRate = Field(description="the random sample of AEO declarations")
    lighter: int = Field(default=1, ge=0, le=2, description="channels lighter: red to yellow, "
                         "yellow to green")


class Duties(Strict):
    rate: Decimal = Field(gt=0, le=1, description="the share of the customs value due")
    currency: CurrencyCode = Field(description="ISO 4217: the customs value in this currency "
                                   "is assessed, and the duties are due in it")
    qualifier: str = Field(default="55", pattern=r"^[A-Z0-9]{1,3}$",
                           description="UNTDID 5025 of the duties (55 duty/tax/fee amount)")


class CustomsRules(NamedRules):
    seed: str = Field(min_length=1, description="the random sample's seed")
    reference_prefix: ReferencePrefix = "CUS"
    default_channel: Channel = "green"
    sample_rate: SampleRate = Field(description="the share of declarations not red sent to "
                                    "a physical inspection at random")
    trusted: Trusted = Field(description="authorised economic operators (delivery header aeo)")
    rules: tuple[RiskRule, ...] = ()
    duties: Duties | None = Field(default=None, description="without it, none assessed")


def assessed(rules: CustomsRules, declaration: CustomsDeclaration) -> tuple[Amount, ...]:
    """The duties on ``declaration`` (none without ``duties``, or on a customs value of 0)."""
    duties = rules.duties
    if duties is None:
        return ()
    due = (declaration.customs_value(duties.currency) * duties.rate).quantize(
        Decimal("0.01"), ROUND_HALF_UP)
    if due <= 0:
        return ()
    return (Amount(qualifier=duties.qualifier, value=due, currency=duties.currency),)


@dataclass(frozen=True, slots=True)
class Verdict:
    channel: Channel
    reasons: tuple[str, ...]
    #: The rules that gave the channel (or "sample"), for the adapter's log line.
    by: tuple[str, ...]


def assess(rules: CustomsRules, declaration: CustomsDeclaration, message_id: str,
           aeo: bool) -> Verdict:
    """The channel for one delivered declaration (pure: the same inputs, the same verdict)."""
    lighter = rules.trusted.lighter if aeo else 0
    given = [(_lightened(r.channel, lighter if r.trusted_lighter else 0), r)
             for r in rules.rules if r.applies_to(declaration)]
    channel = max([_lightened(rules.default_channel, lighter)] + [c for c, _ in given],
                  key=CHANNELS.index)
    rate = rules.trusted.sample_rate if aeo else rules.sample_rate
    if channel != "red" and sampled(rules.seed, message_id, rate):
        return Verdict("red", (SAMPLED_REASON,), ("sample",))
    chosen = [r for c, r in given if c == channel]
    return Verdict(channel, tuple(dict.fromkeys(r.reason for r in chosen)),
                   tuple(r.name for r in chosen))


def _lightened(channel: Channel, steps: int) -> Channel:
    return CHANNELS[max(0, CHANNELS.index(channel) - steps)]


def decide(rules: CustomsRules, delivery: Delivery) -> Sequence[Answer]:
    """Registered, then the channel's decision; a cancellation is acknowledged as cancelled;
    other kinds of message (a cargo report) are registered only."""
    message = delivery.message
    reference = agency_reference(rules.reference_prefix, delivery.message_id,
                                 dt.datetime.now(dt.UTC).date())
    if not isinstance(message, CustomsDeclaration):
        return [answers.accepted(delivery, reference)]
    if message.function == "cancellation":
        return [answers.decision(delivery, "cancelled", reference=reference)]
    if not message.goods_items:
        return [answers.application_error(delivery, ["No goods items: nothing to assess"])]
    verdict = assess(rules, message, delivery.message_id, delivery.aeo)
    registered = answers.decision(delivery, "accepted", reference=reference,
                                  duties=assessed(rules, message))
    return [registered, _channel_answer(delivery, verdict, reference)]


def _channel_answer(delivery: Delivery, verdict: Verdict, reference: str) -> Answer:
    if verdict.channel == "red":
        return answers.inspection(delivery, verdict.reasons, reference)
    if verdict.channel == "yellow":
        return answers.documents_required(delivery, verdict.reasons, reference)
    return answers.released(delivery, reference, verdict.reasons)
