"""The licence check, pure: does every goods item that cites a licence (DOC 911 import
licence, 811 export licence, with a number) stand on a licence that exists, is in force on the
declaration's date, is held by the declared importer or exporter, covers the goods item's
commodity code, and has enough quantity left (docs/licences.md)?

The caller reads the licences, locked, with what is left of each (quantity less what is drawn
and reserved); this module only judges, and says how much of each licence the declaration
would draw."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.model.canonical.customs_declaration import CustomsDeclaration, GoodsItem
from gateway.model.canonical.licence import LICENCE_DOCUMENTS, Licence, commodity_digits

#: UNTDID 2005 137: document date (the date the declaration was made out).
DOCUMENT_DATE = "137"
#: UNTDID 3035 party roles the holder must be: importer of an import licence, exporter of an
#: export licence.
HOLDER_ROLES = {"import": "IM", "export": "EX"}
#: What a reason may hold: a CUSRES FTX 4440 and a SDK reason hold 70 characters.
MAX_REASON = 70


@dataclass(frozen=True, slots=True)
class Citation:
    """One goods item citing one licence."""

    item: int  # the goods item's position, from 1
    kind: str  # "import" or "export", from the document code
    number: str


@dataclass(frozen=True, slots=True)
class Standing:
    """A licence as the registry holds it, and the quantity left on it."""

    licence: Licence
    remaining: Decimal


@dataclass(frozen=True, slots=True)
class LicenceVerdict:
    """``draws``: quantity per licence number the declaration reserves when it passes;
    ``reasons``: why it fails (empty when it passes); ``on``: the date judged, and whether it
    is the declaration's own (else the decision's)."""

    on: dt.date
    dated_by_declaration: bool
    draws: dict[str, Decimal] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.reasons


def citations(declaration: CustomsDeclaration) -> tuple[Citation, ...]:
    """Every goods item's licence citation (a licence document with a number)."""
    return tuple(
        Citation(position, LICENCE_DOCUMENTS[document.code], document.number.strip())
        for position, goods in enumerate(declaration.goods_items, start=1)
        for document in goods.documents
        if document.code in LICENCE_DOCUMENTS and document.number and document.number.strip())


def cited_numbers(declaration: CustomsDeclaration) -> tuple[str, ...]:
    """The licence numbers cited, sorted: the order they are locked in (no deadlock between
    two deciders locking the same licences)."""
    return tuple(sorted({c.number for c in citations(declaration)}))


def declaration_date(declaration: CustomsDeclaration) -> dt.date | None:
    """The declaration's document date (DTM 137), when it has one that reads as a date."""
    for date in declaration.dates:
        if date.qualifier == DOCUMENT_DATE and date.value is not None:
            value = date.value
            return value.date() if isinstance(value, dt.datetime) else value
    return None


def check(declaration: CustomsDeclaration, registry: Mapping[str, Standing],
          decided_on: dt.date) -> LicenceVerdict:
    """Judge every citation of ``declaration`` against ``registry`` on the declaration's date
    (the decision's, ``decided_on``, when it has none)."""
    own = declaration_date(declaration)
    on = own if own is not None else decided_on
    reasons: list[str] = []
    wanted: dict[str, Decimal] = {}
    for citation in citations(declaration):
        goods = declaration.goods_items[citation.item - 1]
        problem = _problem(declaration, goods, citation, registry.get(citation.number), on)
        if isinstance(problem, str):
            reasons.append(_short(f"Item {citation.item}: {problem}"))
        else:
            wanted[citation.number] = wanted.get(citation.number, Decimal(0)) + problem
    for number, quantity in sorted(wanted.items()):
        remaining = registry[number].remaining
        if quantity > remaining:
            unit = registry[number].licence.unit
            reasons.append(_short(f"Licence {number}: {_n(remaining)} {unit} left, "
                                  f"{_n(quantity)} needed"))
    if reasons:
        return LicenceVerdict(on, own is not None, reasons=tuple(reasons))
    return LicenceVerdict(on, own is not None, draws=wanted)


def _problem(declaration: CustomsDeclaration, goods: GoodsItem, citation: Citation,
             standing: Standing | None, on: dt.date) -> str | Decimal:
    """Why the citation fails, or the quantity it draws."""
    number = citation.number
    if standing is None:
        return f"licence {number} not found"
    licence = standing.licence
    if licence.status == "revoked":
        return f"licence {number} is revoked"
    if licence.licence_kind != citation.kind:
        return f"licence {number} is an {licence.licence_kind} licence"
    if not licence.valid_from <= on <= licence.valid_until:
        return f"licence {number} not valid on {on.isoformat()}"
    role = HOLDER_ROLES[licence.licence_kind]
    if licence.holder not in {p.id for p in declaration.parties if p.role == role and p.id}:
        return f"licence {number} not held by the declared {_ROLE_NAMES[role]}"
    if not covers(licence, goods.commodity_code):
        return f"licence {number} does not cover {goods.commodity_code or 'no code'}"
    quantity = quantity_in(goods, licence.unit)
    if quantity is None:
        return f"no quantity in {licence.unit[:8]} for licence {number}"
    return quantity


_ROLE_NAMES = {"IM": "importer", "EX": "exporter"}


def covers(licence: Licence, commodity_code: str | None) -> bool:
    """Whether one of the licence's codes or prefixes covers ``commodity_code``."""
    if not commodity_code:
        return False
    digits = commodity_digits(commodity_code)
    return any(digits.startswith(commodity_digits(prefix)) for prefix in licence.commodity_codes)


def quantity_in(goods: GoodsItem, unit: str) -> Decimal | None:
    """The goods item's quantity in ``unit``: its net weight when that is in the unit, else
    the first measurement in it (MEA 6411), else None (no quantity to draw: the check fails).
    A negative quantity is no quantity."""
    candidates = [goods.net_weight, *goods.measurements, goods.gross_weight]
    for measurement in candidates:
        if measurement is not None and measurement.unit == unit and measurement.value is not None:
            return measurement.value if measurement.value >= 0 else None
    return None


def _n(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _short(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."
