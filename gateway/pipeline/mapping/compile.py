"""Compile a mapping file against the directory's message structure and the canonical model.

Everything a mapping could get wrong is found here, at start-up, with the file, line and
field: a path the structure does not have, a canonical field the model does not have (or a
mandatory one left unmapped), a conversion that does not fit its field (a number read from
text, a date without its 2379 format, a code list value without a table), an unknown table or
part.  What compiles cannot fail for those reasons while messages flow.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, TypeAdapter

from gateway.catalog.catalog import CompiledMessage
from gateway.config.mappings import FieldRule, FieldSpec, MappingFile, PartsFile, Table
from gateway.config.yamlfile import Location, PathKey, place
from gateway.errors import ConfigError
from gateway.model.canonical import KINDS, Canonical
from gateway.model.numbers import is_ascii_digits
from gateway.pipeline.mapping import codegen
from gateway.pipeline.mapping import compiled as run
from gateway.pipeline.mapping.mapping import CompiledMapping
from gateway.pipeline.mapping.paths import (
    GroupScope,
    PathError,
    Resolved,
    Scope,
    SegmentScope,
    element_position,
    resolve,
)

#: Canonical field types read by a UNTDID 2379 date conversion.
DATE_KINDS = ("date", "datetime", "either")
#: Fields the engine fills, never a mapping.
ENGINE_FIELDS = frozenset({"kind", "schema_version", "source"})


@dataclass(frozen=True, slots=True)
class Origin:
    """Which file (and where in it) a field spec comes from: a mapping file or common.yaml."""

    name: str
    where: dict[PathKey, Location]


@dataclass(frozen=True, slots=True)
class Shape:
    """What a canonical field holds, as far as a mapping cares."""

    many: bool
    model: type[BaseModel] | None
    scalar: str  # text, decimal, integer, date, datetime, either
    literals: tuple[str, ...] = ()
    #: A text value the model normalises or refuses (``Annotated`` with its validators): the
    #: type the mapping puts each value through where it reads it.
    checked: Any = None


def compile_mapping(file: MappingFile, origin: Origin, message: CompiledMessage,
                    common: PartsFile, common_origin: Origin,
                    generated: bool = True) -> CompiledMapping:
    """``generated``: read through generated functions (codegen.py); False keeps the plans'
    own reading, which tests hold the generated one to."""
    compiler = _Compiler(file, origin, message, common, common_origin)
    mapping = compiler.build()
    if generated:
        codegen.install(mapping.root)
    return mapping


class FieldsCompiler:
    """The checks every mapping syntax makes alike (EDIFACT here, XML in ``xml_compile.py``):
    canonical field names, objects against lists, parts, tables and the conversion a field's
    type takes.  Where values stand is the syntax's own (``_Compiler``, ``XmlCompiler``)."""

    def __init__(self, parts: dict[str, dict[str, FieldSpec]], tables: dict[str, Table],
                 origin: Origin, common: PartsFile, common_origin: Origin) -> None:
        self.origin = origin
        self.parts = parts
        self.common = common
        self.common_origin = common_origin
        clash = set(tables) & set(common.tables)
        if clash:
            self.fail(origin, ("tables", sorted(clash)[0]),
                      "a table of this name is in common.yaml already")
        self.tables: dict[str, Table] = {**common.tables, **tables}

    def fail(self, origin: Origin, key: PathKey, reason: str) -> typing.NoReturn:
        raise ConfigError(f"{place(origin.where, key, origin.name)}: {reason}")

    def model_of(self, kind: str, time_zone: str) -> tuple[type[Canonical], ZoneInfo]:
        model = KINDS.get(kind)
        if model is None:
            self.fail(self.origin, ("kind",), f"no canonical kind {kind!r} (kinds: "
                      f"{', '.join(KINDS)})")
        try:
            return model, ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(self.origin, ("time_zone",), f"{time_zone!r} is not a time zone name")

    def check_names(self, specs: dict[str, FieldSpec], model: type[BaseModel], origin: Origin,
                    key: PathKey) -> None:
        """Every mapped name is a field of ``model`` the mapping may fill, and every field
        the model needs is mapped."""
        model_fields = model.model_fields
        for name in specs:
            if name in ENGINE_FIELDS:
                self.fail(origin, (*key, name), f"{name} is filled by the gateway, not mapped")
            if name not in model_fields:
                known = ", ".join(f for f in model_fields if f not in ENGINE_FIELDS)
                self.fail(origin, (*key, name),
                          f"{model.__name__} has no field {name!r} (it has {known})")
        unmapped = [n for n, info in model_fields.items()
                    if info.is_required() and n not in specs and n not in ENGINE_FIELDS]
        if unmapped:
            self.fail(origin, key, f"{model.__name__} needs {', '.join(unmapped)}: map them")

    def object_where(self, name: str, spec: FieldRule, shape: Shape, origin: Origin,
                     key: PathKey) -> str | None:
        """Where an object (or each of a list of them) is read from: ``each``, ``from`` or
        None (the same place), once the spec is checked to fit an object field."""
        assert shape.model is not None
        if spec.paths or spec.table or spec.format or spec.join:
            self.fail(origin, key, f"{name} is an object ({shape.model.__name__}): give "
                      "fields or part, with from (one) or each (a list)")
        if shape.many and spec.from_:
            self.fail(origin, key, f"{name} is a list: read it with each, not from")
        if not shape.many and spec.each:
            self.fail(origin, key, f"{name} holds one {shape.model.__name__}: read it with "
                      "from, not each")
        where = spec.each or spec.from_
        if shape.many and not where:
            self.fail(origin, key, f"{name} is a list: say which segments or groups with each")
        return where

    def members(self, spec: FieldRule, origin: Origin,
                key: PathKey) -> tuple[dict[str, FieldSpec], Origin, PathKey]:
        if spec.fields is not None and spec.part is not None:
            self.fail(origin, key, "give fields or part, not both")
        if spec.fields is not None:
            return spec.fields, origin, (*key, "fields")
        if spec.part is None:
            self.fail(origin, key, "an object needs fields or part")
        for parts, parts_origin in ((self.parts, self.origin),
                                    (self.common.parts, self.common_origin)):
            if spec.part in parts:
                return parts[spec.part], parts_origin, ("parts", spec.part)
        known = sorted({*self.parts, *self.common.parts})
        return self.fail(origin, (*key, "part"),
                         f"no part {spec.part!r} (parts: {', '.join(known)})")

    def check_value(self, name: str, spec: FieldRule, shape: Shape, origin: Origin,
                    key: PathKey) -> None:
        """A value field's spec: a path, ``each`` exactly when the field is a list."""
        if spec.fields is not None or spec.part is not None or spec.from_:
            self.fail(origin, key, f"{name} is a value, not an object: give path")
        if not spec.paths:
            self.fail(origin, key, f"{name}: give the path of its value")
        if shape.many != bool(spec.each):
            self.fail(origin, key, f"{name} is a list: give each and a path inside it"
                      if shape.many else f"{name} holds one value: each makes a list")

    def conversion(self, name: str, spec: FieldRule, shape: Shape, origin: Origin,
                   key: PathKey) -> str:
        """How a value becomes its field's type: ``table``, ``number``, ``date``,
        ``checked`` (the model's own type) or ``text``; what the syntax reads it from is the
        caller's to check (a number from a numeric element, a date with its format)."""
        if spec.join is not None and (shape.scalar != "text" or spec.table or shape.checked):
            self.fail(origin, (*key, "join"), f"join makes free text; {name} is "
                      f"{'a checked value' if shape.checked else shape.scalar}")
        if spec.format is not None and shape.scalar not in DATE_KINDS:
            self.fail(origin, (*key, "format"), f"{name} is not a date; format is for dates")
        if spec.table is not None:
            self.table(name, spec.table, shape, origin, key)
            return "table"
        if shape.literals:
            self.fail(origin, key, f"{name} takes one of {', '.join(shape.literals)}: "
                      "translate the codes with a table")
        if shape.scalar in ("decimal", "integer"):
            return "number"
        if shape.scalar in DATE_KINDS:
            return "date"
        return "checked" if shape.checked is not None else "text"

    def table(self, name: str, table_name: str, shape: Shape, origin: Origin,
              key: PathKey) -> Table:
        table = self.tables.get(table_name)
        if table is None:
            self.fail(origin, (*key, "table"), f"no table {table_name!r} (tables: "
                      f"{', '.join(sorted(self.tables)) or 'none'})")
        if shape.scalar != "text":
            self.fail(origin, (*key, "table"), f"tables give text; {name} is {shape.scalar}")
        if shape.literals:
            values = {*table.codes.values(), *([table.default] if table.default else [])}
            stray = sorted(values - set(shape.literals))
            if stray:
                self.fail(origin, (*key, "table"), f"table {table_name} gives {stray[0]!r}, "
                          f"which {name} does not take ({', '.join(shape.literals)})")
        return table


