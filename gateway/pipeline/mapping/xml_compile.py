"""Compile an XML mapping file (``mappings/xml/*.yaml``) against its registry kind's XSD and the
canonical model, once at start-up.

Paths are XPath 1.0 location paths walked child by child from where they stand: element steps
with the file's prefixes (``dec:GoodsShipment``), each with optional predicates
(``cac:Classification[cbc:IdentificationTypeCode='TSP']``), then optionally ``@attribute``,
``text()`` or ``local-name()``; ``.`` is the current element; ``|`` joins alternatives found
in document order.  Every step is checked against the XSD (XML Schema 1.0 Part 1): the element
must be declared as a child of the one before (a wildcard, such as the WCO ``md:MetaData``
wrapper's ``xs:any``, takes the global declaration of the element named), an attribute must be
declared on its element, and a value must be read from an element with text of its own.  What
compiles cannot name an element the document may not have.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from pydantic import BaseModel, TypeAdapter

from gateway.config.mappings import FieldRule, FieldSpec, PartsFile, XmlMappingFile
from gateway.config.yamlfile import PathKey
from gateway.model.numbers import is_ascii_digits
from gateway.pipeline.mapping import xml_read as run
from gateway.pipeline.mapping.compile import FieldsCompiler, Origin, Shape, shape_of
from gateway.pipeline.xml_kinds import XmlKind

XSD_NAMESPACE = "http://www.w3.org/2001/XMLSchema"
#: XSD primitive types read as numbers, and as dates (XML Schema 1.0 Part 2, 3.2).
_NUMERIC = frozenset({"decimal", "float", "double"})
_DATES = frozenset({"date", "dateTime"})
_QNAME = re.compile(r"(?:([A-Za-z_][\w.-]*):)?([A-Za-z_][\w.-]*)")
#: Relative paths inside a predicate: names (with ``/`` and ``@``) not called as functions.
_PREDICATE_PATH = re.compile(
    r"(?<![\w.:@$-])(@?[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?"
    r"(?:/@?[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)*)(?!\s*\()")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_OPERATORS = frozenset({"and", "or", "div", "mod"})


class XmlPathError(ValueError):
    pass


def compile_xml_mapping(file: XmlMappingFile, origin: Origin, kind: XmlKind,
                        common: PartsFile, common_origin: Origin) -> run.CompiledXmlMapping:
    return XmlCompiler(file, origin, kind, common, common_origin).build()


# --- where a path stands in the XSD ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """The element declarations a path may stand at (several after ``|``); ``None`` in it is
    an element a lax or skip wildcard takes without a declaration: nothing below is checked."""

    elements: tuple[Any, ...]

    def describe(self) -> str:
        return " | ".join(_local(e.name) if e is not None else "(any)" for e in self.elements)


@dataclass(frozen=True, slots=True)
class Ending:
    """Where a value path ends: the XSD simple types of what it reads (None: text of an
    element without a declaration, or a name)."""

    types: tuple[Any, ...]
    #: The path ends at an attribute (a date's format is then read from its element).
    attribute: bool


class XsdWalk:
    """Steps of a path walked through the compiled ``xmlschema`` of a registry kind."""

    def __init__(self, kind: XmlKind, namespaces: dict[str, str]) -> None:
        self.schema = kind.schema
        self.namespaces = namespaces
        self.prefix_of = {uri: prefix for prefix, uri in namespaces.items()}
        root = kind.entry.root
        qname = f"{{{root.namespace}}}{root.name}" if root.namespace else root.name
        self.root = Context((self.schema.maps.elements[qname],))

    # paths ------------------------------------------------------------------------------------

    def nodes(self, path: str, context: Context) -> Context:
        """The elements ``path`` leads to (``each``, ``from``)."""
        found: list[Any] = []
        for branch in _split(path, "|"):
            steps = _split(branch, "/")
            tail = steps[-1].strip()
            if tail.startswith("@") or tail in ("text()", "local-name()"):
                raise XmlPathError(f"{tail!r} is a value; each and from name elements")
            found += self._elements(steps, context).elements
        return Context(tuple(found))

    def value(self, path: str, context: Context) -> Ending:
        """What ``path`` reads its value from: an attribute, an element's text, a name."""
        types: list[Any] = []
        attribute = False
        for branch in _split(path, "|"):
            steps = _split(branch, "/")
            tail = steps[-1].strip()
            if tail == "local-name()":
                self._elements(steps[:-1], context)
                types.append(None)
                continue
            if tail == "text()" or tail.startswith("@"):
                steps = steps[:-1]
            at = self._elements(steps, context)
            if tail.startswith("@"):
                attribute = True
                types += _somewhere(at, partial(self._attribute, name=tail[1:]))
            else:
                types += _somewhere(at, self._text)
        return Ending(tuple(types), attribute)

    def _elements(self, steps: list[str], context: Context) -> Context:
        """Where ``steps`` lead from ``context``.  After ``|`` the context holds several
        elements: a step need only be declared under one of them (an office ID's own text
        and a location's ID, read by one path of alternatives)."""
        current = context
        for step in steps:
            step = step.strip()
            if step == "":
                raise XmlPathError("'//' and a leading '/' are not taken: a path walks child "
                                   "by child from where it stands")
            if step == ".":
                continue
            if step in ("..", "*") or "::" in step:
                raise XmlPathError(f"{step!r}: a path names each element it walks through")
            name, predicates = _predicates(step)
            current = Context(tuple(child for children in _somewhere(
                current, partial(self._child_tuple, name=name))
                for child in children))
            for predicate in predicates:
                self._predicate(predicate, current)
        return current

    def _predicate(self, predicate: str, context: Context) -> None:
        if is_ascii_digits(predicate.strip()):
            return  # a position
        for match in _PREDICATE_PATH.finditer(_QUOTED.sub("''", predicate)):
            text = match.group(1)
            if text in _OPERATORS:
                continue
            steps = text.split("/")
            if steps[-1].startswith("@"):
                for element in self._elements(steps[:-1], context).elements:
                    self._attribute(element, steps[-1][1:])
            else:
                self._elements(steps, context)

    # declarations -----------------------------------------------------------------------------

    def qname(self, name: str) -> str:
        found = _QNAME.fullmatch(name)
        if found is None:
            raise XmlPathError(f"{name!r} is not an element or attribute name")
        prefix, local = found.groups()
        if prefix is None:
            return local
        if prefix not in self.namespaces:
            raise XmlPathError(f"prefix {prefix!r} is not declared in namespaces (declared: "
                               f"{', '.join(self.namespaces) or 'none'})")
        return f"{{{self.namespaces[prefix]}}}{local}"

    def _child_tuple(self, element: Any, name: str) -> tuple[Any, ...]:
        return tuple(self._children(element, name))

    def _children(self, element: Any, name: str) -> Iterator[Any]:
        qname = self.qname(name)
        if element is None:
            yield None
            return
        declared = list(self._child_declarations(element))
        for child in declared:
            if child is not None and not _is_wildcard(child) and child.name == qname:
                yield child
                return
        for child in declared:
            if child is not None and _is_wildcard(child) and child.is_matching(qname):
                global_element = self.schema.maps.elements.get(qname)
                if global_element is not None:
                    yield global_element
                    return
                if child.process_contents != "strict":
                    yield None
                    return
        allowed = [self.shown(c.name) if not _is_wildcard(c) else "any element of "
                   f"{', '.join(sorted(c.namespace)) or 'any namespace'}" for c in declared]
        raise XmlPathError(f"{name} is not an element of {self.shown(element.name)} "
                           f"(the XSD allows {', '.join(allowed) or 'no child elements'} "
                           "there)")

    def _child_declarations(self, element: Any) -> Iterator[Any]:
        content = getattr(element.type, "content", None)
        if content is None or not hasattr(content, "iter_elements"):
            return
        yield from content.iter_elements()

    def _attribute(self, element: Any, name: str) -> Any:
        qname = self.qname(name)
        if element is None:
            return None
        attributes = element.attributes
        found = attributes.get(qname)
        if found is None:
            have = ", ".join(f"@{self.shown(a)}" for a in attributes if a) or "none"
            raise XmlPathError(f"@{name} is not an attribute of {self.shown(element.name)} "
                               f"(it has {have})")
        return found.type

    def _text(self, element: Any) -> Any:
        if element is None:
            return None
        kind = element.type
        if kind.is_simple():
            return kind
        if kind.has_simple_content():
            return kind.content
        if kind.mixed:
            return None
        children = [self.shown(c.name) for c in self._child_declarations(element)
                    if not _is_wildcard(c)]
        raise XmlPathError(f"{self.shown(element.name)} has no text of its own (it holds "
                           f"{', '.join(children) or 'nothing'}): name the element or "
                           "attribute that holds the value")

    def shown(self, qname: str | None) -> str:
        """A declared name as the mapping file would write it, with its prefix."""
        if not qname:
            return "(any)"
        if not qname.startswith("{"):
            return qname
        uri, _, local = qname[1:].partition("}")
        prefix = self.prefix_of.get(uri)
        return f"{prefix}:{local}" if prefix else qname


