"""Build COARRI and CODECO interchanges (container events) for tests: one event for every
container named, at one node, at one time (DTM 2379 format 304, in UTC)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tests.support.edifact import interchange

#: BGM C002 1001 as the SMDG manuals use it (mappings/edifact/coarri-d96b.yaml's table).
EVENTS = {"discharged": ("COARRI", "44"), "loaded": ("COARRI", "46"),
          "gate_in": ("CODECO", "34"), "gate_out": ("CODECO", "36")}


def container_event(event: str, containers: Sequence[str], at: dt.datetime, *,
                    node: str = "TWKHH", reference: str = "EV-1",
                    message_reference: str = "1") -> list[str]:
    message_type, code = EVENTS[event]
    stamp = at.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S") + "UTC"
    body = [f"BGM+{code}+{reference}+9", f"DTM+137:{stamp}:304", "TDT+20+031W+1++EVE:172:20",
            f"LOC+165+{node}:139:6", "NAD+CF+EVE:160:20"]
    for number in containers:
        body += [f"EQD+CN+{number}+45G1:102:5++2+5", f"DTM+7:{stamp}:304"]
    body.append(f"CNT+16:{len(containers)}")
    return [f"UNH+{message_reference}+{message_type}:D:96B:UN", *body,
            f"UNT+{len(body) + 2}+{message_reference}"]


def container_events(event: str, containers: Sequence[str], at: dt.datetime, *,
                     control_reference: str, sender: str = "VANA",
                     node: str = "TWKHH") -> bytes:
    return interchange([container_event(event, containers, at, node=node,
                                        reference=control_reference)],
                       sender=sender, control_reference=control_reference)
