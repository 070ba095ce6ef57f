"""A compiled mapping at work: read a message into canonical fields, or render canonical
fields into a message's segments.  Built by ``compile.py``; every path here has already been
checked against the directory, so reading never meets an unknown element.

Reading walks the message arranged in its segment groups (``model/arranged.Instance``, from
the validator's structure walk); rendering builds the same kind of tree (``Draft``) and writes
it in directory order (``emit``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from gateway.catalog.specs import GroupSpec, SegmentRef
from gateway.errors import MappingError, RenderError
from gateway.model.arranged import Instance
from gateway.model.edifact import Segment
from gateway.model.findings import shown
from gateway.pipeline.mapping import conversions as conv
from gateway.pipeline.mapping.extract import Extractor
from gateway.pipeline.mapping.paths import Condition, Position, Step
from gateway.pipeline.validate import format_error
from gateway.wire.edifact.writer import OutSegment, Writer

Scope = Instance | Segment


class LocatedMappingError(MappingError):
    """A mapping error at a segment (and element) of the message, for the CONTRL's UCS/UCD;
    ``segment`` None: at the message level."""

    def __init__(self, text: str, segment: Segment | None, position: Position | None,
                 syntax_error_code: int) -> None:
        super().__init__(text)
        self.syntax_error_code = syntax_error_code
        self.segment = segment
        self.element = position.element if position else None
        self.component = position.component if position else None


class BadValue(LocatedMappingError):
    """A value that cannot become its canonical type (0085 12: Invalid value; 37: Invalid
    type of characters, e.g. a letter or another script's digit in a number)."""

    def __init__(self, segment: Segment, position: Position, reason: str,
                 syntax_error_code: int = 12) -> None:
        super().__init__(f"{segment.tag} {position.id} (element {position.element}."
                         f"{position.component}): {reason}", segment, position,
                         syntax_error_code)


class MissingValue(LocatedMappingError):
    """A canonical field that must have a value found none (0085 13: Missing)."""

    def __init__(self, what: str, where: Segment | None,
                 position: Position | None = None) -> None:
        super().__init__(f"{what} is missing", where, position, 13)


@dataclass(frozen=True, slots=True)
class ReadContext:
    zone: ZoneInfo
    #: The values of the message's segments, each segment matched once (``extract.py``).
    extract: Extractor


# --- the message side: finding segments, reading and writing values ------------------------


def value_at(segment: Segment, position: Position, ctx: ReadContext) -> str:
    flat = ctx.extract.flat(segment)
    if flat is not None:
        return ctx.extract.clean(flat[position.flat] or "")
    try:
        return segment.elements[position.element - 1][0][position.component - 1]
    except IndexError:
        return ""


def values_at(segment: Segment, position: Position, ctx: ReadContext) -> list[str]:
    """Every same-id component in every occurrence (C108's five 4440 lines, repeated)."""
    flat = ctx.extract.flat(segment)
    if flat is not None:  # one occurrence: a repeated element does not match the pattern
        base = position.flat - position.component
        return [ctx.extract.clean(v) for v in (flat[base + c] for c in position.siblings) if v]
    found = []
    for occurrence in segment.occurrences(position.element):
        for component in position.siblings:
            if component <= len(occurrence) and occurrence[component - 1]:
                found.append(occurrence[component - 1])
    return found


def _step(scopes: Sequence[Scope], step: Step, ctx: ReadContext) -> Sequence[Scope]:
    found: list[Scope] = []
    name = step.name
    for scope in scopes:
        if isinstance(scope, Instance):
            found += (scope.groups if step.group else scope.segments).get(name, ())
    if step.conditions:
        return [s for s in found
                if holds_all(s.trigger if isinstance(s, Instance) else s, step.conditions, ctx)]
    return found


def holds_all(segment: Segment | None, conditions: tuple[Condition, ...],
              ctx: ReadContext) -> bool:
    if segment is None:
        return False
    for condition in conditions:
        if value_at(segment, condition.position, ctx) not in condition.codes:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Opening:
    """A step as rendering takes it: where its drafts are kept, which of them it may reuse
    (the values its conditions check), and what a new one is given (their first codes)."""

    group: bool
    name: str
    #: A group's trigger segment ("" for a segment).
    trigger: str
    checks: tuple[tuple[tuple[int, int], tuple[str, ...]], ...]
    codes: tuple[tuple[tuple[int, int], str], ...]

    @classmethod
    def of(cls, step: Step) -> Opening:
        keys = [(c.position.element, c.position.component) for c in step.conditions]
        return cls(step.group, step.name, step.trigger or "",
                   tuple(zip(keys, (c.codes for c in step.conditions), strict=True)),
                   tuple(zip(keys, (c.codes[0] for c in step.conditions), strict=True)))


@dataclass(frozen=True, slots=True)
class Locator:
    """The segments or group instances a path leads to from a scope (none: the scope)."""

    steps: tuple[Step, ...]
    #: The steps as rendering takes them (``make``), and the one a fresh item renews.
    openings: tuple[Opening, ...] = field(init=False, repr=False, compare=False)
    _renew: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        last_group = max((i for i, s in enumerate(self.steps) if s.group), default=-1)
        object.__setattr__(self, "openings", tuple(Opening.of(s) for s in self.steps))
        object.__setattr__(self, "_renew",
                           last_group if last_group >= 0 else len(self.steps) - 1)

    def find(self, scope: Scope, ctx: ReadContext) -> Sequence[Scope]:
        """Every match, in message order (a list: most paths find one or two)."""
        found: Sequence[Scope] = (scope,)
        for step in self.steps:
            found = _step(found, step, ctx)
            if not found:
                break
        return found

    def make(self, draft: Draft, fresh: bool) -> Draft:
        """The draft scope this path names, created where missing.  ``fresh`` (each item of a
        list) opens a new instance of the last group of the path, or of the segment when the
        path has no group."""
        current = draft
        if not fresh:
            for opening in self.openings:
                current = current.child(opening, False)
            return current
        renew = self._renew
        for index, opening in enumerate(self.openings):
            current = current.child(opening, index == renew)
        return current


# --- drafts: a message being rendered --------------------------------------------------------


@dataclass(slots=True)
class Draft:
    """A message level, group instance or segment under construction."""

    tag: str = ""
    values: dict[tuple[int, int], str] = field(default_factory=dict)
    segments: dict[str, list[Draft]] = field(default_factory=dict)
    groups: dict[str, list[Draft]] = field(default_factory=dict)
    trigger: Draft | None = None

    def child(self, opening: Opening, fresh: bool) -> Draft:
        pools = self.groups if opening.group else self.segments
        pool = pools.get(opening.name)
        if pool is None:
            pool = pools[opening.name] = []
        elif not fresh:  # the first draft whose values (a group's: its trigger's) match
            checks = opening.checks
            if not checks:  # every draft of a group pool has its trigger
                return pool[0]
            for existing in pool:
                target = existing.trigger if opening.group else existing
                if target is None:
                    continue
                values = target.values
                for key, codes in checks:
                    if values.get(key) not in codes:
                        break
                else:
                    return existing
        if opening.group:  # an instance opened by its trigger, which carries the conditions
            trigger = Draft(opening.trigger, dict(opening.codes), _NO_CHILDREN, _NO_CHILDREN)
            made = Draft("", {}, {opening.trigger: [trigger]}, {}, trigger)
        else:
            made = Draft(opening.name, dict(opening.codes), _NO_CHILDREN, _NO_CHILDREN)
        pool.append(made)
        return made

    def out(self) -> OutSegment:
        values = self.values
        elements: list[list[str]] = []
        for key in sorted(values):  # in order: each value goes after those before it
            element, component = key
            while len(elements) < element:
                elements.append([])
            components = elements[element - 1]
            while len(components) < component - 1:
                components.append("")
            components.append(values[key])
        return (self.tag, elements)


class _Childless(dict[str, list[Draft]]):
    """What a segment's draft holds of segments and groups: nothing, ever (a path ends at its
    segment), so every segment shares this one instead of two dicts of its own."""

    def __setitem__(self, key: str, value: list[Draft]) -> None:
        raise TypeError("a segment holds no segments or groups")

    def setdefault(self, key: str, default: list[Draft] | None = None) -> list[Draft]:
        raise TypeError("a segment holds no segments or groups")


_NO_CHILDREN = _Childless()


def emit(draft: Draft, content: Sequence[SegmentRef | GroupSpec]) -> list[OutSegment]:
    """The draft's segments in the order of the message structure (ISO 9735-1 clause 7)."""
    return [segment.out() for segment in in_order(draft, content)]


def emit_text(draft: Draft, content: Sequence[SegmentRef | GroupSpec],
              writer: Writer) -> list[str]:
    """``emit``'s segments as ``writer`` writes them, each straight from its values."""
    return writer.from_values(in_order(draft, content))


def in_order(draft: Draft, content: Sequence[SegmentRef | GroupSpec]) -> list[Draft]:
    """The draft's segment drafts in the order of the message structure."""
    found: list[Draft] = []
    segments, groups = draft.segments, draft.groups
    for node in content:
        if isinstance(node, SegmentRef):
            if node.tag in segments:
                found += segments[node.tag]
            continue
        for instance in groups.get(node.name, ()):
            found += in_order(instance, node.content)
    return found


# --- conversions ------------------------------------------------------------------------------


class Converter(Protocol):
    def read(self, text: str, segment: Segment, ctx: ReadContext) -> Any: ...

    def write(self, value: Any) -> list[tuple[Position | None, str]]:
        """(position, text) pairs; position None is the field's own."""
        ...


@dataclass(frozen=True, slots=True)
class Text:
    def read(self, text: str, segment: Segment, ctx: ReadContext) -> Any:
        return text

    def write(self, value: Any) -> list[tuple[Position | None, str]]:
        return [(None, str(value))]


@dataclass(frozen=True, slots=True)
class Number:
    position: Position
    whole: bool = False

    def read(self, text: str, segment: Segment, ctx: ReadContext) -> Any:
        try:
            return conv.to_integer(text) if self.whole else conv.to_decimal(text)
        except conv.ConversionError as exc:
            raise BadValue(segment, self.position, str(exc), exc.syntax_error_code) from exc

    def write(self, value: Any) -> list[tuple[Position | None, str]]:
        return [(None, conv.from_decimal(value) if isinstance(value, Decimal) else str(value))]


@dataclass(frozen=True, slots=True)
class Checked:
    """Text the canonical model normalises or refuses (a commodity code, a country code ...),
    put through the model's own type here, where the segment and element it came from are
    known, so that a refusal is answered at its place (0085 12 in UCS/UCD)."""

    position: Position
    adapter: TypeAdapter[Any]

    def read(self, text: str, segment: Segment, ctx: ReadContext) -> Any:
        try:
            return self.adapter.validate_python(text)
        except ValidationError as exc:
            reason = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise BadValue(segment, self.position, reason) from exc

    def write(self, value: Any) -> list[tuple[Position | None, str]]:
        return [(None, str(value))]


@dataclass(frozen=True, slots=True)
class Date:
    """A date by its 2379 format: read from ``format_at`` in the same segment, else
    ``format_default``; a format we do not convert gives None when the field may be empty."""

    position: Position
    format_at: Position | None
    format_default: str | None
    optional: bool
    wants: str  # "date", "datetime" or "either"

    def read(self, text: str, segment: Segment, ctx: ReadContext) -> Any:
        code = (value_at(segment, self.format_at, ctx) if self.format_at else "") \
            or self.format_default or ""
        if not conv.supported_format(code):
            if self.optional:
                return None
            raise BadValue(segment, self.position, f"date format {code or '(none)'} is not "
                           f"one of {', '.join(conv.DATE_FORMATS)}")
        try:
            value = conv.to_date(text, code, ctx.zone)
        except conv.ConversionError as exc:
            raise BadValue(segment, self.position, str(exc)) from exc
        if self.wants == "datetime" and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(), tzinfo=ctx.zone)
        if self.wants == "date" and isinstance(value, dt.datetime):
            value = value.date()
        return value

    def write(self, value: Any) -> list[tuple[Position | None, str]]:
        text, code = conv.from_date(value)
        return [(None, text)] + ([(self.format_at, code)] if self.format_at else [])


