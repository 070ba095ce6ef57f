"""CUSDEC (D96B, D01B) -> CustomsDeclaration.  The mapping is documented in
docs/mapping-cusdec.md; both releases share the parts read here.

Message structure (UNTDID CUSDEC): heading up to the first UNS, then the detail section with
SG10 (DMS, summary declarations) and SG30 (CST, one per goods item), then UNS and the summary.
"""

from __future__ import annotations

from gateway.errors import MappingError
from gateway.model.canonical import CustomsDeclaration, GoodsItem, Source
from gateway.model.canonical.customs_declaration import MessageFunction
from gateway.model.edifact import Interchange, Message, Segment
from gateway.pipeline.mapping import segments as read
from gateway.pipeline.mapping.groups import Level, split_at, split_level

#: Heading groups in order: SG1 RFF, SG4 TDT, SG5 DOC, SG6 NAD, SG7 TOD, SG8 MOA.
HEADING_GROUPS = ("RFF", "TDT", "DOC", "NAD", "TOD", "MOA")
#: Goods item (SG30) groups in order: SG31 PAC, SG33 MOA, SG35 RFF, SG37 DOC, SG38 TOD,
#: SG39 GDS, SG40 GIS, SG41 TAX, SG42 QVR, SG44 GIR.
GOODS_ITEM_GROUPS = ("PAC", "MOA", "RFF", "DOC", "TOD", "GDS", "GIS", "TAX", "QVR", "GIR")

#: UNTDID 1225 message function -> canonical function.
FUNCTIONS: dict[str, MessageFunction] = {
    "9": "original", "5": "replacement", "1": "cancellation", "4": "change",
    "3": "deletion", "31": "copy", "7": "duplicate",
}
#: UNTDID 3227 qualifiers that name a customs office (22 clearance, 41 entry).
CUSTOMS_OFFICE_QUALIFIERS = ("22", "41")
#: UNTDID 3227 27: country of origin.
ORIGIN = "27"
#: UNTDID 6313 dimensions that are gross and net weights.
GROSS_WEIGHTS = frozenset({"G", "AAB", "AAD", "AAE"})
NET_WEIGHTS = frozenset({"N", "AAA", "AAC"})
#: UNTDID 4451 AAA: goods description.
GOODS_DESCRIPTION = "AAA"


class MissingSegment(MappingError):
    def __init__(self, tag: str, position: int) -> None:
        super().__init__(f"mandatory segment {tag} is missing")
        self.tag = tag
        self.position = position


def map_cusdec(interchange: Interchange, message: Message) -> CustomsDeclaration:
    body = message.body
    sections = split_at(body, "UNS")
    heading_end = next((i for i, s in enumerate(body) if s.tag == "UNS"), len(body))
    heading = split_level(body[:heading_end], HEADING_GROUPS)
    detail = sections[0][1:] if sections else []
    bgm = heading.first("BGM")
    if bgm is None:
        raise MissingSegment("BGM", message.segments[0].position + 1)
    mark = interchange.delimiters.decimal
    locations = [read.location(s) for s in heading.all("LOC")]
    return CustomsDeclaration(
        source=_source(interchange, message),
        declaration_number=_mandatory(bgm, 2, "document number (C106 1004)"),
        document_code=bgm.value(1, 1),
        function=FUNCTIONS.get(bgm.value(3) or "9", "other"),
        function_code=read.optional(bgm.value(3)),
        customs_office=next((loc.code for loc in locations
                             if loc.qualifier in CUSTOMS_OFFICE_QUALIFIERS), None),
        dates=tuple(read.date(s) for s in heading.all("DTM")),
        locations=tuple(locations),
        parties=tuple(read.party(s) for s in heading.triggers("NAD")),
        transport=tuple(read.transport(s) for s in heading.triggers("TDT")),
        documents=tuple(read.document(s) for s in heading.triggers("DOC")),
        references=tuple(read.reference(s) for s in heading.triggers("RFF")),
        amounts=tuple(read.amount(s, mark) for s in heading.triggers("MOA")),
        goods_items=tuple(_goods_item(item, mark) for item in split_at(detail, "CST")),
    )


def _source(interchange: Interchange, message: Message) -> Source:
    header = interchange.header
    return Source(
        syntax="EDIFACT",
        message_type=message.identifier.type,
        release=message.identifier.directory,
        sender=header.sender.id,
        recipient=header.recipient.id,
        interchange_reference=header.control_reference,
        message_reference=message.reference,
    )


def _mandatory(segment: Segment, element: int, what: str) -> str:
    value = segment.value(element)
    if not value:
        raise read.BadValue(segment, element, 1, f"{what} is missing",
                            syntax_error_code=13)  # 0085: Missing
    return value


def _goods_item(segments: list[Segment], mark: str) -> GoodsItem:
    cst, rest = segments[0], segments[1:]
    level: Level = split_level(rest, GOODS_ITEM_GROUPS)
    measurements = tuple(read.measurement(s, mark) for s in level.all("MEA"))
    locations = tuple(read.location(s) for s in level.all("LOC"))
    return GoodsItem(
        item_number=read.optional(cst.value(1)),
        commodity_code=read.optional(cst.value(2, 1)),
        description=_description(level.all("FTX")),
        country_of_origin=next((loc.code for loc in locations if loc.qualifier == ORIGIN), None),
        gross_weight=next((m for m in measurements if m.dimension in GROSS_WEIGHTS), None),
        net_weight=next((m for m in measurements if m.dimension in NET_WEIGHTS), None),
        measurements=measurements,
        amounts=tuple(read.amount(s, mark) for s in level.triggers("MOA")),
        locations=locations,
        parties=tuple(read.party(s) for s in level.all("NAD")),
        documents=tuple(read.document(s) for s in level.triggers("DOC")),
        references=tuple(read.reference(s) for s in level.triggers("RFF")),
    )


def _description(free_texts: list[Segment]) -> str | None:
    """FTX+AAA: C108 holds up to five lines of text (4440)."""
    lines = [
        " ".join(c for c in occurrence if c)
        for ftx in free_texts
        if ftx.value(1) == GOODS_DESCRIPTION
        for occurrence in ftx.occurrences(4)
    ]
    return " ".join(line for line in lines if line) or None
