"""Load and compile the mapping files of ``mappings/edifact`` and ``mappings/xml`` (the I/O side
of pipeline/mapping): in each folder ``common.yaml`` holds the parts and tables every file
there may use; each other ``*.yaml`` maps one message type of one release (EDIFACT) or one
document kind of the XML schema registry (XML)."""

from __future__ import annotations

from pathlib import Path

from gateway.app.catalog_files import load_catalog
from gateway.catalog.catalog import Catalog
from gateway.config.files import read_text
from gateway.config.mappings import MappingFile, PartsFile, XmlMappingFile
from gateway.config.yamlfile import load_with_places
from gateway.errors import ConfigError
from gateway.pipeline.mapping.compile import Origin, compile_mapping
from gateway.pipeline.mapping.mapping import CompiledMapping, Mappings
from gateway.pipeline.mapping.xml_compile import compile_xml_mapping
from gateway.pipeline.mapping.xml_read import CompiledXmlMapping
from gateway.pipeline.xml_kinds import XmlCatalog

#: The mappings shipped with the gateway, beside the package in a source checkout.
DEFAULT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
COMMON = "common.yaml"
#: No XML kinds: EDIFACT mappings only.
NO_XML = XmlCatalog()


def load_mappings(catalog: Catalog, folder: Path | None = None, generated: bool = True,
                  xml: XmlCatalog = NO_XML) -> Mappings:
    """Every mapping under ``<folder>/edifact``, compiled, and those under ``<folder>/xml``
    whose schema ``xml`` holds; the first error stops the load."""
    edifact = (folder or DEFAULT_MAPPINGS) / "edifact"
    if not edifact.is_dir():
        raise ConfigError(f"{edifact}: no mapping files here")
    common, common_origin = _common(edifact)
    compiled: dict[tuple[str, str], CompiledMapping] = {}
    for path in sorted(edifact.glob("*.yaml")):
        if path.name == COMMON:
            continue
        mapping = compile_file(path, catalog, common, common_origin, generated)
        key = (mapping.message, mapping.release)
        if key in compiled:
            raise ConfigError(f"{path}: {key[0]} {key[1]} is mapped by "
                              f"{compiled[key].name} already")
        compiled[key] = mapping
    by_schema, skipped = load_xml_mappings((folder or DEFAULT_MAPPINGS) / "xml", xml)
    return Mappings(compiled, by_schema, skipped)


def _common(directory: Path) -> tuple[PartsFile, Origin]:
    path = directory / COMMON
    common, where = (load_with_places(read_text(path), str(path), PartsFile)
                     if path.exists() else (PartsFile(), {}))
    return common, Origin(str(path), where)


def load_xml_mappings(directory: Path, xml: XmlCatalog) -> tuple[
        dict[str, CompiledXmlMapping], tuple[tuple[str, str], ...]]:
    """The XML mappings of ``directory`` compiled against the kinds of ``xml``, and the files
    left out with the reason (their schema is not in the registry in force).  Every kind of
    ``xml`` must have its mapping: a document the gateway validates but cannot map would be
    accepted and go nowhere."""
    compiled: dict[str, CompiledXmlMapping] = {}
    skipped: list[tuple[str, str]] = []
    if directory.is_dir():
        common, common_origin = _common(directory)
        for path in sorted(directory.glob("*.yaml")):
            if path.name == COMMON:
                continue
            file, where = load_with_places(read_text(path), str(path), XmlMappingFile)
            kind = xml.named(file.schema_name)
            if kind is None:
                reason = next((m for m in xml.missing if m.startswith(f"{file.schema_name}:")),
                              f"schema {file.schema_name} is not in the XML schema registry "
                              f"({xml.source or 'none in force'})")
                skipped.append((str(path), reason))
                continue
            if kind.name in compiled:
                raise ConfigError(f"{path}: {kind.name} is mapped by "
                                  f"{compiled[kind.name].name} already")
            compiled[kind.name] = compile_xml_mapping(file, Origin(str(path), where), kind,
                                                      common, common_origin)
    for kind in xml.kinds:
        if kind.name not in compiled:
            raise ConfigError(f"{xml.source or 'the XML schema registry'}: no mapping for "
                              f"{kind.name} in {directory} (a file with schema: {kind.name})")
    return compiled, tuple(skipped)


def load_compiled(folder: Path | None = None,
                  xml: XmlCatalog = NO_XML) -> tuple[Catalog, Mappings]:
    """The shipped message structures and the mappings of ``folder`` compiled against them
    (and against the XSDs of ``xml``): what the pipeline reads messages with."""
    catalog = load_catalog()
    return catalog, load_mappings(catalog, folder, xml=xml)


def compile_file(path: Path, catalog: Catalog, common: PartsFile,
                 common_origin: Origin, generated: bool = True) -> CompiledMapping:
    file, where = load_with_places(read_text(path), str(path), MappingFile)
    message = catalog.message(file.message, file.release)
    if message is None:
        have = ", ".join(catalog.releases_of(file.message)) or "none"
        raise ConfigError(f"{path}:1:1 message: no {file.message} {file.release} in "
                          f"schemas/edifact (releases there: {have}; add it with `gateway "
                          f"schemas build --release {file.release} --message {file.message}`)")
    return compile_mapping(file, Origin(str(path), where), message, common, common_origin,
                           generated)

