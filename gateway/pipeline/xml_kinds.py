"""The XML document kinds this gateway takes: each registry entry with its XSD compiled once
(``app/xml_schema_files.py`` loads them) and its XPaths compiled once.  Pure: looking a document
up and reading its identities touches no file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from gateway.config.xml_schemas import AnswerStandard, XmlSchemaEntry
from gateway.wire.xml.reader import XmlLimits

#: Schema violations are told one by one up to this many; the rest as a count (a document with
#: 200,000 bad values must not make an answer of megabytes).
DEFAULT_MAX_FINDINGS = 100


@dataclass(frozen=True, slots=True)
class XmlKind:
    entry: XmlSchemaEntry
    #: ``xmlschema.XMLSchema``, built and checked at start-up, never per document.
    schema: Any
    #: Where the entry's XSD was read from (for messages).
    xsd_path: str
    _senders: tuple[Any, ...] = field(repr=False, default=())
    _reference: Any = field(repr=False, default=None)
    _document_type: Any = field(repr=False, default=None)
    _version: Any = field(repr=False, default=None)

    @classmethod
    def of(cls, entry: XmlSchemaEntry, schema: Any, xsd_path: str) -> XmlKind:
        def xpath(path: str) -> Any:
            return etree.XPath(path, namespaces=entry.namespaces, smart_strings=False)

        check = entry.version_check
        return cls(entry=entry, schema=schema, xsd_path=xsd_path,
                   _senders=tuple(xpath(p) for p in entry.senders),
                   _reference=xpath(entry.reference),
                   _document_type=xpath(entry.document_type) if entry.document_type else None,
                   _version=xpath(check.path) if check else None)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def answer(self) -> AnswerStandard:
        return self.entry.answer

    def sender(self, root: Any) -> str:
        """The submitting party's identity: the first of ``senders`` the document gives."""
        for path in self._senders:
            value = first_text(path(root))
            if value:
                return value
        return ""

    def reference(self, root: Any) -> str:
        return first_text(self._reference(root))

    def document_type(self, root: Any) -> str:
        return first_text(self._document_type(root)) if self._document_type else ""

    def version_of(self, root: Any) -> str | None:
        return first_text(self._version(root)) if self._version is not None else None


def first_text(found: Any) -> str:
    """The text of an XPath result: the first node's text (an attribute's value, an element's
    text), a string result as it is; surrounding whitespace removed (xs:token values)."""
    if isinstance(found, list):
        if not found:
            return ""
        found = found[0]
    if isinstance(found, str):
        return found.strip()
    if isinstance(found, bool | float):
        return ""
    text = found.text if hasattr(found, "text") else None
    return text.strip() if text else ""


@dataclass(frozen=True, slots=True)
class XmlCatalog:
    """Every XML kind in force, and what the registry named but could not plug in."""

    kinds: tuple[XmlKind, ...] = ()
    #: One line per optional entry whose XSD is absent: what is missing and how to add it.
    missing: tuple[str, ...] = ()
    #: Where the registry came from ("" when gateway.yaml names none).
    source: str = ""
    limits: XmlLimits = field(default_factory=XmlLimits)
    max_findings: int = DEFAULT_MAX_FINDINGS

    def named(self, name: str) -> XmlKind | None:
        return next((k for k in self.kinds if k.name == name), None)

    def candidates(self, namespace: str | None, local_name: str) -> tuple[XmlKind, ...]:
        """The kinds whose root is this element, those with a version check first."""
        found = [k for k in self.kinds
                 if (k.entry.root.namespace, k.entry.root.name) == (namespace, local_name)]
        return tuple(sorted(found, key=lambda k: k.entry.version_check is None))

    def kind_of(self, root: Any, namespace: str | None, local_name: str) -> XmlKind | None:
        """The entry that takes this document: its root, then its version when the entry
        checks one; an entry without a version check takes any version."""
        for kind in self.candidates(namespace, local_name):
            check = kind.entry.version_check
            if check is None or kind.version_of(root) == check.value:
                return kind
        return None
