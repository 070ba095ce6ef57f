"""The shape of a mapping file (``mappings/edifact/*.yaml``, ``mappings/xml/*.yaml``): which
canonical kind a message becomes, and where each canonical field stands in the message.

This module checks only the shape (strict: an unknown key is an error at its line); whether
each path exists in the directory's message structure, each conversion fits its canonical
field and each table is known is checked when the file is compiled against the catalog
(``pipeline/mapping/compile.py``; an XML file against its XSD: ``xml_compile.py``).
docs/mappings.md describes the language.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

# Matched whole with fullmatch and ASCII digits: with re.match, "$" also matches before a final
# newline, and Python's "\d" takes any Unicode digit ("D٩٦B" is no directory release).
_RELEASE = re.compile(r"D[0-9]{2}[A-C]")
_FORMAT_CODE = re.compile(r"[0-9]{3}")


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Table(Strict):
    """A code translation: message code -> canonical value; ``default`` for codes not listed
    (without one, an unlisted code is the partner's error).  Rendering turns a canonical value
    back into the first code that gives it."""

    codes: dict[str, str]
    default: str | None = None

    @field_validator("codes", mode="before")
    @classmethod
    def _keys_as_text(cls, value: object) -> object:
        # YAML reads an unquoted 9 as a number; codes are text (UNTDID 1225 "9").
        if isinstance(value, dict):
            return {str(k): str(v) if isinstance(v, int) else v for k, v in value.items()}
        return value


class FieldRule(Strict):
    """One canonical field.  A plain path in the file is short for ``{path: ...}``.

    - ``path``: where a value stands (``BGM/C106/1004``, ``LOC[3227=22|41]/C517/3225``); a
      list gives alternatives, the first present wins (rendering writes the first).
    - ``each``/``from``: the segments or group instances an object (``fields`` or ``part``)
      or a list of them is read from; with ``path`` and ``each``, a list of values.
    - ``table``: translate codes; ``join``: every value found, joined by this text.
    - ``format``: for a date, the path of its UNTDID 2379 format code in the same segment, or
      a 2379 code; ``format_default``: the code when the message gives none.
    - ``default``: the code read when the element is absent, and written when the
      canonical value is empty.
    - ``number: true``: read a number from an element the directory calls text (an).
    - ``write``: constant codes rendering puts in the segments it creates (ignored reading).
    """

    path: str | list[str] | None = None
    each: str | None = None
    from_: str | None = Field(default=None, alias="from")
    fields: dict[str, FieldSpec] | None = None
    part: str | None = None
    table: str | None = None
    join: str | None = None
    format: str | None = None
    format_default: str | None = None
    default: str | None = None
    #: The element is text (an) in the directory but carries a number (D96B 6314 an..18).
    number: bool = False
    write: dict[str, str] = {}

    @field_validator("path", mode="before")
    @classmethod
    def _path_text(cls, value: object) -> object:
        return [_id_as_text(v) for v in value] if isinstance(value, list) else _id_as_text(value)

    @field_validator("format_default")
    @classmethod
    def _format_code(cls, value: str | None) -> str | None:
        if value is not None and not _FORMAT_CODE.fullmatch(value):
            raise ValueError(f"{value!r} is not a UNTDID 2379 format code (three digits)")
        return value

    @property
    def paths(self) -> tuple[str, ...]:
        if self.path is None:
            return ()
        return (self.path,) if isinstance(self.path, str) else tuple(self.path)


def _id_as_text(value: object) -> object:
    # A bare data element id (``role: 3035``) reads as a number in YAML; it is a path.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _as_rule(value: object) -> object:
    """``name: PATH`` is short for ``name: {path: PATH}``."""
    value = _id_as_text(value)
    return {"path": value} if isinstance(value, str) else value


FieldSpec = Annotated[FieldRule, BeforeValidator(_as_rule)]
FieldRule.model_rebuild()


class PartsFile(Strict):
    """``mappings/edifact/common.yaml``: parts (field sets for a segment or group read alike by
    many messages, e.g. a NAD party) and tables shared by every mapping file."""

    parts: dict[str, dict[str, FieldSpec]] = {}
    tables: dict[str, Table] = {}


class MappingFile(Strict):
    """One message type of one directory release to one canonical kind."""

    syntax: Literal["EDIFACT"]
    message: str = Field(pattern=r"^[A-Z]{6}$")
    release: str
    kind: str
    #: Rendering canonical messages of this kind into this message (the way back) is allowed.
    renders: bool = False
    #: The zone of dates and times the message gives without one (an IANA name).
    time_zone: str = "UTC"
    tables: dict[str, Table] = {}
    parts: dict[str, dict[str, FieldSpec]] = {}
    fields: dict[str, FieldSpec]
    #: Constant codes rendering writes at the message level (e.g. BGM C002 1001).
    write: dict[str, str] = {}

    @field_validator("release")
    @classmethod
    def _release(cls, value: str) -> str:
        if not _RELEASE.fullmatch(value):
            raise ValueError(f"{value!r} is not a directory release such as D96B")
        return value


#: A namespace prefix (XML Namespaces 1.0 NCName), ASCII as the registry's are.
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


class XmlMappingFile(Strict):
    """One XML document kind of the schema registry (``xml-schemas.yaml``) to one canonical
    kind.  Paths are XPath steps from the root element (inside ``each``/``from``: from the node
    they name), written with the prefixes of ``namespaces``."""

    syntax: Literal["XML"]
    #: The registry entry's name (``DEC-DMS``): its XSD is what the paths are checked against.
    schema_name: str = Field(alias="schema", min_length=1)
    kind: str
    namespaces: dict[str, str] = {}
    #: The zone of dates and times the document gives without one (an IANA name).
    time_zone: str = "UTC"
    tables: dict[str, Table] = {}
    parts: dict[str, dict[str, FieldSpec]] = {}
    fields: dict[str, FieldSpec]

    @field_validator("namespaces")
    @classmethod
    def _prefixes(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix, uri in value.items():
            if not _PREFIX.fullmatch(prefix):
                raise ValueError(f"{prefix!r} is not a namespace prefix")
            if not uri:
                raise ValueError(f"prefix {prefix!r}: give its namespace URI")
        return value
