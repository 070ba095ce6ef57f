"""Build CUSDEC interchanges for tests (there are no public CUSDEC files: DESIGN.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
EDIFACT_CORPUS = CORPUS / "edifact"


def cusdec_message(
    reference: str = "1",
    commodity_codes: Sequence[str] = ("0303.55",),
    *,
    release: str = "96B",
    declaration: str = "DEC-1",
    function: str = "9",
    unt_count: int | None = None,
    extra_heading: Sequence[str] = (),
    parties: Sequence[str] = (),
    licences: Sequence[str] = (),
    weight: str = "1250.5",
    date: str = "20261122",
) -> list[str]:
    """``parties``: more heading NADs (e.g. "IM+IMP001::ZZZ", the importer); ``licences``: a
    licence each goods item cites, as SG37 DOC 1001+1004 (e.g. "911+LIC-1": UNTDID 1001 911
    import licence, 811 export licence); ``weight``: each goods item's gross weight in KGM;
    ``date``: the document date (DTM 137), none when empty."""
    body = [
        f"BGM+929+{declaration}+{function}",
        "LOC+22+TWKHH:139:6",
        *([f"DTM+137:{date}:102"] if date else []),
        *extra_heading,
        "NAD+DT+12345678::ZZZ++Formosa Trading Co.+12 Harbour Road+Kaohsiung++80201+TW",
        *(f"NAD+{party}" for party in parties),
        "UNS+D",
    ]
    for number, code in enumerate(commodity_codes, start=1):
        body += [
            f"CST+{number}+{code}",
            f"FTX+AAA+++Goods item {number}?: described?, with release characters",
            "LOC+27+NO",
            f"MEA+WT+AAD+KGM:{weight}",
            "MOA+40:1000:USD",
            *(f"DOC+{licence}" for licence in licences),
        ]
    body.append("UNS+S")
    count = unt_count if unt_count is not None else len(body) + 2
    return [f"UNH+{reference}+CUSDEC:D:{release}:UN", *body, f"UNT+{count}+{reference}"]


def interchange(
    messages: Sequence[list[str]],
    *,
    control_reference: str = "ICR0001",
    sender: str = "DEMOVAN",
    recipient: str = "SWGATEWAY",
    syntax: str = "UNOC:3",
    unz_count: int | None = None,
    unz_reference: str | None = None,
    una: bool = True,
) -> bytes:
    # ISO 9735: the date of preparation is CCYYMMDD in syntax 4, YYMMDD before
    date = "20261122" if syntax.endswith(":4") else "261122"
    segments = [f"UNB+{syntax}+{sender}:ZZZ+{recipient}:ZZZ+{date}:0930+{control_reference}"]
    for message in messages:
        segments += message
    count = unz_count if unz_count is not None else len(messages)
    segments.append(f"UNZ+{count}+{unz_reference or control_reference}")
    head = "UNA:+.? '\n" if una else ""
    return (head + "".join(s + "'\n" for s in segments)).encode("latin-1")


def cusdec(commodity_codes: Sequence[str] = ("0303.55",), **envelope: object) -> bytes:
    """One CUSDEC D96B in one interchange."""
    return interchange([cusdec_message(commodity_codes=commodity_codes)], **envelope)  # type: ignore[arg-type]
