"""A compiled XML mapping at work: an XML document (already validated against its XSD) read
into its canonical message.  Built by ``xml_compile.py``, which checked every path against the
XSD and compiled it once as an lxml XPath; reading evaluates those, converts the values and
says where a value the canonical model cannot take stands (its line and XPath).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from gateway.config.xml_schemas import AnswerStandard
from gateway.errors import MappingError
from gateway.model.canonical import Canonical, CanonicalMessage
from gateway.model.findings import shown
from gateway.pipeline.mapping import conversions as conv

#: XPath as lxml compiles it (``etree.XPath``); lxml ships no type hints.
XPath = Any
#: An element, or the string result of an attribute, ``text()`` or ``local-name()`` step.
Node = Any


class XmlMappingError(MappingError):
    """A value of an XML document the canonical kind cannot take, at its element: ``line``
    (the document's line, for the answer) and ``xpath`` (with the document's own prefixes,
    ``/md:MetaData/Declaration/FunctionCode``); ``syntax_error_code`` is the nearest ISO 9735
    0085 meaning, as a Finding carries it."""

    def __init__(self, text: str, node: Node, syntax_error_code: int) -> None:
        element = element_of(node)
        self.line: int | None = element.sourceline if element is not None else None
        self.xpath = xpath_of(node)
        self.syntax_error_code = syntax_error_code
        super().__init__(text)


class BadXmlValue(XmlMappingError):
    """A value that cannot become its canonical type (0085 12 invalid value; 37 invalid type
    of characters, e.g. a letter in a number)."""

    def __init__(self, node: Node, reason: str, syntax_error_code: int = 12) -> None:
        super().__init__(f"{name_of(node)}: {reason}", node, syntax_error_code)


class MissingXmlValue(XmlMappingError):
    """A canonical field that must have a value found none under ``node`` (0085 13)."""

    def __init__(self, what: str, node: Node) -> None:
        super().__init__(f"{what} is missing in {name_of(node)}", node, 13)


def element_of(node: Node) -> Any:
    """The element a node is or belongs to (an attribute's or a text's parent)."""
    if hasattr(node, "sourceline"):
        return node
    getparent = getattr(node, "getparent", None)
    return getparent() if getparent is not None else None


def name_of(node: Node) -> str:
    """How a message names the node: ``FunctionCode``, ``DateTimeString/@formatCode``."""
    element = element_of(node)
    if element is None:
        return "(document)"
    local = _local(element)
    if element is not node and getattr(node, "is_attribute", False):
        return f"{local}/@{node.attrname.rpartition('}')[2]}"
    return local


def xpath_of(node: Node) -> str:
    """The XPath of ``node`` with the document's own prefixes (an element in the default
    namespace by its local name), a position where siblings share its name; an attribute as
    ``/@name`` after its element."""
    element = element_of(node)
    if element is None:
        return ""
    steps = []
    current = element
    while current is not None:
        step = f"{current.prefix}:{_local(current)}" if current.prefix else _local(current)
        parent = current.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == current.tag]
            if len(same) > 1:
                step += f"[{same.index(current) + 1}]"
        steps.append(step)
        current = parent
    path = "/" + "/".join(reversed(steps))
    if element is not node and getattr(node, "is_attribute", False):
        path += f"/@{node.attrname.rpartition('}')[2]}"
    return path


def _local(element: Any) -> str:
    return str(element.tag).rpartition("}")[2]


def text_of(node: Node) -> str:
    """A node's value, surrounding whitespace removed (most WCO and UBL values are xs:token,
    whose whitespace is not part of the value; comments inside an element are left out)."""
    if isinstance(node, str):
        return node.strip()
    text = node.text if len(node) == 0 else "".join(node.itertext())
    return text.strip() if text else ""


def _nodes(found: Any) -> list[Any]:
    """An XPath result as a list: a string function (``local-name()``) gives one string."""
    return found if isinstance(found, list) else [found]


# --- conversions ------------------------------------------------------------------------------


class XmlConverter(Protocol):
    def read(self, text: str, node: Node, zone: ZoneInfo) -> Any: ...


@dataclass(frozen=True, slots=True)
class Text:
    def read(self, text: str, node: Node, zone: ZoneInfo) -> Any:
        return text


@dataclass(frozen=True, slots=True)
class Number:
    whole: bool = False

    def read(self, text: str, node: Node, zone: ZoneInfo) -> Any:
        # xs:decimal allows a leading plus sign the numeric representation does not
        plain = text[1:] if text.startswith("+") else text
        try:
            return conv.to_integer(plain) if self.whole else conv.to_decimal(plain)
        except conv.ConversionError as exc:
            raise BadXmlValue(node, str(exc), exc.syntax_error_code) from exc


@dataclass(frozen=True, slots=True)
class Checked:
    """Text the canonical model normalises or refuses (a commodity or country code), put
    through the model's own type here, where the element is known."""

    adapter: TypeAdapter[Any]

    def read(self, text: str, node: Node, zone: ZoneInfo) -> Any:
        try:
            return self.adapter.validate_python(text)
        except ValidationError as exc:
            reason = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise BadXmlValue(node, reason) from exc


@dataclass(frozen=True, slots=True)
class Translate:
    name: str
    codes: dict[str, str]
    default: str | None

    def read(self, text: str, node: Node, zone: ZoneInfo) -> Any:
        found = self.codes.get(text, self.default)
        if found is None:
            raise BadXmlValue(node, f"code {shown(text)} is not in table {self.name} "
                              f"({', '.join(self.codes)})")
        return found


