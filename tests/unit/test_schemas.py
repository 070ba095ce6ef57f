"""schemas/edifact is generated from the UN directories, reproducibly, and says what the UN
text says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.app.schemas import build
from gateway.catalog import untdid
from gateway.catalog.specs import Representation, message_from_json, segment_from_json

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas" / "edifact"
DIRECTORIES = ROOT.parent / "shared" / "directories"


def load(relative: str) -> dict[str, object]:
    data = json.loads((SCHEMAS / relative).read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.skipif(not DIRECTORIES.is_dir(), reason="../shared/directories is absent")
def test_running_the_generator_again_changes_nothing(tmp_path: Path) -> None:
    written = build(DIRECTORIES, tmp_path)
    assert written
    for path in written:
        committed = SCHEMAS / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: make schemas"
    generated = {p.relative_to(tmp_path) for p in tmp_path.rglob("*.json")}
    assert generated == {p.relative_to(SCHEMAS) for p in SCHEMAS.rglob("*.json")}


def test_segments_say_what_the_un_directory_says() -> None:
    cst = segment_from_json("CST", load("D96B/segments.json")["CST"])  # type: ignore[arg-type]
    assert [e.id for e in cst.elements] == ["1496", "C246", "C246", "C246", "C246", "C246"]
    assert cst.elements[0].representation == Representation("n", 1, 5)
    assert cst.elements[1].components[0].id == "7361"
    assert cst.elements[1].components[0].mandatory
    com = segment_from_json("COM", load("D01B/segments.json")["COM"])  # type: ignore[arg-type]
    assert com.elements[0].id == "C076"
    fixed = segment_from_json("DGS", load("D96B/segments.json")["DGS"])  # type: ignore[arg-type]
    assert Representation("n", 4, 4) in {c.representation for e in fixed.elements
                                         for c in e.components}


def test_message_structures_have_their_groups() -> None:
    cusdec = message_from_json(load("D96B/messages/CUSDEC.json"))
    tags = [getattr(n, "tag", getattr(n, "name", "")) for n in cusdec.content]
    assert tags[:3] == ["UNH", "BGM", "CST"] and tags[-1] == "UNT"
    sg30 = next(n for n in cusdec.content if getattr(n, "name", "") == "SG30")
    assert sg30.trigger == "CST" and sg30.repeat == 9999  # type: ignore[union-attr]


def test_code_lists_and_service_segments() -> None:
    assert "9" in load("D96B/codes.json")["1225"]  # type: ignore[operator]
    assert "929" in load("D01B/codes.json")["1001"]  # type: ignore[operator]
    unb = segment_from_json("UNB", load("service/4/segments.json")["UNB"])  # type: ignore[arg-type]
    assert unb.elements[0].components[0].representation == Representation("a", 4, 4)
    contrl = message_from_json(load("service/4/messages/CONTRL.json"))
    assert (contrl.version, contrl.release) == ("4", "1")
    assert "29" in load("service/4/codes.json")["0085"]  # type: ignore[operator]


def test_deleted_codes_and_wrapped_names_are_read_right() -> None:
    codes = untdid.parse_code_lists(
        "──────────\n\n     1001  Document name code   [C]\n\n     Desc: A code.\n\n"
        "     Repr: an..3\n\n     Note: Users should note that\n           codes change.\n\n"
        "     1     Certificate of analysis\n              Certificate providing values.\n"
        "-    2     Withdrawn\n#|    12 Renamed\n          continued name\n"
        "──────────\n")
    assert codes == {"1001": ("1", "12")}
    segments = untdid.parse_segment_directory(
        "       CDI  PHYSICAL OR LOGICAL STATE\n\n"
        "010    7001 PHYSICAL OR LOGICAL STATE TYPE CODE\n"
        "            QUALIFIER                                  M    1 an..3\n")
    assert segments["CDI"].elements[0].mandatory
    assert segments["CDI"].elements[0].name == "PHYSICAL OR LOGICAL STATE TYPE CODE QUALIFIER"
