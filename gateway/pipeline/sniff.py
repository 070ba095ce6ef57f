"""Tell what a submission is before any parser sees it: by its content, never its file name.

XML 1.0 Appendix F: a byte-order mark says the encoding outright; without one, the first
character ("<", whitespace, or the "U" of UNA/UNB) tells the width and byte order of the code
units, and an XML declaration in an ASCII-compatible encoding names its encoding.  EDIFACT is
read in ASCII-compatible encodings only (ISO 9735 syntax levels A-C and UTF-8), with or without
a UTF-8 BOM.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from enum import StrEnum

from gateway.wire.edifact.syntax import BYTE_ORDER_MARK


class Syntax(StrEnum):
    EDIFACT = "EDIFACT"
    XML = "XML"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Sniffed:
    syntax: Syntax
    #: The encoding to read the content in (a Python codec name without BOM handling, e.g.
    #: "utf-16-le"), None when the syntax is unknown.
    encoding: str | None
    #: How many bytes of byte-order mark precede the content.
    bom: int = 0


#: Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (BYTE_ORDER_MARK, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
#: Without a BOM, the code unit width and order in which the first character is one we expect.
_UNITS = (("utf-32-be", 4), ("utf-32-le", 4), ("utf-16-be", 2), ("utf-16-le", 2), ("utf-8", 1))
_FIRST = frozenset("<\t\r\n U")
_WHITESPACE = "\t\r\n "  # XML 1.0 production [3] S, and what EDIFACT files are padded with
_HEAD = 1024
_DECLARED = re.compile(r"<\?xml\s[^>]*?\bencoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._-]*)[\"']")


def sniff(data: bytes) -> Syntax:
    return inspect(data).syntax


def inspect(data: bytes) -> Sniffed:
    """The syntax of ``data`` and the encoding its content is written in."""
    bom, encoding = _encoding(data)
    if encoding is None:
        return Sniffed(Syntax.UNKNOWN, None)
    head = _decode_head(data[bom:], encoding).lstrip(_WHITESPACE)
    if head[:3] in ("UNA", "UNB") and encoding == "utf-8":
        return Sniffed(Syntax.EDIFACT, encoding, bom)
    if not head.startswith("<"):
        return Sniffed(Syntax.UNKNOWN, None)
    if encoding == "utf-8" and not bom:
        encoding = _declared(head) or encoding
    return Sniffed(Syntax.XML, encoding, bom)


def _encoding(data: bytes) -> tuple[int, str | None]:
    for mark, name in _BOMS:
        if data.startswith(mark):
            return len(mark), name
    for name, width in _UNITS:
        if len(data) < width:
            continue
        try:
            first = data[:width].decode(name)
        except UnicodeDecodeError:
            continue
        if first in _FIRST:
            return 0, name
    return 0, None


def _decode_head(data: bytes, encoding: str) -> str:
    # An incremental decoder leaves a code unit cut at _HEAD aside instead of failing on it.
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return decoder.decode(data[:_HEAD])


def _declared(head: str) -> str | None:
    """The encoding an XML declaration at the very start names (XML 1.0 section 4.3.3)."""
    found = _DECLARED.match(head)
    if found is None:
        return None
    name = found.group(1)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name.lower()
