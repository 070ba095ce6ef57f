"""``gateway mappings check`` and ``gateway render``: the mapping files seen from the shell."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from gateway.app.mapping_files import DEFAULT_MAPPINGS, load_compiled
from gateway.app.xml_schema_files import load_xml_catalog
from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError, RenderError
from gateway.model.canonical import CANONICAL_ADAPTER
from gateway.pipeline.render import render_interchange

#: The demo's XML schema registry, beside the package in a source checkout.
DEMO_XML_SCHEMAS = DEFAULT_MAPPINGS.parent / "deploy" / "demo" / "xml-schemas.yaml"


def check_mappings(folder: Path | None, out: TextIO, xml_schemas: Path | None = None) -> int:
    """Compile every mapping file (the XML ones against the XSDs of ``xml_schemas``, by
    default the demo registry when it is there); ConfigError (file:line: reason) on the first
    wrong one.  XML files whose schema the registry does not hold are listed as skipped."""
    if xml_schemas is None and DEMO_XML_SCHEMAS.is_file():
        xml_schemas = DEMO_XML_SCHEMAS
    xml = load_xml_catalog(xml_schemas)
    _, mappings = load_compiled(folder, xml=xml)
    for (message, release), mapping in sorted(mappings.by_message.items()):
        way = "<->" if mapping.renders else "->"
        out.write(f"ok  {message} {release} {way} {mapping.model.__name__}  "
                  f"({_shown(Path(mapping.name))})\n")
    for name, xml_mapping in sorted(mappings.by_xml_schema.items()):
        out.write(f"ok  {name} {xml_mapping.version} (XML) -> {xml_mapping.model.__name__}  "
                  f"({_shown(Path(xml_mapping.name))})\n")
    for path, reason in mappings.xml_skipped:
        out.write(f"skipped  {_shown(Path(path))}: {reason}\n")
    where = _shown(folder or DEFAULT_MAPPINGS)
    out.write(f"{len(mappings.by_message)} mappings under {where} compile against "
              "schemas/edifact and the canonical model\n")
    registry = _shown(xml_schemas) if xml_schemas is not None else "no XML schema registry"
    out.write(f"{len(mappings.by_xml_schema)} XML mappings compile against the XSDs of "
              f"{registry} and the canonical model; {len(mappings.xml_skipped)} skipped\n")
    return 0


def _shown(path: Path) -> Path:
    """``path`` from the current directory when it lies below it (shorter to read)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def render_file(config: GatewayConfig, path: Path, syntax_version: str, out: TextIO) -> int:
    """Read a canonical message (JSON, as agencies write it) and print its EDIFACT."""
    try:
        canonical = CANONICAL_ADAPTER.validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RenderError(f"{path}: not a canonical message: {where}: {first['msg']}") from exc
    _, mappings = load_compiled(config.mappings_path)
    body = render_interchange(canonical, mappings, dt.datetime.now(dt.UTC), syntax_version)
    out.write(body.decode("latin-1"))
    return 0
