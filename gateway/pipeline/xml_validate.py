"""Validate an XML document against its kind's compiled XSD: every violation, as a Finding with
its line, its XPath and the reason, capped at a count with the rest told as a number.

The XSD was compiled once at start-up (app/xml_schema_files.py); this runs it on the parsed tree
and touches no file.  Each violation gets the ISO 9735 0085 code nearest its meaning, so that
the stored findings and the answers read alike for EDIFACT and XML.
"""

from __future__ import annotations

import re
from typing import Any

import xmlschema
from xmlschema.exceptions import XMLSchemaKeyError

from gateway.model.findings import Finding, SyntaxErrorCode, shown
from gateway.pipeline.mapping.xml_read import xpath_of
from gateway.pipeline.xml_kinds import DEFAULT_MAX_FINDINGS, XmlKind
from gateway.wire.xml.reader import XmlDocument

Code = SyntaxErrorCode
#: The longest reason quoted: xmlschema's reasons quote values, and a value may be huge.
_REASON_CHARACTERS = 300
_CLARK = re.compile(r"\{([^}]*)\}")
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def schema_findings(document: XmlDocument, kind: XmlKind,
                    cap: int = DEFAULT_MAX_FINDINGS) -> list[Finding]:
    """Every XSD violation of ``document`` (at most ``cap`` and one finding counting the rest);
    an empty list when it is valid."""
    prefixes = _prefixes(document.root)
    findings: list[Finding] = []
    more = 0
    try:
        for error in kind.schema.iter_errors(document.tree, namespaces=prefixes):
            if len(findings) < cap:
                findings.append(_finding(error, prefixes))
            else:
                more += 1
    except XMLSchemaKeyError as exc:
        # xmlschema raises, instead of reporting, an xsi:type naming a type the schema does not
        # have (XSD 1.1 part 1, 3.3.4.4 cvc-elt 4.1): the document's fault, not ours.
        findings.append(_unknown_type(document, kind, exc))
    if more:
        findings.append(Finding(Code.UNSPECIFIED, f"{more} more schema violations not listed "
                                f"(the first {cap} are)"))
    return findings


def _unknown_type(document: XmlDocument, kind: XmlKind, exc: XMLSchemaKeyError) -> Finding:
    """The first element whose xsi:type names no global type of the schema, at its line."""
    for element in document.root.iter():
        value = element.get(_XSI_TYPE)
        if value is None:
            continue
        prefix, _, local = value.strip().rpartition(":")
        namespace = element.nsmap.get(prefix or None)
        name = f"{{{namespace}}}{local}" if namespace else local
        if name not in kind.schema.maps.types:
            return Finding(Code.INVALID_VALUE, f"xsi:type {shown(value)} names no type of the "
                           "schema", line=element.sourceline,
                           xpath=xpath_of(element))
    return Finding(Code.INVALID_VALUE, f"cannot be validated: {shown(str(exc))}")


def _prefixes(root: Any) -> dict[str, str]:
    """The document's own prefixes (the default namespace as ""), so XPaths read as the
    trader wrote the document."""
    return {(prefix or ""): uri for prefix, uri in root.nsmap.items()}


def _finding(error: xmlschema.XMLSchemaValidationError, prefixes: dict[str, str]) -> Finding:
    reason = _readable(error.reason or error.message, prefixes)
    if len(reason) > _REASON_CHARACTERS:
        reason = reason[:_REASON_CHARACTERS] + "..."
    line, path = error.sourceline, error.path or ""
    child = getattr(error, "invalid_child", None)
    if child is not None:
        # "Unexpected child" is reported on the parent: point at the child itself.
        line = child.sourceline or line
        path = f"{path}/{_short_name(child.tag, prefixes)}"
    return Finding(_code(error), reason, line=line, xpath=path)


def _code(error: xmlschema.XMLSchemaValidationError) -> Code:
    """The 0085 code nearest a violation: a value that breaks its type is an invalid value
    (12), a required element or attribute absent is missing (13), an element or attribute
    where the schema has none is not supported in that position (15)."""
    reason = (error.reason or "").lower()
    if isinstance(error, xmlschema.XMLSchemaChildrenValidationError):
        return Code.NOT_SUPPORTED_IN_POSITION if getattr(error, "invalid_child", None) \
            is not None else Code.MISSING
    if "missing required attribute" in reason:
        return Code.MISSING
    if "not allowed" in reason or "unexpected" in reason:
        return Code.NOT_SUPPORTED_IN_POSITION
    if isinstance(error, xmlschema.XMLSchemaDecodeError) or "value" in reason:
        return Code.INVALID_VALUE
    return Code.UNSPECIFIED


def _readable(text: str, prefixes: dict[str, str]) -> str:
    """Clark names ``{urn:...}Name`` as the document writes them (``Name``, ``md:Name``)."""
    by_uri = {uri: prefix for prefix, uri in prefixes.items()}

    def prefixed(match: re.Match[str]) -> str:
        prefix = by_uri.get(match.group(1))
        if prefix is None:
            return match.group(0)
        return f"{prefix}:" if prefix else ""

    return _CLARK.sub(prefixed, text)


def _short_name(tag: object, prefixes: dict[str, str]) -> str:
    return _readable(tag if isinstance(tag, str) else str(tag), prefixes)