@dataclass(frozen=True, slots=True)
class Date:
    """A date by the XSD's own type (``xsd``: ``date`` or ``dateTime``, ISO 8601 as XML
    Schema 1.0 Part 2 writes them), else by a UNTDID 2379 code: read from ``format_at`` (an
    XPath from the value's element, e.g. WCO's ``@formatCode``), else ``format_default``.  A
    format we do not convert gives None when the field may be empty."""

    xsd: str | None
    format_at: XPath | None
    format_default: str | None
    optional: bool
    wants: str  # "date", "datetime" or "either"

    def read(self, text: str, node: Node, zone: ZoneInfo) -> Any:
        value = _xsd_date(text, self.xsd, node, zone) if self.xsd is not None \
            else self._coded(text, node, zone)
        if value is None:
            return None
        if self.wants == "datetime" and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(), tzinfo=zone)
        if self.wants == "date" and isinstance(value, dt.datetime):
            value = value.date()
        return value

    def _coded(self, text: str, node: Node, zone: ZoneInfo) -> dt.date | dt.datetime | None:
        code = ""
        if self.format_at is not None:
            element = element_of(node)
            found = self.format_at(element) if element is not None else []
            code = text_of(found[0]) if found else ""
        code = code or self.format_default or ""
        if not conv.supported_format(code):
            if self.optional:
                return None
            raise BadXmlValue(node, f"date format {code or '(none)'} is not one of "
                              f"{', '.join(conv.DATE_FORMATS)}")
        try:
            return conv.to_date(text, code, zone)
        except conv.ConversionError as exc:
            raise BadXmlValue(node, str(exc)) from exc


def _xsd_date(text: str, kind: str, node: Node, zone: ZoneInfo) -> dt.date | dt.datetime:
    """xs:date (``2026-12-03``, optionally with a zone, which a date alone does not need) or
    xs:dateTime (``2026-12-03T10:15:00``, a fraction and a zone optional; without a zone in the
    mapping's ``time_zone``).  The XSD has checked the lexical form; years beyond 9999 and
    before 1 are what Python cannot hold."""
    try:
        if kind == "date":
            body = text[:10]
            if len(body) != 10 or not body[:4].isascii():
                raise ValueError(text)
            return dt.date.fromisoformat(body)
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadXmlValue(node, f"{shown(text)} is not an xs:{kind} this gateway reads "
                          "(years 0001-9999)") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


# --- fields -----------------------------------------------------------------------------------


class XmlFieldPlan(Protocol):
    @property
    def name(self) -> str: ...

    def read(self, node: Node, zone: ZoneInfo, into: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class XmlValueField:
    name: str
    path: str
    #: Where the value may stand, alternatives in order (the first present wins).
    sources: tuple[XPath, ...]
    convert: XmlConverter
    required: bool
    join: str | None = None
    default: str | None = None
    #: For a list of values: the nodes each value is read from.
    each: XPath | None = None

    def read(self, node: Node, zone: ZoneInfo, into: dict[str, Any]) -> None:
        if self.each is not None:
            values = [self._one(item, zone) for item in self.each(node)]
            into[self.name] = [v for v in values if v is not None]
            return
        value = self._one(node, zone)
        if value is not None:
            into[self.name] = value
        elif self.required:
            raise MissingXmlValue(f"{self.name} ({self.path})", node)

    def _one(self, node: Node, zone: ZoneInfo) -> Any:
        if self.join is not None:
            for source in self.sources:
                texts = [t for t in map(text_of, _nodes(source(node))) if t]
                if texts:
                    return self.join.join(texts)
            return None
        for source in self.sources:
            for found in _nodes(source(node)):
                text = text_of(found)
                if text:
                    return self.convert.read(text, found if element_of(found) is not None
                                             else node, zone)
        if self.default is not None:
            return self.convert.read(self.default, node, zone)
        return None


@dataclass(frozen=True, slots=True)
class XmlObjectField:
    """A canonical object (or a list of them, ``many``) read from the elements ``find``
    names (None: the current element)."""

    name: str
    path: str
    find: XPath | None
    fields: tuple[XmlFieldPlan, ...]
    many: bool
    required: bool

    def read(self, node: Node, zone: ZoneInfo, into: dict[str, Any]) -> None:
        found = self.find(node) if self.find is not None else [node]
        if self.many:
            into[self.name] = [self.read_object(item, zone) for item in found]
        elif found:
            into[self.name] = self.read_object(found[0], zone)
        elif self.required:
            raise MissingXmlValue(f"{self.name} ({self.path})", node)

    def read_object(self, node: Node, zone: ZoneInfo) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for plan in self.fields:
            plan.read(node, zone, values)
        return values


@dataclass(frozen=True)
class CompiledXmlMapping:
    """One registry kind (``schema``, e.g. DEC-DMS) read into its canonical ``model``."""

    name: str
    schema: str
    version: str
    model: type[Canonical]
    root: XmlObjectField
    zone: ZoneInfo
    #: What the registry says senders of this kind are answered with (agencies' answers too).
    answer: AnswerStandard = "RES-DMS"

    def read(self, root: Any, source: dict[str, str]) -> CanonicalMessage:
        """The canonical message of the document whose root element is ``root``.
        ``source``: sender, recipient, interchange_reference and message_reference (syntax,
        message type and release are the registry's).  XmlMappingError (BadXmlValue,
        MissingXmlValue) when the document lacks or garbles what the canonical kind needs,
        pydantic's ValidationError when a value breaks the model's own constraints."""
        values = self.root.read_object(root, self.zone)
        values["source"] = {**source, "syntax": "XML", "message_type": self.schema,
                            "release": self.version}
        # The model is one of the union's (compile checks the kind against KINDS).
        return cast("CanonicalMessage", self.model.model_validate(values))
