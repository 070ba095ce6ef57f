"""``gateway schemas build``: generate ``schemas/edifact`` from the UN/EDIFACT directories.

Inputs (``../shared/directories`` by default, never copied into the repository):
- ``unece/<release>/mapping/<release>.zip``: the official UN directory of a release, whose
  segment directory (EDSD/TRSD), message specifications (EDMD/TRMD) and code lists (UNCL) are
  zip members, themselves often zipped;
- ``php-edifact-mapping/src/Mapping/Service_V3|Service_V4``: ISO 9735 service segments and
  CONTRL, with the service code lists of that rendering.

Output: ``<out>/<release>/segments.json``, ``codes.json`` and ``messages/<TYPE>.json``; and
``<out>/service/<version>/segments.json``, ``codes.json`` and ``messages/CONTRL.json``.
Running it again writes the same bytes.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.catalog import iso9735, untdid
from gateway.catalog.specs import message_json, segment_json
from gateway.errors import ConfigError

DEFAULT_RELEASES = ("D96B", "D01B")
DEFAULT_MESSAGES = ("CUSDEC", "CUSRES", "CUSCAR", "CUSREP", "IFTMIN", "IFTSTA", "COARRI",
                    "CODECO", "APERAK")
SERVICE_VERSIONS = {"3": "Service_V3", "4": "Service_V4"}
#: The service code lists ship beside a release in the rendering; D96B carries both versions.
SERVICE_CODES = {"3": "D96B/service_codes_v3.xml", "4": "D96B/service_codes_v4.xml"}
DIRECTORY_TEXT = "cp437"  # the UN directories are DOS text with box-drawing characters


def build(directories: Path, out: Path, releases: tuple[str, ...] = DEFAULT_RELEASES,
          messages: tuple[str, ...] = DEFAULT_MESSAGES) -> list[Path]:
    """Write every schema file; return the paths written."""
    written: list[Path] = []
    for release in releases:
        written += _release(directories, out, release.upper(), messages)
    for version in SERVICE_VERSIONS:
        written += _service(directories, out, version)
    return written


def _release(directories: Path, out: Path, release: str,
             messages: tuple[str, ...]) -> list[Path]:
    archive = directories / "unece" / release.lower() / "mapping" / f"{release.lower()}.zip"
    if not archive.is_file():
        raise ConfigError(f"{archive}: the UN directory of {release} is not there")
    members = dict(_members(zipfile.ZipFile(archive)))
    suffix = f".{release[1:]}"  # D96B -> .96B
    segments = untdid.parse_segment_directory(_one(members, rf"^(EDSD|TRSD){re.escape(suffix)}$",
                                                   archive))
    codes = untdid.parse_code_lists("\n".join(
        members[name] for name in sorted(members)
        if re.match(rf"^UNCL(-\d)?{re.escape(suffix)}$", name)))
    folder = out / release
    written = [_write(folder / "segments.json",
                      {tag: segment_json(spec) for tag, spec in sorted(segments.items())}),
               _write(folder / "codes.json", {k: list(v) for k, v in sorted(codes.items())})]
    for message in messages:
        text = _one(members, rf"^{message}_D{re.escape(suffix)}$", archive)
        spec = untdid.parse_message(text, message, release[0], release[1:])
        written.append(_write(folder / "messages" / f"{message}.json", message_json(spec)))
    return written


def _service(directories: Path, out: Path, version: str) -> list[Path]:
    base = directories / "php-edifact-mapping" / "src" / "Mapping"
    source = base / SERVICE_VERSIONS[version]
    if not source.is_dir():
        raise ConfigError(f"{source}: the ISO 9735 service segments are not there")
    segments = iso9735.parse_service_segments((source / "segments.xml").read_text("utf-8"))
    codes = iso9735.parse_service_codes((base / SERVICE_CODES[version]).read_text("utf-8"))
    contrl = iso9735.parse_xml_message((source / "messages" / "contrl.xml").read_text("utf-8"))
    folder = out / "service" / version
    return [
        _write(folder / "segments.json",
               {tag: segment_json(spec) for tag, spec in sorted(segments.items())}),
        _write(folder / "codes.json", {k: list(v) for k, v in sorted(codes.items())}),
        _write(folder / "messages" / "CONTRL.json", message_json(contrl)),
    ]


def _members(archive: zipfile.ZipFile) -> Iterator[tuple[str, str]]:
    """Every text member by base name, looking inside nested zips."""
    for info in archive.infolist():
        name = info.filename.rsplit("/", 1)[-1]
        data = archive.read(info)
        if name.upper().endswith(".ZIP"):
            yield from _members(zipfile.ZipFile(io.BytesIO(data)))
        elif name:
            yield name.upper(), data.decode(DIRECTORY_TEXT)


def _one(members: dict[str, str], pattern: str, archive: Path) -> str:
    found = [name for name in members if re.match(pattern, name)]
    if len(found) != 1:
        raise ConfigError(f"{archive}: expected one member matching {pattern}, found {found}")
    return members[found[0]]


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
