"""Read the ISO 9735 service segments and service messages (CONTRL) from the XML rendering in
``directories/php-edifact-mapping`` (Service_V3, Service_V4): the UN zips do not carry them.

Trusted, shipped input (not partner data), read with the standard library's parser.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gateway.catalog.specs import (
    ComponentSpec,
    ElementSpec,
    GroupSpec,
    MessageSpec,
    Representation,
    SegmentRef,
    SegmentSpec,
)


def parse_service_segments(xml_text: str) -> dict[str, SegmentSpec]:
    root = ET.fromstring(xml_text)
    return {
        segment.get("id", ""): SegmentSpec(
            segment.get("id", ""), _title(segment.get("name", "")),
            tuple(_element(e) for e in segment))
        for segment in root.iter("segment")
    }


def _element(node: ET.Element) -> ElementSpec:
    mandatory = node.get("required") == "true"
    if node.tag == "composite_data_element":
        components = tuple(
            ComponentSpec(c.get("id", ""), _title(c.get("name", "")), c.get("required") == "true",
                          _representation(c))
            for c in node)
        return ElementSpec(node.get("id", ""), _title(node.get("name", "")), mandatory, 1,
                           None, components)
    return ElementSpec(node.get("id", ""), _title(node.get("name", "")), mandatory, 1,
                       _representation(node))


def _representation(node: ET.Element) -> Representation:
    kind = node.get("type", "an")
    fixed = node.get("length")
    if fixed is not None:
        return Representation(kind, int(fixed), int(fixed))
    return Representation(kind, 1, int(node.get("maxlength", "35")))


def _title(camel: str) -> str:
    """``interchangeSender`` -> ``interchange sender`` (the rendering's names are camelCase)."""
    return "".join(f" {ch.lower()}" if ch.isupper() else ch for ch in camel).strip()


def parse_xml_message(xml_text: str) -> MessageSpec:
    root = ET.fromstring(xml_text)
    found = root.find("defaults")
    defaults = {d.get("id", ""): d.get("value", "") for d in (found if found is not None else ())}
    return MessageSpec(defaults.get("0065", ""), defaults.get("0052", ""),
                       defaults.get("0054", ""), defaults.get("0051", ""),
                       tuple(_node(n) for n in root if n.tag in ("segment", "group")))


def _node(node: ET.Element) -> SegmentRef | GroupSpec:
    mandatory = node.get("required") == "true"
    repeat = int(node.get("maxrepeat", "1"))
    if node.tag == "segment":
        return SegmentRef(node.get("id", ""), mandatory, repeat)
    return GroupSpec(node.get("id", ""), mandatory, repeat,
                     tuple(_node(n) for n in node if n.tag in ("segment", "group")))


def parse_service_codes(xml_text: str) -> dict[str, tuple[str, ...]]:
    root = ET.fromstring(xml_text)
    return {
        element.get("id", ""): tuple(sorted({c.get("id", "") for c in element}))
        for element in root
        if len(element)
    }
