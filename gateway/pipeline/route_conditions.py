"""The conditions of a routing rule, compiled once per table: each is a predicate (the hot
path of every decision) and the sentence ``gateway routes explain`` prints for it, side by
side, so a condition is defined in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from gateway.config.routing import Match
from gateway.model.canonical import CanonicalMessage, CertificateOfOrigin


@dataclass(frozen=True)
class Facts:
    """What routing reads from a message, worked out once per decision (not once per rule)."""

    kind: str
    message_type: str
    function: str | None
    offices: frozenset[str]
    origins: frozenset[str]
    chapters: frozenset[str]
    codes: tuple[str, ...]
    traders: frozenset[str]
    trusted: bool
    message: CanonicalMessage
    #: A certificate of origin a foreign single window sent (docs/n2n.md).
    from_single_window: bool
    #: The declaration's overall clearance when a rule on it is judged; None at intake.
    state: str | None = None
    _values: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    def of(cls, message: CanonicalMessage, trusted_traders: frozenset[str] = frozenset(),
           state: str | None = None) -> Facts:
        trusted = not message.responsible_trader_ids.isdisjoint(trusted_traders)
        return cls(message.kind, message.source.message_type, message.function_name,
                   message.customs_office_codes, message.origin_countries, message.hs_chapters,
                   message.commodity_codes, message.trader_ids, trusted, message,
                   isinstance(message, CertificateOfOrigin) and message.from_single_window,
                   state)

    @property
    def document_code(self) -> str | None:
        return getattr(self.message, "document_code", None)

    def customs_value(self, currency: str) -> Decimal:
        if currency not in self._values:
            self._values[currency] = self.message.customs_value(currency)
        return self._values[currency]


class Condition(NamedTuple):
    check: Callable[[Facts, str], bool]
    #: How it was found, for explanations: made only when asked (not on the hot path).
    say: Callable[[Facts, str], str]


def _listed(values: frozenset[str] | tuple[str, ...]) -> str:
    return ", ".join(sorted(values)) or "none"


def compile_match(match: Match) -> tuple[Condition, ...]:
    """The conditions ``match`` sets, in a fixed order (cheap ones first)."""
    found: list[Condition] = []
    if match.kind is not None:
        kind = match.kind
        found.append(Condition(lambda f, _p: f.kind == kind,
                               lambda f, _p: f"kind is {kind} (message: {f.kind})"))
    if match.message_type is not None:
        message_type = match.message_type
        found.append(Condition(
            lambda f, _p: f.message_type == message_type,
            lambda f, _p: f"message type is {message_type} (message: {f.message_type})"))
    if match.partners is not None:
        partners = match.partners
        found.append(Condition(
            lambda _f, p: p in partners,
            lambda _f, p: f"partner in {', '.join(partners)} (message: {p})"))
    if match.functions is not None:
        functions = match.functions
        found.append(Condition(
            lambda f, _p: f.function in functions,
            lambda f, _p: f"function in {', '.join(functions)} (message: {f.function})"))
    if match.customs_offices is not None:
        found.append(_overlap("customs office", match.customs_offices, lambda f: f.offices))
    if match.origin_countries is not None:
        found.append(_overlap("an origin", match.origin_countries, lambda f: f.origins))
    if match.hs_chapters is not None:
        found.append(_chapters(match))
    if match.commodity_codes is not None:
        ranges = match.commodity_codes
        wanted = ", ".join(r.first if r.first == r.last else f"{r.first}-{r.last}"
                           for r in ranges)
        found.append(Condition(
            lambda f, _p: any(r.contains(code) for r in ranges for code in f.codes),
            lambda f, _p: f"a commodity code under {wanted} "
                          f"(message: {', '.join(f.codes) or 'none'})"))
    if match.traders is not None:
        found.append(_overlap("a trader", match.traders, lambda f: f.traders))
    if match.trusted_trader is not None:
        trusted = match.trusted_trader
        found.append(Condition(
            lambda f, _p: f.trusted == trusted,
            lambda f, _p: f"trusted trader (AEO) is {str(trusted).lower()} "
                          f"(message: {str(f.trusted).lower()})"))
    if match.document_codes is not None:
        codes = match.document_codes
        found.append(Condition(
            lambda f, _p: f.document_code in codes,
            lambda f, _p: f"document code in {', '.join(codes)} "
                          f"(message: {f.document_code or 'none'})"))
    if match.state is not None:
        state = match.state
        found.append(Condition(
            lambda f, _p: f.state == state,
            lambda f, _p: f"clearance becomes {state} (message: "
                          f"{f.state or 'at intake: judged when its clearance changes'})"))
    if match.from_single_window is not None:
        wanted_sw = match.from_single_window
        found.append(Condition(
            lambda f, _p: f.from_single_window == wanted_sw,
            lambda f, _p: f"from a foreign single window is {str(wanted_sw).lower()} "
                          f"(message: {str(f.from_single_window).lower()})"))
    if match.customs_value_at_least is not None:
        amount = match.customs_value_at_least.amount
        currency = match.customs_value_at_least.currency
        found.append(Condition(
            lambda f, _p: f.customs_value(currency) >= amount,
            lambda f, _p: f"customs value at least {amount} {currency} "
                          f"(message: {f.customs_value(currency)} {currency})"))
    return tuple(found)


def _overlap(label: str, wanted: tuple[str, ...],
             values: Callable[[Facts], frozenset[str]]) -> Condition:
    """The message has one of ``wanted`` among its ``values`` (offices, origins, traders)."""
    return Condition(
        lambda f, _p: not values(f).isdisjoint(wanted),
        lambda f, _p: f"{label} in {', '.join(wanted)} (message: {_listed(values(f))})")


def _chapters(match: Match) -> Condition:
    assert match.hs_chapters is not None
    chapters = frozenset(f"{c:02d}" for r in match.hs_chapters
                         for c in range(r.first, r.last + 1))
    wanted = ", ".join(f"{r.first:02d}-{r.last:02d}" for r in match.hs_chapters)

    def say(facts: Facts, _partner: str) -> str:
        hits = sorted(facts.chapters & chapters)
        return f"an HS chapter in {wanted} (message: {_listed(facts.chapters)}" + (
            f"; matching {', '.join(hits)})" if hits else ")")

    return Condition(lambda f, _p: not chapters.isdisjoint(f.chapters), say)
