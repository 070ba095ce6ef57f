"""Load and compile the mapping files of ``mappings/edifact`` (the I/O side of
pipeline/mapping): ``common.yaml`` holds the parts and tables every file may use; each other
``*.yaml`` maps one message type of one release."""

from __future__ import annotations

from pathlib import Path

from gateway.app.catalog_files import load_catalog
from gateway.catalog.catalog import Catalog
from gateway.config.files import read_text
from gateway.config.mappings import MappingFile, PartsFile
from gateway.config.yamlfile import load_with_places
from gateway.errors import ConfigError
from gateway.pipeline.mapping.compile import Origin, compile_mapping
from gateway.pipeline.mapping.mapping import CompiledMapping, Mappings

#: The mappings shipped with the gateway, beside the package in a source checkout.
DEFAULT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
COMMON = "common.yaml"


def load_mappings(catalog: Catalog, folder: Path | None = None,
                  generated: bool = True) -> Mappings:
    """Every mapping under ``<folder>/edifact``, compiled; the first error stops the load."""
    edifact = (folder or DEFAULT_MAPPINGS) / "edifact"
    if not edifact.is_dir():
        raise ConfigError(f"{edifact}: no mapping files here")
    common_path = edifact / COMMON
    common, common_where = (load_with_places(read_text(common_path), str(common_path), PartsFile)
                            if common_path.exists() else (PartsFile(), {}))
    common_origin = Origin(str(common_path), common_where)
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
    return Mappings(compiled)


def load_compiled(folder: Path | None = None) -> tuple[Catalog, Mappings]:
    """The shipped message structures and the mappings of ``folder`` compiled against them:
    what the pipeline reads messages with."""
    catalog = load_catalog()
    return catalog, load_mappings(catalog, folder)


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

