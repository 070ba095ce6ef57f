"""``gateway mappings check`` and ``gateway render``: the mapping files seen from the shell."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from gateway.app.mapping_files import DEFAULT_MAPPINGS, load_compiled
from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError, RenderError
from gateway.model.canonical import CANONICAL_ADAPTER
from gateway.pipeline.render import render_interchange


def check_mappings(folder: Path | None, out: TextIO) -> int:
    """Compile every mapping file; ConfigError (file:line: reason) on the first wrong one."""
    _, mappings = load_compiled(folder)
    for (message, release), mapping in sorted(mappings.by_message.items()):
        way = "<->" if mapping.renders else "->"
        out.write(f"ok  {message} {release} {way} {mapping.model.__name__}  "
                  f"({_shown(Path(mapping.name))})\n")
    out.write(f"{len(mappings.by_message)} mappings under {_shown(folder or DEFAULT_MAPPINGS)} "
              "compile against schemas/edifact and the canonical model\n")
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
