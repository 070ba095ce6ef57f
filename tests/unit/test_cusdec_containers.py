"""A CUSDEC names the containers it covers in its heading EQD segments; the canonical
declaration carries them (``equipment``), so the port alarms can match a discharged or
gated-in container against the declarations that cover it (docs/port-alarms.md)."""

from __future__ import annotations

import pytest

from gateway.model.canonical import CustomsDeclaration
from tests.support.edifact import cusdec_message, interchange
from tests.unit.test_mappings import errors_of, map_all


@pytest.mark.parametrize("release", ["96B", "01B"])
def test_heading_eqd_segments_are_the_declarations_containers(release: str) -> None:
    data = interchange([cusdec_message(release=release, extra_heading=(
        "EQD+CN+MSCU1234565+45G1:102:5++3+5", "EQD+CN+TGHU7654321"))])
    assert errors_of(data) == []
    _, (declaration,) = map_all(data)
    assert isinstance(declaration, CustomsDeclaration)
    first, second = declaration.equipment
    assert (first.qualifier, first.id, first.size_type, first.full_or_empty) == (
        "CN", "MSCU1234565", "45G1", "5")
    assert second.id == "TGHU7654321"
    assert declaration.container_numbers == frozenset({"MSCU1234565", "TGHU7654321"})


def test_a_declaration_without_eqd_covers_no_container() -> None:
    _, (declaration,) = map_all(interchange([cusdec_message()]))
    assert isinstance(declaration, CustomsDeclaration)
    assert declaration.equipment == () and declaration.container_numbers == frozenset()
