"""A trader identification written in a message is a claim: the AEO lane applies only when
the trader is registered to the partner that sent it (DESIGN rule 5, issue 9 item 14)."""

from __future__ import annotations

import asyncio
import json

from tests.integration.test_poison import cli
from tests.integration.test_replay import replace_file, table_version
from tests.support.edifact import cusdec
from tests.support.harness import Gateway

#: cusdec() declares trader 12345678 (NAD+DT).
REGISTRY = "id,name,aeo,partners\n12345678,Formosa Trading Co.,true,van-a\n99,Other,no,\n"


async def test_the_aeo_lane_applies_only_for_the_partner_the_trader_is_registered_to(
        gateway: Gateway) -> None:
    registry = gateway.files.root / "traders.csv"
    registry.write_text(REGISTRY)
    code, said = await asyncio.to_thread(cli, gateway, "traders", "import", str(registry))
    assert code == 0 and "2 traders, 1 AEO" in said
    replace_file(gateway.files.root / "routing.yaml",
                 "rules:\n  - name: customs\n    deliver: [customs]\n"
                 "  - name: aeo-fast-lane\n    match: {trusted_trader: true}\n"
                 "    copy_to: [quarantine]\n")
    await table_version(gateway, 2)
    await gateway.upload("van-b", "claimed.edi", cusdec(("8471",), sender="VANB",
                                                        control_reference="CLAIM"))
    await gateway.answers("van-b", "claimed.edi")
    assert await gateway.queue("quarantine", expect=0) == []  # van-b does not act as van-a
    (refused,) = await gateway.fetch(
        "SELECT detail::text FROM events WHERE kind = 'trusted_trader_not_applied'")
    detail = json.loads(refused["detail"])
    assert detail["partner"] == "van-b" and detail["registered_to"] == {"12345678": ["van-a"]}
    (message,) = await gateway.fetch("SELECT rules FROM messages")
    assert list(message["rules"]) == ["customs"]

    await gateway.upload("van-a", "own.edi", cusdec(("8471",), sender="VANA",
                                                    control_reference="OWN"))
    await gateway.answers("van-a", "own.edi")
    (copy,) = await gateway.queue("quarantine", expect=1)
    assert copy.headers["role"] == "copy" and copy.headers["partner"] == "van-a"
    # Agencies are told the AEO status: only where the trader is registered to the partner.
    claimed, own = await gateway.queue("customs", expect=2)
    assert (claimed.headers["partner"], claimed.headers["aeo"]) == ("van-b", False)
    assert (own.headers["partner"], own.headers["aeo"]) == ("van-a", True)
    # The message keeps what its deliveries say (the clearance report reads it there).
    kept = await gateway.fetch("SELECT i.partner_id, m.aeo FROM messages m"
                               " JOIN interchanges i ON i.id = m.interchange_id")
    assert {r["partner_id"]: r["aeo"] for r in kept} == {"van-b": False, "van-a": True}


async def test_an_aeo_row_without_partners_or_with_an_unknown_one_is_refused(
        gateway: Gateway) -> None:
    registry = gateway.files.root / "traders.csv"
    registry.write_text("id,name,aeo,partners\n1,A,true,\n")
    code, said = await asyncio.to_thread(cli, gateway, "traders", "import", str(registry))
    assert code == 2 and "traders.csv:2: column 4 (partners): empty" in said
    registry.write_text("id,name,aeo,partners\n1,A,true,van-a van-z\n")
    code, said = await asyncio.to_thread(cli, gateway, "traders", "import", str(registry))
    assert code == 2 and "partner(s) van-z not in" in said
    registry.write_text("id,name,aeo\n1,A,true\n")
    code, said = await asyncio.to_thread(cli, gateway, "traders", "import", str(registry))
    assert code == 2 and "traders.csv:1: missing column(s) partners" in said
