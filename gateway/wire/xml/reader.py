"""Read an XML submission with a parser hardened against everything in it.

What is refused (one ``XmlRejected``, with the line when libxml2 or the element knows it):

* A document over ``XmlLimits.max_bytes``: checked before any parsing.
* Any DOCTYPE at all.  WCO DEC-DMS and UBL 2.1 documents have none; a DOCTYPE only ever serves
  DTD validation (we validate with XSD) or entities (billion laughs, quadratic blow-up, external
  entities to files or URLs, parameter entities), so refusing it closes all of those at once.
  A first pass with a target parser stops at the DOCTYPE declaration itself, before libxml2 reads
  its internal subset, or at the first element, so it costs the prolog only.
* Anything that is not well-formed (an undefined entity reference included), at its line.
* Deeper than ``max_depth`` or more than ``max_elements`` elements, at the offending element.

Besides, the parser never loads a DTD, never resolves an entity, never touches the network, and a
resolver refuses any external resource libxml2 might still ask for, so nothing outside the
document is ever read.  XInclude elements are left as plain elements: ``xinclude()`` is never
called, and the XSD of the document's kind rejects them.  Comments and processing instructions
are dropped: nothing downstream reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from gateway.errors import XmlRejected

#: Depth and element count are checked on the parser's events after each chunk, so the tree is
#: never more than one chunk's worth (at most _CHUNK / 4 elements: "<a/>") beyond the limit.
#: Parsing whole and counting afterwards would let a 10 MB "<a/><a/>..." build millions of nodes.
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """What one XML submission may cost; a customs declaration of 999 items fits well within."""

    max_bytes: int = 10 * 1024 * 1024
    max_depth: int = 64
    max_elements: int = 250_000
    #: Namespace declarations in the whole document.  A WCO or UBL document declares about ten;
    #: xmlschema and XPath carry every declaration in scope to each element below it, so 20,000
    #: on the root cost seconds of validation for a 500 KB document.
    max_namespaces: int = 256

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_elements", "max_namespaces"):
            if getattr(self, name) < 1:
                raise ValueError(f"XmlLimits.{name} must be at least 1")


@dataclass(frozen=True, slots=True)
class XmlDocument:
    """A well-formed document within its limits; ``root`` is an ``lxml.etree._Element`` whose
    nodes keep their ``sourceline`` for findings."""

    root: Any
    #: The root's namespace and local name: what a schema registry keys on.
    namespace: str | None
    local_name: str
    elements: int

    @property
    def tree(self) -> Any:
        return self.root.getroottree()


def read_xml(data: bytes, limits: XmlLimits = XmlLimits()) -> XmlDocument:
    """Parse ``data`` or raise ``XmlRejected`` saying what is wrong and where."""
    if len(data) > limits.max_bytes:
        raise XmlRejected(f"the document is {len(data)} bytes, over the {limits.max_bytes} "
                          "accepted")
    first: str | None = None
    try:
        first = _refuse_doctype(data)
        root, elements = _parse_bounded(data, limits)
    except XmlRejected as exc:
        exc.root = _name_of(first)
        raise
    except etree.XMLSyntaxError as exc:
        raise _not_well_formed(exc, _name_of(first)) from None
    except (etree.LxmlError, ValueError, LookupError) as exc:
        # libxml2 refusing an encoding or input it cannot even start on.
        raise XmlRejected(f"unreadable XML: {exc}", root=_name_of(first)) from None
    name = etree.QName(root)
    return XmlDocument(root=root, namespace=name.namespace, local_name=name.localname,
                       elements=elements)


class _PrologDone(Exception):
    """The first element is reached: the prolog had no DOCTYPE."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


class _PrologTarget:
    """Parser target that sees the prolog only (lxml stops the parser when a callback raises)."""

    def doctype(self, name: str | None, public_id: str | None, system_url: str | None) -> None:
        raise XmlRejected(f"a DOCTYPE ({name}) is not accepted: documents are validated by XSD "
                          "and may declare no DTD or entity")

    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> None:
        raise _PrologDone(tag)

    def close(self) -> None:
        return None


class _RefuseAll(etree.Resolver):  # type: ignore[misc]
    """Nothing outside the document is read, whatever libxml2 would like to load."""

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        raise XmlRejected(f"the document refers to {system_url!r}; nothing outside it is read")


_HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
}


def _refuse_doctype(data: bytes) -> str | None:
    """The root element's tag (Clark notation), known before the rest is read, so that even a
    document broken further on is answered in its own standard."""
    parser = etree.XMLParser(target=_PrologTarget(), **_HARDENED)
    parser.resolvers.add(_RefuseAll())
    try:
        parser.feed(data)
        parser.close()
    except _PrologDone as done:
        return done.tag
    return None


def _name_of(tag: str | None) -> tuple[str | None, str] | None:
    if tag is None:
        return None
    name = etree.QName(tag)
    return name.namespace, name.localname


def _parse_bounded(data: bytes, limits: XmlLimits) -> tuple[Any, int]:
    parser = etree.XMLPullParser(events=("start", "end", "start-ns"), **_HARDENED)
    parser.resolvers.add(_RefuseAll())
    depth = elements = namespaces = 0
    for offset in range(0, len(data), _CHUNK):
        parser.feed(data[offset:offset + _CHUNK])
        for event, element in parser.read_events():
            if event == "end":
                depth -= 1
                continue
            if event == "start-ns":  # comes before its element's start: no line to give yet
                namespaces += 1
                if namespaces > limits.max_namespaces:
                    raise XmlRejected(f"more than {limits.max_namespaces} namespace "
                                      "declarations")
                continue
            depth += 1
            elements += 1
            if depth > limits.max_depth:
                raise XmlRejected(f"elements nested deeper than {limits.max_depth}",
                                  line=element.sourceline)
            if elements > limits.max_elements:
                raise XmlRejected(f"more than {limits.max_elements} elements",
                                  line=element.sourceline)
    return parser.close(), elements


def _not_well_formed(exc: Any, root: tuple[str | None, str] | None) -> XmlRejected:
    """libxml2's own message and line; the feed parser leaves ``lineno`` 0 for some errors (an
    undefined entity), its error log has the line."""
    last = exc.error_log.last_error
    if last is None:
        return XmlRejected(f"not well-formed XML: {exc.msg}", line=exc.lineno or None,
                           root=root)
    return XmlRejected(f"not well-formed XML: {last.message}",
                       line=last.line or exc.lineno or None, root=root)