class _Compiler(FieldsCompiler):
    def __init__(self, file: MappingFile, origin: Origin, message: CompiledMessage,
                 common: PartsFile, common_origin: Origin) -> None:
        super().__init__(file.parts, file.tables, origin, common, common_origin)
        self.file = file
        self.message = message

    def build(self) -> CompiledMapping:
        file, origin = self.file, self.origin
        model, zone = self.model_of(file.kind, file.time_zone)
        scope = GroupScope("message", self.message.spec.content)
        fields = self.fields(file.fields, model, scope, origin, ("fields",))
        constants = tuple(self.constant(path, code, scope, origin, ("write", path))
                          for path, code in file.write.items())
        root = run.ObjectField("", "message", run.Locator(()), fields, many=False,
                               required=True, constants=constants)
        return CompiledMapping(
            name=origin.name, message=file.message, release=file.release, model=model,
            root=root, structure=self.message, renders=file.renders, zone=zone)

    def fields(self, specs: dict[str, FieldSpec], model: type[BaseModel], scope: Scope,
               origin: Origin, key: PathKey) -> tuple[run.FieldPlan, ...]:
        self.check_names(specs, model, origin, key)
        model_fields = model.model_fields
        return tuple(self.field(name, spec, model_fields[name].rebuild_annotation(),
                                model_fields[name].is_required(), scope, origin,
                                (*key, name))
                     for name, spec in specs.items())

    def field(self, name: str, spec: FieldSpec, annotation: Any, required: bool,
              scope: Scope, origin: Origin, key: PathKey) -> run.FieldPlan:
        shape = shape_of(annotation)
        if shape.model is not None:
            return self.object_field(name, spec, shape, required, scope, origin, key)
        return self.value_field(name, spec, shape, required, scope, origin, key)

    # --- objects --------------------------------------------------------------------------

    def object_field(self, name: str, spec: FieldRule, shape: Shape, required: bool,
                     scope: Scope, origin: Origin, key: PathKey) -> run.FieldPlan:
        assert shape.model is not None
        where = self.object_where(name, spec, shape, origin, key)
        resolved = self.resolve(where, scope, origin, (*key, "each" if spec.each else "from")) \
            if where else None
        if resolved is not None and resolved.value is not None:
            self.fail(origin, key, f"{where!r} names a data element; each and from name "
                      "segments or groups")
        inner = resolved.end if resolved else scope
        specs, spec_origin, spec_key = self.members(spec, origin, key)
        fields = self.fields(specs, shape.model, inner, spec_origin, spec_key)
        constants = tuple(self.constant(path, code, inner, origin, (*key, "write", path))
                          for path, code in spec.write.items())
        return run.ObjectField(name, where or "(same place)", _locator(resolved), fields,
                               many=shape.many, required=required, constants=constants)

    def constant(self, path: str, code: str, scope: Scope, origin: Origin,
                 key: PathKey) -> run.Constant:
        resolved = self.resolve(path, scope, origin, key)
        if resolved.value is None:
            self.fail(origin, key, f"{path!r} must lead to a data element")
        return run.Constant(_locator(resolved), resolved.value, code)

    # --- values ---------------------------------------------------------------------------

    def value_field(self, name: str, spec: FieldRule, shape: Shape, required: bool,
                    scope: Scope, origin: Origin, key: PathKey) -> run.FieldPlan:
        self.check_value(name, spec, shape, origin, key)
        each = self.resolve(spec.each, scope, origin, (*key, "each")) if spec.each else None
        inner = each.end if each else scope
        sources = []
        for index, path in enumerate(spec.paths):
            path_key = (*key, "path") if isinstance(spec.path, str) else (*key, "path", index)
            resolved = self.resolve(path, inner, origin, path_key)
            if resolved.value is None:
                self.fail(origin, path_key, f"{path!r} names a segment or group; add the data "
                          "element (e.g. C082/3039)")
            sources.append((resolved, run.Place(_locator(resolved), resolved.value)))
        first, _ = sources[0]
        convert = self.converter(name, spec, shape, required, first, origin, key)
        return run.ValueField(name, spec.paths[0], tuple(s for _, s in sources), convert,
                              required=required and not shape.many, join=spec.join,
                              default=spec.default, each=_locator(each) if each else None)

    def converter(self, name: str, spec: FieldRule, shape: Shape, required: bool,
                  first: Resolved, origin: Origin, key: PathKey) -> run.Converter:
        position = first.value
        assert position is not None
        how = self.conversion(name, spec, shape, origin, key)
        if how == "table":
            assert spec.table is not None
            table = self.tables[spec.table]
            return run.Translate(spec.table, table.codes, table.default, position)
        if how == "number":
            representation = position.representation
            if not spec.number and (representation is None or representation.format != "n"):
                self.fail(origin, key, f"type mismatch: {position.id} is "
                          f"{representation or 'text'}, {name} is a number (say number: "
                          "true if this element carries one)")
            return run.Number(position, whole=shape.scalar == "integer")
        if how == "date":
            return self.date(name, spec, shape, required, first, origin, key)
        if how == "checked":
            return run.Checked(position, TypeAdapter(shape.checked))
        return run.Text()

    def date(self, name: str, spec: FieldRule, shape: Shape, required: bool, first: Resolved,
             origin: Origin, key: PathKey) -> run.Converter:
        assert first.value is not None and isinstance(first.end, SegmentScope)
        format_at = None
        default = spec.format_default
        if spec.format is not None and is_ascii_digits(spec.format):
            default = spec.format
        elif spec.format is not None:
            try:
                format_at = element_position(first.end.spec, spec.format)
            except PathError as exc:
                self.fail(origin, (*key, "format"), str(exc))
        if format_at is None and default is None:
            self.fail(origin, key, f"{name} is a date: give format (the path of its UNTDID "
                      "2379 code in the same segment, or a 2379 code)")
        return run.Date(first.value, format_at, default, optional=not required,
                        wants=shape.scalar)

    def resolve(self, text: str, scope: Scope, origin: Origin, key: PathKey) -> Resolved:
        try:
            return resolve(text, scope, self.message.segments)
        except PathError as exc:
            self.fail(origin, key, f"{exc} ({self.file.message} {self.file.release})")


