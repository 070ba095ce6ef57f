"""The example quarantine adapter (``gateway agency run quarantine``): permit rules a person
edits (``quarantine-rules.yaml``) say which goods need which certificate.

For each goods item the first rule whose conditions hold decides what it needs: one of the
rule's ``documents`` (UNTDID 1001 codes: 851 phytosanitary certificate, 852 sanitary
certificate, 853 veterinary certificate, 861 certificate of origin ...), among the
declaration's documents or the item's own.  A rule without documents exempts what it matches
from the rules after it.

- A document missing: ``licence_failed``, each missing one a reason.
- Every one there: ``licence_passed``, then ``released``, or ``inspection`` when the random
  sample picks the delivery (the highest ``sample_rate`` of the rules that applied, drawn from
  the delivery's message id and the seed: a redelivery is sampled alike).
- No rule asks any item for a document: ``released``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

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
)
from gateway.agency.sampling import agency_reference, sampled
from gateway.model.canonical import CustomsDeclaration, GoodsItem

#: A UNTDID 1001 document name code (an..3).
DocumentCode = Annotated[str, Field(pattern=r"^[0-9A-Z]{1,3}$")]
SAMPLED_REASON = "Selected at random for a quarantine inspection"


class PermitRule(GoodsConditions):
    name: str = Field(min_length=1, max_length=64)
    documents: tuple[DocumentCode, ...] = Field(
        default=(), description="any one of these UNTDID 1001 documents; none: exempt")
    reason: ReasonText | None = Field(
        default=None, description="what the trader reads when the document is missing")
    sample_rate: SampleRate | None = Field(
        default=None, description="the inspection sample when this rule applies (default: "
        "the file's)")

    @model_validator(mode="after")
    def _complete(self) -> PermitRule:
        if not self.on_goods:
            raise ValueError("a rule needs a condition on the goods (hs_chapters, "
                             "commodity_codes, origin_countries)")
        if self.documents and self.reason is None:
            raise ValueError("a rule that asks for documents says why, in 'reason' (the "
                             "trader reads it when the document is missing)")
        return self


class QuarantineRules(NamedRules):
    seed: str = Field(min_length=1, description="the random sample's seed")
    reference_prefix: ReferencePrefix = "QUA"
    sample_rate: SampleRate = Field(description="the share of passed declarations inspected")
    rules: tuple[PermitRule, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    #: The rules that asked some goods item for a document.
    applied: tuple[str, ...]
    #: Why the licence check failed (one reason per rule whose document is missing).
    missing: tuple[str, ...]
    inspect: bool


def assess(rules: QuarantineRules, declaration: CustomsDeclaration,
           message_id: str) -> Verdict:
    """What each goods item needs and whether it is there (pure)."""
    applied: dict[str, PermitRule] = {}
    missing: dict[str, None] = {}
    held = {d.code for d in declaration.documents}
    for item in declaration.goods_items:
        rule = _rule_for(rules, item)
        if rule is None or not rule.documents:  # not regulated, or exempt
            continue
        applied[rule.name] = rule
        if held.isdisjoint(rule.documents) \
                and {d.code for d in item.documents}.isdisjoint(rule.documents):
            missing[rule.reason or rule.name] = None
    rate = max((r.sample_rate if r.sample_rate is not None else rules.sample_rate
                for r in applied.values()), default=0.0)
    return Verdict(tuple(applied), tuple(missing), sampled(rules.seed, message_id, rate))


def _rule_for(rules: QuarantineRules, item: GoodsItem) -> PermitRule | None:
    return next((rule for rule in rules.rules if rule.holds_for(item)), None)


def decide(rules: QuarantineRules, delivery: Delivery) -> Sequence[Answer]:
    message = delivery.message
    if not isinstance(message, CustomsDeclaration):
        return [answers.application_error(
            delivery, [f"Quarantine decides on declarations, not a {message.kind}"])]
    reference = agency_reference(rules.reference_prefix, delivery.message_id,
                                 dt.datetime.now(dt.UTC).date())
    if message.function == "cancellation":
        return [answers.decision(delivery, "cancelled", reference=reference)]
    if not message.goods_items:
        return [answers.application_error(delivery, ["No goods items: nothing to assess"])]
    verdict = assess(rules, message, delivery.message_id)
    if verdict.missing:
        return [answers.licence_failed(delivery, verdict.missing, reference)]
    if not verdict.applied:
        return [answers.released(delivery, reference)]
    outcome = answers.inspection(delivery, [SAMPLED_REASON], reference) if verdict.inspect \
        else answers.released(delivery, reference)
    return [answers.licence_passed(delivery, reference), outcome]
