"""Load the compiled catalog from the ``schemas/edifact`` folder (the I/O side of catalog/)."""

from __future__ import annotations

from pathlib import Path

from gateway.catalog.catalog import Catalog
from gateway.errors import ConfigError

#: The schemas shipped with the gateway, beside the package in a source checkout.
DEFAULT_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "edifact"


def load_catalog(folder: Path = DEFAULT_SCHEMAS) -> Catalog:
    """Compile every message found under ``<folder>/<release>/messages``."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no EDIFACT schemas here (run `make schemas`)")
    releases = {
        release.name: tuple(sorted(p.stem for p in (release / "messages").glob("*.json")))
        for release in sorted(folder.iterdir())
        if (release / "messages").is_dir() and release.name != "service"
    }

    def read(relative: str) -> str:
        path = folder / relative
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc

    return Catalog.load(read, releases)
