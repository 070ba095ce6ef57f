"""``gateway schemas canonical``: the JSON Schema of every canonical message, for agency teams
(``schemas/canonical/<Kind>.schema.json``; running it again writes the same bytes)."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.model.canonical import KINDS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def write_canonical_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, model in sorted(KINDS.items()):
        schema = {"$schema": SCHEMA_DIALECT, **model.model_json_schema(mode="serialization")}
        path = out / f"{kind}.schema.json"
        path.write_text(json.dumps(schema, indent=1, ensure_ascii=False) + "\n", "utf-8")
        written.append(path)
    return written