@dataclass(frozen=True, slots=True)
class Translate:
    """Codes through a named table; an unlisted code without a default is the partner's."""

    name: str
    codes: dict[str, str]
    default: str | None
    position: Position
    #: The first code of each value (what ``write`` looks for).
    _code_of: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        code_of: dict[str, str] = {}
        for code, value in self.codes.items():
            code_of.setdefault(value, code)
        object.__setattr__(self, "_code_of", code_of)

    def read(self, text: str, segment: Segment, ctx: ReadContext) -> Any:
        found = self.codes.get(text, self.default)
        if found is None:
            raise BadValue(segment, self.position, f"code {shown(text)} is not in table "
                           f"{self.name} ({', '.join(self.codes)})")
        return found

    def write(self, value: Any) -> list[tuple[Position | None, str]]:
        code = self._code_of.get(value) if type(value) is str \
            else next((c for c, v in self.codes.items() if v == value), None)
        if code is None:
            raise RenderError(f"{value!r} has no code in table {self.name}")
        return [(None, code)]


# --- fields -----------------------------------------------------------------------------------


class FieldPlan(Protocol):
    @property
    def name(self) -> str: ...

    def read(self, scope: Scope, ctx: ReadContext, into: dict[str, Any]) -> None: ...

    def write(self, value: Any, draft: Draft) -> None: ...


