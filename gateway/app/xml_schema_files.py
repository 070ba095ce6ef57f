"""Load the XML schema registry and compile each XSD once, from local files only.

xmlschema with ``allow="local"`` refuses to fetch anything remote, but only warns when an
``xs:import`` or ``xs:include`` cannot be loaded and builds the schema without it: a schema
whose imports went missing would then validate documents wrongly.  Every such warning is an
error at start-up here, naming the registry entry, the XSD and the location it wanted.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import xmlschema

from gateway.config.load import GatewayConfig
from gateway.config.xml_schemas import XmlSchemaEntry, XmlSchemasFile
from gateway.config.yamlfile import load_model
from gateway.errors import ConfigError
from gateway.pipeline.xml_kinds import XmlCatalog, XmlKind
from gateway.wire.xml.reader import XmlLimits

#: Where an integrator learns to plug a schema in.
HOW_TO = "docs/xml.md (adding a schema)"


def xml_catalog(config: GatewayConfig) -> XmlCatalog:
    """The XML kinds gateway.yaml's ``xml`` section names, with its limits."""
    xml = config.settings.xml
    if xml is None or config.xml_schemas_path is None:
        return XmlCatalog()
    catalog = load_xml_catalog(config.xml_schemas_path)
    limits = XmlLimits(max_bytes=xml.max_bytes, max_depth=xml.max_depth,
                       max_elements=xml.max_elements, max_namespaces=xml.max_namespaces)
    return replace(catalog, limits=limits, max_findings=xml.max_findings)


def load_xml_catalog(path: Path | None) -> XmlCatalog:
    """The registry at ``path`` (None: no XML kinds at all)."""
    if path is None:
        return XmlCatalog()
    registry = load_model(path, XmlSchemasFile)
    kinds: list[XmlKind] = []
    missing: list[str] = []
    for index, entry in enumerate(registry.schemas):
        xsd = (path.parent / entry.xsd).resolve()
        absent = [p for p in (xsd, *_locations(path, entry).values()) if not p.is_file()]
        if absent and entry.optional:
            missing.append(f"{entry.name}: {absent[0]} is not there, so {entry.name} "
                           f"documents are refused; plug the schema in as {HOW_TO} says")
            continue
        if absent:
            raise ConfigError(f"{path}: schemas[{index}] ({entry.name}): no XSD at "
                              f"{absent[0]}")
        schema = compile_schema(xsd, _locations(path, entry), f"{path}: schemas[{index}] "
                                f"({entry.name})")
        _check_root(schema, entry, f"{path}: schemas[{index}] ({entry.name})")
        kinds.append(XmlKind.of(entry, schema, str(xsd)))
    return XmlCatalog(tuple(kinds), tuple(missing), str(path))


def _locations(path: Path, entry: XmlSchemaEntry) -> dict[str, Path]:
    return {namespace: (path.parent / xsd).resolve()
            for namespace, xsd in entry.locations.items()}


#: Compiled schemas by their files and those files' identities: a process that loads the
#: registry again (a command, a test) compiles an unchanged XSD once (UBL's takes seconds).
_COMPILED: dict[tuple[tuple[str, int, int], ...], Any] = {}


def compile_schema(xsd: Path, locations: dict[str, Path], where: str) -> Any:
    """``xsd`` and everything it imports, compiled; any import that is not a local file, or
    does not load, is a ConfigError."""
    key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size)
                for p in (xsd, *locations.values()))
    if key not in _COMPILED:
        _COMPILED[key] = _compile(xsd, locations, where)
    return _COMPILED[key]


def _compile(xsd: Path, locations: dict[str, Path], where: str) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            schema = xmlschema.XMLSchema(
                str(xsd), locations=[(ns, str(p)) for ns, p in locations.items()],
                allow="local", defuse="always")
        except (xmlschema.XMLSchemaException, OSError, ValueError) as exc:
            raise ConfigError(f"{where}: {xsd} does not compile: {_first_line(exc)}") from None
    refused = [w for w in caught if issubclass(
        w.category, xmlschema.XMLSchemaImportWarning | xmlschema.XMLSchemaIncludeWarning)]
    if refused:
        raise ConfigError(f"{where}: {xsd}: {refused[0].message} (XSDs load from local "
                          "files only: put the imported XSD beside it, or map its namespace "
                          "in locations)")
    return schema


def _check_root(schema: Any, entry: XmlSchemaEntry, where: str) -> None:
    namespace = entry.root.namespace
    qname = f"{{{namespace}}}{entry.root.name}" if namespace else entry.root.name
    if schema.maps.elements.get(qname) is None:
        raise ConfigError(f"{where}: the XSD declares no global element {qname}; root must "
                          "name the document's root element")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
