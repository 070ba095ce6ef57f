"""The routing table (``routing.yaml``): which agencies receive which canonical messages.

Every rule whose ``match`` holds adds its agencies; each agency gets a message once.  A message
no rule matches is parked as unroutable (never dropped).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.model.canonical.common import CountryCode, CurrencyCode, OfficeCode, TraderId

# ASCII digits, whole text (fullmatch: "$" also matches before a final newline, and Python's
# "\d" takes any Unicode digit).
_CHAPTERS = re.compile(r"([0-9]{2})(?:-([0-9]{2}))?")
#: Rules in one table: each rule is compared with every earlier one (``_not_shadowed``), so the
#: check is quadratic; 1,000 rules take about 3 s, far more than any table needs.
MAX_RULES = 1000
#: Values the conditions may hold in all once "@name" lists are expanded: a list is validated
#: again in every rule naming it, so a few lines could otherwise ask for millions of values.
MAX_CONDITION_VALUES = 100_000


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChapterRange(Strict):
    """Harmonized System chapters ``first``..``last`` inclusive, written "03" or "01-24"."""

    first: int
    last: int

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = _CHAPTERS.fullmatch(value.strip())
        if not found:
            raise ValueError(f"{value!r} is not an HS chapter (\"03\") or range (\"01-24\")")
        first = int(found.group(1))
        last = int(found.group(2) or first)
        if not 1 <= first <= last <= 99:
            raise ValueError(f"{value!r} is not a range of HS chapters 01..99")
        return {"first": first, "last": last}

    def contains(self, chapter: str) -> bool:
        # ASCII digits only: "²".isdigit() is True and int("²") raises.
        return _ascii_digits(chapter) and self.first <= int(chapter) <= self.last


class CodeRange(Strict):
    """Commodity code prefixes ``first``..``last`` (same length), written "0303" or
    "0301-0308"; a code is in the range when its first digits are."""

    first: str
    last: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        first, _, last = value.strip().replace(".", "").partition("-")
        last = last or first
        if not (_ascii_digits(first) and _ascii_digits(last) and len(first) == len(last)
                and first <= last):
            raise ValueError(f"{value!r} is not a commodity code prefix (\"0303\") or a range "
                             "of prefixes of one length (\"0301-0308\")")
        return {"first": first, "last": last}

    def contains(self, code: str) -> bool:
        digits = code.replace(".", "").strip()[: len(self.first)]
        return len(digits) == len(self.first) and self.first <= digits <= self.last


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class Threshold(Strict):
    amount: Decimal = Field(ge=0)
    currency: CurrencyCode = Field(description="ISO 4217")


Function = Literal["original", "replacement", "cancellation", "change", "deletion", "copy",
                   "duplicate", "other"]
#: Conditions that may name a list of the table's ``lists`` as "@name".
LIST_FIELDS = ("partners", "hs_chapters", "commodity_codes", "origin_countries",
               "customs_offices", "functions", "traders", "document_codes")
#: A declaration's overall clearance a rule may wait for (``state``; docs/answers.md).
ClearanceState = Literal["released", "rejected", "cancelled", "awaiting_payment"]
#: UNTDID 1001 document name code (929 import declaration, 830 export declaration).
DocumentCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,3}$")]


class Match(Strict):
    """Conditions that must all hold; an absent condition holds for every message.  A list
    condition may be written "@name" to use one of the table's named ``lists``."""

    kind: Literal["CustomsDeclaration", "CargoReport", "TransportInstruction", "ContainerEvent",
                  "CertificateOfOrigin"] | None = None
    message_type: str | None = None
    partners: tuple[str, ...] | None = None
    hs_chapters: tuple[ChapterRange, ...] | None = Field(
        default=None, description="any goods item's commodity code is in one of these chapters"
    )
    commodity_codes: tuple[CodeRange, ...] | None = Field(
        default=None, description="any goods item's commodity code starts with one of these")
    origin_countries: tuple[CountryCode, ...] | None = Field(
        default=None, description="any goods item originates in one of these countries")
    customs_offices: tuple[OfficeCode, ...] | None = Field(
        default=None, description="the declaration is lodged at one of these offices")
    functions: tuple[Function, ...] | None = Field(
        default=None, description="the message function: original, replacement, cancellation")
    customs_value_at_least: Threshold | None = None
    from_single_window: bool | None = Field(
        default=None, description="the message is a certificate of origin a foreign single "
        "window sent (true), or anything else (false); docs/n2n.md")
    traders: tuple[TraderId, ...] | None = Field(
        default=None, description="a party of the message has one of these identifications")
    trusted_trader: bool | None = Field(
        default=None, description="a party answerable for the message (declarant, "
        "representative, importer, exporter) is (true) or none is (false) an authorised "
        "economic operator registered to the sending partner (gateway traders import)")
    document_codes: tuple[DocumentCode, ...] | None = Field(
        default=None, description="the declaration's document code (UNTDID 1001: 929 "
        "import, 830 export) is one of these")
    state: ClearanceState | None = Field(
        default=None, description="not at intake: the rule is judged when the declaration's "
        "overall clearance becomes this state, and delivers the stored declaration then "
        "(docs/payments.md)")

    @field_validator(*LIST_FIELDS, mode="before")
    @classmethod
    def _named_list(cls, value: Any, info: ValidationInfo) -> Any:
        if not (isinstance(value, str) and value.startswith("@")):
            return value
        lists = (info.context or {}).get("lists") or {}
        if value[1:] not in lists:
            known = ", ".join(f"@{name}" for name in sorted(lists)) or "none"
            raise ValueError(f"unknown list {value!r} (known: {known})")
        named = lists[value[1:]]
        if info.context is not None:
            expanded = info.context.get("expanded_values", 0)
            expanded += len(named) if isinstance(named, list) else 1
            if expanded > MAX_CONDITION_VALUES:
                raise ValueError(f"the rules' conditions name more than "
                                 f"{MAX_CONDITION_VALUES} values in all through their lists")
            info.context["expanded_values"] = expanded
        return named

    @field_validator("partners")
    @classmethod
    def _known_partners(cls, partners: tuple[str, ...] | None,
                        info: ValidationInfo) -> tuple[str, ...] | None:
        known: set[str] | None = (info.context or {}).get("partners")
        unknown = [p for p in partners or () if known is not None and p not in known]
        if unknown:
            raise ValueError(f"unknown partner {unknown[0]!r} (not in partners.yaml): the "
                             "rule could never match it")
        return partners