@dataclass(frozen=True, slots=True)
class Place:
    """One place a value may stand: through ``locator`` to a segment, then ``position``."""

    locator: Locator
    position: Position


@dataclass(frozen=True, slots=True)
class ValueField:
    name: str
    path: str
    sources: tuple[Place, ...]
    convert: Converter
    required: bool
    join: str | None = None
    default: str | None = None
    #: For a list of values: the segments each value is read from.
    each: Locator | None = None

    def read(self, scope: Scope, ctx: ReadContext, into: dict[str, Any]) -> None:
        if self.each is not None:
            values = [self._one(s, ctx) for s in self.each.find(scope, ctx)]
            into[self.name] = [v for v in values if v is not None]
            return
        value = self._one(scope, ctx)
        if value is not None:
            into[self.name] = value
        elif self.required:
            self.missing(scope, ctx)

    def missing(self, scope: Scope, ctx: ReadContext) -> None:
        """Raise MissingValue at the segment that should hold the value when there is one
        (UCS/UCD), else at the group or message level that lacks the segment."""
        segment = self._first_segment(scope, ctx)
        if segment is not None:
            raise MissingValue(f"{self.name} ({self.path})", segment, self.sources[0].position)
        raise MissingValue(f"{self.name} ({self.path})", _anchor(scope))

    def _first_segment(self, scope: Scope, ctx: ReadContext) -> Segment | None:
        return next((s for s in self.sources[0].locator.find(scope, ctx)
                     if isinstance(s, Segment)), None)

    @property
    def single(self) -> bool:
        """One value from one place: no join, default or list."""
        return len(self.sources) == 1 and self.join is None and self.default is None \
            and self.each is None

    @property
    def plain(self) -> bool:
        """A single text value (what codegen.py writes inline)."""
        return self.single and isinstance(self.convert, Text)

    def _one(self, scope: Scope, ctx: ReadContext) -> Any:
        if self.join is not None:
            for source in self.sources:
                texts = [t for segment in source.locator.find(scope, ctx)
                         if isinstance(segment, Segment)
                         for t in values_at(segment, source.position, ctx)]
                if texts:
                    return self.join.join(texts)
            return None
        for source in self.sources:
            for segment in source.locator.find(scope, ctx):
                if isinstance(segment, Segment):
                    text = value_at(segment, source.position, ctx)
                    if text:
                        return self.convert.read(text, segment, ctx)
        return None if self.default is None else self._default(scope, ctx)

    def _default(self, scope: Scope, ctx: ReadContext) -> Any:
        assert self.default is not None
        segment = self._first_segment(scope, ctx)
        if segment is None:
            return None
        return self.convert.read(self.default, segment, ctx)

    def write(self, value: Any, draft: Draft) -> None:
        if value is None:
            if self.default is not None and self.each is None:
                self._put_text(self.default, draft)
            return
        if self.each is not None:
            for item in value:
                self._put(item, self.each.make(draft, fresh=True))
            return
        self._put(value, draft)

    def _put(self, value: Any, draft: Draft) -> None:
        source = self.sources[0]
        segment = draft
        for opening in source.locator.openings:  # Locator.make(draft, fresh=False), inline
            segment = segment.child(opening, False)
        for position, text in self.convert.write(value):
            self._set(segment, position or source.position, text)

    def writer(self) -> Callable[[Any, Draft], None]:
        """``write`` as one function, for the common shape (one place, no default, not a
        list: nothing but the value decides where it goes); ``write`` itself otherwise."""
        if len(self.sources) != 1 or self.default is not None or self.each is not None:
            return self.write
        source = self.sources[0]
        openings, position, convert, put = (source.locator.openings, source.position,
                                            self.convert, self._set)
        if not isinstance(convert, Text | Checked):
            def write(value: Any, draft: Draft) -> None:
                if value is None:
                    return
                segment = draft
                for opening in openings:
                    segment = segment.child(opening, False)
                for at, text in convert.write(value):
                    put(segment, at or position, text)
            return write

        key, representation = (position.element, position.component), position.representation
        # an alphanumeric text within its length needs no more checking (``_set``)
        low, high = (representation.min, representation.max) \
            if representation is not None and representation.format == "an" else (1, 0)

        def write_text(value: Any, draft: Draft) -> None:  # their write: [(None, str(value))]
            if value is None:
                return
            segment = draft
            for opening in openings:
                segment = segment.child(opening, False)
            text = str(value)
            if low <= len(text) <= high:
                segment.values[key] = text
            else:
                put(segment, position, text)
        return write_text

    def _put_text(self, code: str, draft: Draft) -> None:
        source = self.sources[0]
        self._set(source.locator.make(draft, fresh=False), source.position, code)

    def _set(self, segment: Draft, position: Position, text: str) -> None:
        """Refuse what the validator would refuse (the ISO 9735 representation: a/an/n and
        length): rendering must never send a partner a message our own validator rejects."""
        representation = position.representation
        if representation is not None and not (  # an alphanumeric text within its length
                representation.format == "an"
                and representation.min <= len(text) <= representation.max):
            error = format_error(representation, text)
            if error is not None:
                raise RenderError(f"{self.name}: {segment.tag} {position.id}: {error[1]}")
        segment.values[(position.element, position.component)] = text