def _somewhere(context: Context, check: Callable[[Any], Any]) -> list[Any]:
    """``check`` of each element of ``context`` where it holds; the first one's XmlPathError
    when it holds under none."""
    found: list[Any] = []
    first: XmlPathError | None = None
    for element in context.elements:
        try:
            found.append(check(element))
        except XmlPathError as exc:
            first = first or exc
    if not found and first is not None:
        raise first
    return found


def _is_wildcard(declaration: Any) -> bool:
    return hasattr(declaration, "process_contents")


def _local(qname: str | None) -> str:
    return (qname or "").rpartition("}")[2]


def primitive(simple_type: Any) -> str | None:
    """The XSD primitive type's local name (``decimal``, ``date`` ...) of a simple type; a
    list or union has none."""
    found = getattr(simple_type, "primitive_type", None)
    if found is None or isinstance(found, list):
        return None
    name = getattr(found, "local_name", None) or _local(getattr(found, "name", None))
    return str(name) if name else None


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _predicates(step: str) -> tuple[str, list[str]]:
    """A step's name and the text of each of its predicates."""
    bracket = step.find("[")
    if bracket < 0:
        return step, []
    name, rest = step[:bracket], step[bracket:]
    predicates: list[str] = []
    depth, quote, start = 0, "", 0
    for index, char in enumerate(rest):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "[":
            if depth == 0:
                start = index + 1
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                predicates.append(rest[start:index])
    return name.strip(), predicates