class Rule(Strict):
    """When ``match`` holds: ``deliver`` to agencies that act on the message, ``copy_to``
    observers that only watch (a statistics office: the delivery says ``role: copy``), and
    ``hold`` the message for ops to release (``gateway release``) instead of sending it."""

    name: str = Field(min_length=1)
    match: Match = Match()
    deliver: tuple[str, ...] = ()
    copy_to: tuple[str, ...] = ()
    hold: bool = False
    #: AMQP message priority (0-9) of the deliveries; the highest of the matching rules wins.
    #: RabbitMQ 4 quorum queues deliver priority 5 and above first; 3.x keeps their order.
    priority: int | None = Field(default=None, ge=0, le=9)

    @model_validator(mode="after")
    def _does_something(self) -> Rule:
        if not (self.deliver or self.copy_to or self.hold):
            raise ValueError("a rule needs deliver, copy_to or hold: true")
        if self.match.state is not None and self.hold:
            raise ValueError("a rule on a declaration's state cannot hold it: it was delivered "
                             "long before (use deliver or copy_to)")
        return self

    @field_validator("deliver", "copy_to")
    @classmethod
    def _known_agencies(cls, deliver: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        known = (info.context or {}).get("agencies")
        if known is not None:
            for agency in deliver:
                if agency not in known:
                    raise ValueError(
                        f"unknown agency {agency!r} (known: {', '.join(sorted(known))})"
                    )
        return deliver

    @model_validator(mode="after")
    def _not_shadowed(self, info: ValidationInfo) -> Rule:
        """A rule that an earlier rule always covers (it matches whenever this one does and
        delivers to the same agencies) can never change a route: refuse it, at its line.
        The rules of a table are validated in order; the context keeps the earlier ones."""
        if info.context is None:
            return self
        earlier: list[Rule] = info.context.setdefault("earlier_rules", [])
        for other in earlier:
            if self._adds_nothing_to(other) and covers(other.match, self.match):
                raise ValueError(
                    f"rule {self.name!r} never changes a route: the earlier rule "
                    f"{other.name!r} matches whenever it does and already does all it does")
        earlier.append(self)
        return self

    def _adds_nothing_to(self, other: Rule) -> bool:
        reaches = set(other.deliver) | set(other.copy_to)
        return (set(self.deliver) <= set(other.deliver) and set(self.copy_to) <= reaches
                and (other.hold or not self.hold)
                and (self.priority is None or (other.priority or 0) >= self.priority))


class RoutingTable(Strict):
    version: Literal[1] = 1
    #: Named lists rules share, e.g. the HS chapters quarantine watches.
    lists: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = Field(min_length=1)
    #: What the router derives from the table once (its rule index); not part of the table.
    _derived: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def derived(self) -> dict[str, Any]:
        return self._derived

    @field_validator("rules", mode="before")
    @classmethod
    def _not_too_many(cls, rules: Any) -> Any:
        # Before each rule is validated (and compared with the earlier ones), not after.
        if isinstance(rules, list | tuple) and len(rules) > MAX_RULES:
            raise ValueError(f"{len(rules)} rules: a table may have at most {MAX_RULES}")
        return rules

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
        return rules


def covers(wide: Match, narrow: Match) -> bool:
    """True when every message ``narrow`` matches, ``wide`` matches too: each condition of
    ``wide`` is also in ``narrow``, at least as strict.  (Only the certain cases: two
    conditions that agree on other grounds, say HS chapters against commodity codes, do not
    count.)"""
    if wide.state != narrow.state:  # judged at another time: neither stands for the other
        return False
    for name in Match.model_fields:
        loose, strict = getattr(wide, name), getattr(narrow, name)
        if loose is None:
            continue
        if strict is None or not _at_least_as_strict(name, loose, strict):
            return False
    return True


def _at_least_as_strict(name: str, loose: Any, strict: Any) -> bool:
    if name in ("kind", "message_type", "trusted_trader", "state"):
        return bool(loose == strict)
    if name == "hs_chapters":
        return _chapters(strict) <= _chapters(loose)
    if name == "commodity_codes":
        return all(any(_prefix_within(s, w) for w in loose) for s in strict)
    if name == "customs_value_at_least":
        return bool(loose.currency == strict.currency and strict.amount >= loose.amount)
    return set(strict) <= set(loose)


def _chapters(ranges: tuple[ChapterRange, ...]) -> set[int]:
    return {c for r in ranges for c in range(r.first, r.last + 1)}


def _prefix_within(narrow: CodeRange, wide: CodeRange) -> bool:
    size = len(wide.first)
    return len(narrow.first) >= size and wide.first <= narrow.first[:size] \
        and narrow.last[:size] <= wide.last