@dataclass(frozen=True, slots=True)
class Constant:
    """A code rendering writes into a segment it creates (``write:`` in the file)."""

    locator: Locator
    position: Position
    code: str

    def put(self, draft: Draft) -> None:
        segment = draft
        for opening in self.locator.openings:  # Locator.make(draft, fresh=False), inline
            segment = segment.child(opening, False)
        segment.values[(self.position.element, self.position.component)] = self.code


@dataclass(frozen=True, slots=True)
class ObjectField:
    """A canonical object (or list of them, ``many``) read from the scopes ``locator`` finds."""

    name: str
    path: str
    locator: Locator
    fields: tuple[FieldPlan, ...]
    many: bool
    required: bool
    constants: tuple[Constant, ...] = ()
    #: The same reading as one generated function (``codegen.py``), installed once compiled.
    _reader: Callable[[Scope, ReadContext], dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False)
    #: Each field's name and how it is written (``ValueField.writer``), made on first use.
    _writes: tuple[tuple[str, Callable[[Any, Draft], None]], ...] | None = field(
        default=None, init=False, repr=False, compare=False)

    def read(self, scope: Scope, ctx: ReadContext, into: dict[str, Any]) -> None:
        if self.many:
            into[self.name] = [self.read_object(s, ctx) for s in self.locator.find(scope, ctx)]
            return
        found = self.locator.find(scope, ctx)
        if found:
            into[self.name] = self.read_object(found[0], ctx)
        elif self.required:
            raise MissingValue(f"{self.name} ({self.path})", _anchor(scope))

    def read_object(self, scope: Scope, ctx: ReadContext) -> dict[str, Any]:
        reader = self._reader
        return reader(scope, ctx) if reader is not None else self.interpret(scope, ctx)

    def interpret(self, scope: Scope, ctx: ReadContext) -> dict[str, Any]:
        """Read the object field by field (what the generated reader does in one go, and
        falls back to for a segment its pattern did not take)."""
        values: dict[str, Any] = {}
        for plan in self.fields:
            plan.read(scope, ctx, values)
        return values

    def write(self, value: Any, draft: Draft) -> None:
        if value is None:
            return
        for item in (value if self.many else (value,)):
            self.write_object(item, self.locator.make(draft, fresh=self.many))

    def write_object(self, value: Any, draft: Draft) -> None:
        writes = self._writes
        if writes is None:
            writes = tuple((plan.name, plan.writer() if isinstance(plan, ValueField)
                            else plan.write) for plan in self.fields)
            object.__setattr__(self, "_writes", writes)
        for constant in self.constants:
            constant.put(draft)
        for name, write in writes:
            write(getattr(value, name), draft)


def _anchor(scope: Scope) -> Segment | None:
    return scope if isinstance(scope, Segment) else scope.trigger