# --- the compiler ------------------------------------------------------------------------------


class XmlCompiler(FieldsCompiler):
    def __init__(self, file: XmlMappingFile, origin: Origin, kind: XmlKind, common: PartsFile,
                 common_origin: Origin) -> None:
        super().__init__(file.parts, file.tables, origin, common, common_origin)
        self.file = file
        self.kind = kind
        self.walk = XsdWalk(kind, file.namespaces)

    def build(self) -> run.CompiledXmlMapping:
        file, origin = self.file, self.origin
        model, zone = self.model_of(file.kind, file.time_zone)
        if file.kind != self.kind.entry.kind:
            self.fail(origin, ("kind",), f"the registry makes {self.kind.name} documents "
                      f"{self.kind.entry.kind}, not {file.kind}")
        fields = self.fields(file.fields, model, self.walk.root, origin, ("fields",))
        root = run.XmlObjectField("", "(document)", None, fields, many=False, required=True)
        return run.CompiledXmlMapping(name=origin.name, schema=self.kind.name,
                                      version=self.kind.entry.version, model=model, root=root,
                                      zone=zone, answer=self.kind.entry.answer)

    def fields(self, specs: dict[str, FieldSpec], model: type[BaseModel], context: Context,
               origin: Origin, key: PathKey) -> tuple[run.XmlFieldPlan, ...]:
        self.check_names(specs, model, origin, key)
        plans: list[run.XmlFieldPlan] = []
        for name, spec in specs.items():
            info = model.model_fields[name]
            shape = shape_of(info.rebuild_annotation())
            here = (*key, name)
            if spec.write:
                self.fail(origin, (*here, "write"), "write is for rendering EDIFACT; XML "
                          "mappings only read")
            if shape.model is not None:
                plans.append(self.object_field(name, spec, shape, info.is_required(),
                                               context, origin, here))
            else:
                plans.append(self.value_field(name, spec, shape, info.is_required(),
                                              context, origin, here))
        return tuple(plans)

    def xpath(self, path: str, origin: Origin, key: PathKey) -> Any:
        """``path`` compiled once; the steps that need no XPath engine (the element itself,
        its name, its text, an attribute without a prefix) read directly, a few times
        faster than lxml's XPath call (about 3 µs each, most of a document's mapping)."""
        try:
            compiled = etree.XPath(path, namespaces=self.file.namespaces)
        except etree.XPathSyntaxError as exc:
            self.fail(origin, key, f"{path!r} is not an XPath ({exc})")
        step = path.strip()
        if step == ".":
            return _itself
        if step == "local-name()":
            return _local_name
        if step == "text()":
            return _own_text
        if re.fullmatch(r"@[A-Za-z_][\w.-]*", step):
            return partial(_attribute, name=step[1:])
        return compiled

    def object_field(self, name: str, spec: FieldRule, shape: Shape, required: bool,
                     context: Context, origin: Origin, key: PathKey) -> run.XmlFieldPlan:
        assert shape.model is not None
        where = self.object_where(name, spec, shape, origin, key)
        where_key = (*key, "each" if spec.each else "from")
        inner = context
        find = None
        if where is not None:
            try:
                inner = self.walk.nodes(where, context)
            except XmlPathError as exc:
                self.fail(origin, where_key, f"{where!r}: {exc} ({self.kind.name} XSD)")
            find = self.xpath(where, origin, where_key)
        specs, spec_origin, spec_key = self.members(spec, origin, key)
        fields = self.fields(specs, shape.model, inner, spec_origin, spec_key)
        return run.XmlObjectField(name, where or "(same element)", find, fields,
                                  many=shape.many, required=required)

    def value_field(self, name: str, spec: FieldRule, shape: Shape, required: bool,
                    context: Context, origin: Origin, key: PathKey) -> run.XmlFieldPlan:
        self.check_value(name, spec, shape, origin, key)
        inner, each = context, None
        if spec.each:
            try:
                inner = self.walk.nodes(spec.each, context)
            except XmlPathError as exc:
                self.fail(origin, (*key, "each"), f"{spec.each!r}: {exc} ({self.kind.name} "
                          "XSD)")
            each = self.xpath(spec.each, origin, (*key, "each"))
        sources, endings = [], []
        for index, path in enumerate(spec.paths):
            path_key = (*key, "path") if isinstance(spec.path, str) else (*key, "path", index)
            try:
                endings.append(self.walk.value(path, inner))
            except XmlPathError as exc:
                self.fail(origin, path_key, f"{path!r}: {exc} ({self.kind.name} XSD)")
            sources.append(self.xpath(path, origin, path_key))
        convert = self.converter(name, spec, shape, required, endings, inner, origin, key)
        return run.XmlValueField(name, spec.paths[0], tuple(sources), convert,
                                 required=required and not shape.many, join=spec.join,
                                 default=spec.default, each=each)

    def converter(self, name: str, spec: FieldRule, shape: Shape, required: bool,
                  endings: list[Ending], context: Context, origin: Origin,
                  key: PathKey) -> run.XmlConverter:
        how = self.conversion(name, spec, shape, origin, key)
        primitives = {primitive(t) if t is not None else None
                      for ending in endings for t in ending.types}
        if how == "table":
            assert spec.table is not None
            table = self.tables[spec.table]
            return run.Translate(spec.table, table.codes, table.default)
        if how == "number":
            if not spec.number and not primitives <= _NUMERIC:
                shown = ", ".join(sorted(f"xs:{p}" if p else "text" for p in primitives))
                self.fail(origin, key, f"type mismatch: the XSD gives {shown} there, {name} "
                          "is a number (say number: true if the value carries one)")
            return run.Number(whole=shape.scalar == "integer")
        if how == "date":
            return self.date(name, spec, shape, required, endings, primitives, context,
                             origin, key)
        if how == "checked":
            return run.Checked(TypeAdapter(shape.checked))
        return run.Text()

    def date(self, name: str, spec: FieldRule, shape: Shape, required: bool,
             endings: list[Ending], primitives: set[str | None], context: Context,
             origin: Origin, key: PathKey) -> run.XmlConverter:
        optional = not required
        if spec.format is None and spec.format_default is None:
            if len(primitives) == 1 and primitives <= _DATES:
                return run.Date(primitives.pop(), None, None, optional, shape.scalar)
            self.fail(origin, key, f"{name} is a date: the XSD gives no xs:date or "
                      "xs:dateTime there, so give format (the path of its UNTDID 2379 code "
                      "from the value's element, e.g. '@formatCode', or a 2379 code)")
        default = spec.format_default
        format_at = None
        if spec.format is not None and is_ascii_digits(spec.format):
            default = spec.format
        elif spec.format is not None:
            if any(e.attribute for e in endings):
                self.fail(origin, (*key, "format"), "format is read from the value's element; "
                          "this value is an attribute")
            for path in spec.paths:
                try:
                    element_context = self.walk.nodes(_element_part(path), context) \
                        if _element_part(path) else context
                    self.walk.value(spec.format, element_context)
                except XmlPathError as exc:
                    self.fail(origin, (*key, "format"), f"{spec.format!r}: {exc} "
                              f"({self.kind.name} XSD)")
            format_at = self.xpath(spec.format, origin, (*key, "format"))
        return run.Date(None, format_at, default, optional, shape.scalar)


def _itself(node: Any) -> list[Any]:
    return [node]


def _local_name(node: Any) -> str:
    return str(node.tag).rpartition("}")[2]


def _own_text(node: Any) -> list[str]:
    return [node.text] if node.text else []


def _attribute(node: Any, name: str) -> list[str]:
    value = node.get(name)
    return [] if value is None else [value]


def _element_part(path: str) -> str:
    """A value path without its ``text()`` step (the element the value stands in)."""
    steps = _split(path, "/")
    if steps[-1].strip() == "text()":
        steps = steps[:-1]
    return "/".join(steps)