def _locator(resolved: Resolved | None) -> run.Locator:
    if resolved is None:
        return run.Locator(())
    return run.Locator(resolved.steps)


# --- canonical field types ----------------------------------------------------------------


def shape_of(annotation: Any) -> Shape:
    """``annotation`` as the field declares it, with its ``Annotated`` metadata
    (``FieldInfo.rebuild_annotation``)."""
    item = annotation
    inner, annotated = _unwrap(item)
    many = typing.get_origin(inner) is tuple
    if many:  # metadata on the tuple (its length) is the model's to check, not the mapping's
        item = typing.get_args(inner)[0]
        inner, annotated = _unwrap(item)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return Shape(many, inner, "object")
    if typing.get_origin(inner) is typing.Literal:
        return Shape(many, None, "text", tuple(str(a) for a in typing.get_args(inner)))
    scalar = _scalar(inner)
    return Shape(many, None, scalar, checked=item if annotated and scalar == "text" else None)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside ``None | ...`` and ``Annotated[...]``, and whether it was annotated
    (carries validators or constraints)."""
    annotated = False
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, annotated = typing.get_args(annotation)[0], True
            continue
        bare = _without_none(annotation)
        if bare is annotation:
            return annotation, annotated
        annotation = bare


def _without_none(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = tuple(a for a in typing.get_args(annotation) if a is not type(None))
        if len(args) == 1:
            return args[0]
        if set(args) == {dt.datetime, dt.date}:
            return "either"
    return annotation


def _scalar(annotation: Any) -> str:
    if annotation == "either":
        return "either"
    known: dict[Any, str] = {str: "text", Decimal: "decimal", int: "integer",
                             dt.datetime: "datetime", dt.date: "date"}
    if annotation in known:
        return known[annotation]
    raise ConfigError(f"canonical field type {annotation!r} has no mapping conversion")

