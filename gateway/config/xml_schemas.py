"""The XML schema registry file (``xml-schemas.yaml``, named by ``gateway.yaml`` ``xml.schemas``):
which root element means which XSD, which canonical kind and which answer.

Only the shape is checked here (strict: an unknown key is an error at its line; every XPath
compiles with the prefixes the entry declares).  The XSDs themselves are compiled by
``app/xml_schema_files.py``, from local files only.  docs/xml.md describes the file.
"""

from __future__ import annotations

import re
from typing import Literal

from lxml import etree  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: An XML name without a prefix (XML Namespaces 1.0 NCName), ASCII only: root elements of the
#: standards this gateway takes are ASCII, and a registry key should be easy to type.
_NCNAME = r"^[A-Za-z_][A-Za-z0-9._-]*$"

#: The answer standard of each document family (docs/xml.md): WCO RES-DMS for WCO Data Model
#: declarations, UBL 2.1 ApplicationResponse for UBL documents.
AnswerStandard = Literal["RES-DMS", "UBL-ApplicationResponse"]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RootElement(Strict):
    namespace: str | None = Field(default=None, min_length=1, description="the root's "
                                  "namespace URI; leave out for a root in no namespace")
    name: str = Field(pattern=_NCNAME)


class VersionCheck(Strict):
    """Where the document says its version, and the value this entry takes."""

    path: str = Field(description="XPath from the root element, with the entry's prefixes")
    value: str = Field(min_length=1)


class XmlSchemaEntry(Strict):
    #: What the gateway calls this kind of document: the message type stored and shown
    #: (``DEC-DMS``), and what a mapping file names in ``schema:``.
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9._-]{0,34}$")
    #: A label stored as the message's release (``2``, ``2.1``).
    version: str = Field(default="", max_length=35, pattern=r"^[A-Za-z0-9._-]*$")
    root: RootElement
    version_check: VersionCheck | None = None
    xsd: str = Field(description="the XSD of the root element, relative to this file")
    locations: dict[str, str] = Field(default_factory=dict, description="namespace -> XSD "
                                      "for namespaces the root's XSD does not import itself "
                                      "(a wrapper that takes any element of them)")
    kind: str = Field(description="the canonical kind the document becomes")
    answer: AnswerStandard
    namespaces: dict[str, str] = Field(default_factory=dict,
                                       description="prefixes the XPaths of this entry use")
    senders: tuple[str, ...] = Field(min_length=1, description="XPaths of the party that "
                                     "submits (the first present counts): a partner's "
                                     "xml_ids must hold it (rule 5)")
    reference: str = Field(description="XPath of the document's own reference, unique per "
                           "sender: duplicates are found by it")
    document_type: str | None = Field(default=None, description="XPath of a type code "
                                      "echoed in answers")
    #: The XSD may be absent (the demo's schemas come from ../shared): the entry is then left
    #: out, and the gateway says at start-up what is missing and how to plug it in.
    optional: bool = False

    @field_validator("namespaces")
    @classmethod
    def _prefixes(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix in value:
            if not re.fullmatch(_NCNAME, prefix):
                raise ValueError(f"{prefix!r} is not a namespace prefix")
        return value

    @model_validator(mode="after")
    def _xpaths_compile(self) -> XmlSchemaEntry:
        paths = [("senders", p) for p in self.senders] + [("reference", self.reference)]
        if self.document_type is not None:
            paths.append(("document_type", self.document_type))
        if self.version_check is not None:
            paths.append(("version_check.path", self.version_check.path))
        for field, path in paths:
            check_xpath(path, self.namespaces, field)
        return self

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.root.namespace, self.root.name,
                self.version_check.value if self.version_check else None)


def check_xpath(path: str, namespaces: dict[str, str], field: str) -> None:
    """A ValueError naming ``field`` when ``path`` is no XPath 1.0 expression with these
    prefixes (an undeclared prefix included)."""
    try:
        # An undeclared prefix is only found when the expression runs: run it on nothing.
        etree.XPath(path, namespaces=namespaces)(etree.Element("probe"))
    except etree.XPathError as exc:
        raise ValueError(f"{field}: {path!r} is not an XPath ({exc}); prefixes declared: "
                         f"{', '.join(namespaces) or 'none'}") from None


class XmlSchemasFile(Strict):
    schemas: tuple[XmlSchemaEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> XmlSchemasFile:
        names: set[str] = set()
        keys: set[tuple[str | None, str, str | None]] = set()
        for entry in self.schemas:
            if entry.name in names:
                raise ValueError(f"two schemas are named {entry.name!r}")
            if entry.key in keys:
                raise ValueError(f"two schemas take root {{{entry.root.namespace}}}"
                                 f"{entry.root.name} (give each a version_check)")
            names.add(entry.name)
            keys.add(entry.key)
        return self
