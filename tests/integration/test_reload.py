"""Routing tables change without a restart: a valid table takes over between two messages, an
invalid one is refused and the old one keeps routing; every version is kept.

The tests change routing.yaml and agencies.yaml the way ops tools do, atomically (a temporary
file renamed over the old one): a file rewritten in place while it is watched could be seen
half written, and a test could pass on a half table (test_reload_hostile.py shows that the
watcher never takes one)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import harness
from tests.support.edifact import cusdec
from tests.support.harness import Gateway

MACHINERY_TO_QUARANTINE = """
  - name: quarantine-inspects-used-machinery
    match:
      hs_chapters: ["84"]
    deliver: [quarantine]
"""


def replace(path: Path, text: str | bytes) -> None:
    """Write ``path`` atomically: a temporary file beside it, renamed over it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(temporary, path)


async def settling_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           settle: float) -> AsyncIterator[Gateway]:
    """The harness's gateway with ``routing_settle_seconds: settle`` in its gateway.yaml."""
    write_files = harness.write_files

    def with_settle(root: Path, database: str, **options: Any) -> harness.Files:
        files = write_files(root, database, **options)
        files.config_path.write_text(files.config_path.read_text()
                                     + f"routing_settle_seconds: {settle}\n")
        return files

    monkeypatch.setattr(harness, "write_files", with_settle)
    async for gateway in harness.gateway_fixture(tmp_path):
        yield gateway


@pytest.fixture
async def quick_gateway(tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    """Tables take over 0.3 s after they are written (rather than 2 s)."""
    async for gateway in settling_gateway(tmp_path, monkeypatch, 0.3):
        yield gateway


async def versions(gateway: Gateway, count: int) -> list[dict[str, object]]:
    for _ in range(300):
        rows = [dict(r) for r in await gateway.fetch(
            "SELECT id, status, error, source, body FROM routing_versions ORDER BY id")]
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} routing versions, have {rows}")


async def test_a_valid_table_takes_over_without_a_restart(gateway: Gateway) -> None:
    await gateway.upload("van-a", "one.edi", cusdec(("8458",), sender="VANA",
                                                    control_reference="R1"))
    await gateway.answers("van-a", "one.edi")
    assert len(await gateway.queue("customs", expect=1)) == 1
    assert await gateway.queue("quarantine", expect=0) == []
    routing = gateway.files.root / "routing.yaml"
    replace(routing, routing.read_text() + MACHINERY_TO_QUARANTINE)
    rows = await versions(gateway, 2)
    assert [r["status"] for r in rows] == ["applied", "applied"]
    assert "file changed" in str(rows[1]["source"])
    await gateway.upload("van-a", "two.edi", cusdec(("8458",), sender="VANA",
                                                    control_reference="R2"))
    await gateway.answers("van-a", "two.edi")
    assert len(await gateway.queue("quarantine", expect=1)) == 1
    used = [r["routing_version"] for r in await gateway.fetch(
        "SELECT routing_version FROM messages ORDER BY id")]
    assert used == [rows[0]["id"], rows[1]["id"]]


async def test_an_invalid_table_is_refused_and_the_old_one_keeps_routing(
        gateway: Gateway) -> None:
    routing = gateway.files.root / "routing.yaml"
    replace(routing, routing.read_text().replace("deliver: [customs]",
                                                 "deliver: [customs, pest-control]"))
    rows = await versions(gateway, 2)
    assert rows[1]["status"] == "refused"
    assert "routing.yaml:" in str(rows[1]["error"])
    assert "unknown agency 'pest-control'" in str(rows[1]["error"])
    await gateway.upload("van-a", "fish.edi", cusdec(("0303",), sender="VANA"))
    await gateway.answers("van-a", "fish.edi")
    assert len(await gateway.queue("customs", expect=1)) == 1
    assert len(await gateway.queue("quarantine", expect=1)) == 1
    (used,) = [r["routing_version"] for r in await gateway.fetch(
        "SELECT routing_version FROM messages")]
    assert used == rows[0]["id"]


async def test_routes_diff_replays_stored_messages(gateway: Gateway) -> None:
    import contextlib
    import io

    from gateway.cli import main
    from tests.support.edifact import cusdec_message, interchange

    fish = interchange([cusdec_message(declaration="FISH-1", commodity_codes=("0303",))],
                       sender="VANA", control_reference="F1")
    lathe = interchange([cusdec_message(declaration="LATHE-1", commodity_codes=("8458",))],
                        sender="VANA", control_reference="L1")
    for name, data in (("fish.edi", fish), ("lathe.edi", lathe)):
        await gateway.upload("van-a", name, data)
        await gateway.answers("van-a", name)
    old = gateway.files.root / "routing.yaml"
    new = gateway.files.root / "proposed.yaml"
    new.write_text(old.read_text().replace('quarantine_hs_chapters: ["01-24"]',
                                           'quarantine_hs_chapters: ["01-24", "84"]'))

    def run(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["--config", str(gateway.files.config_path), "routes", "diff", *args])
        return code, out.getvalue()

    code, text = await asyncio.to_thread(run, str(old), str(new))
    assert code == 1
    assert "replayed 2 messages" in text and "+quarantine: 1 message (LATHE-1)" in text
    code, text = await asyncio.to_thread(run, str(old), str(old))
    assert code == 0 and "no agency would receive anything different" in text


async def test_an_unroutable_message_is_parked_and_tracked(gateway: Gateway) -> None:
    import contextlib
    import io
    import json

    from gateway.cli import main

    routing = gateway.files.root / "routing.yaml"
    replace(routing, "lists: {food: ['01-24']}\nrules:\n  - name: food-only\n"
                     "    match: {hs_chapters: '@food'}\n    deliver: [quarantine]\n")
    await versions(gateway, 2)
    await gateway.upload("van-a", "lathe.edi", cusdec(("8458",), sender="VANA",
                                                      control_reference="PARK1"))
    (answer,) = await gateway.answers("van-a", "lathe.edi")
    assert b"UCM+1+CUSDEC:D:96B:UN+7'" in answer  # the partner's message is fine: ours to route
    assert await gateway.queue("customs", expect=0) == []
    assert await gateway.queue("quarantine", expect=0) == []
    (row,) = await gateway.fetch("SELECT status FROM messages")
    assert row["status"] == "unroutable"

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = await asyncio.to_thread(
            main, ["--config", str(gateway.files.config_path), "track", "--json", "PARK1"])
    assert code == 0
    kinds = [json.loads(line)["kind"] for line in out.getvalue().splitlines()]
    assert "message_unroutable" in kinds and "delivered" not in kinds


async def test_held_messages_wait_for_ops_and_copies_reach_observers(gateway: Gateway) -> None:
    import contextlib
    import io

    from gateway.cli import main
    from tests.support.edifact import cusdec_message, interchange

    routing = gateway.files.root / "routing.yaml"
    replace(
        routing,
        "rules:\n  - name: customs\n    deliver: [customs]\n"
        "  - name: quarantine-watches\n    match: {hs_chapters: ['03']}\n"
        "    copy_to: [quarantine]\n"
        "  - name: hold-large\n    match:\n"
        "      customs_value_at_least: {amount: 50000, currency: USD}\n    hold: true\n")
    await versions(gateway, 2)
    fish = interchange([cusdec_message(declaration="FISH-9", commodity_codes=("0303",))],
                       sender="VANA", control_reference="C1")
    await gateway.upload("van-a", "fish.edi", fish)
    await gateway.answers("van-a", "fish.edi")
    (copy,) = await gateway.queue("quarantine", expect=1)
    assert copy.headers["role"] == "copy"
    (acting,) = await gateway.queue("customs", expect=1)
    assert acting.headers["role"] == "deliver"

    big = interchange([[s.replace("MOA+40:1000:USD", "MOA+40:90000:USD") for s in
                        cusdec_message(declaration="BIG-1", commodity_codes=("8471",))]],
                      sender="VANA", control_reference="C2")
    await gateway.upload("van-a", "big.edi", big)
    await gateway.answers("van-a", "big.edi")
    assert len(await gateway.queue("customs", expect=1, settle=1.0)) == 1  # the fish only
    (row,) = await gateway.fetch("SELECT status FROM messages WHERE document_ref = 'BIG-1'")
    assert row["status"] == "held"

    def release(reference: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["--config", str(gateway.files.config_path), "release", reference])
        return code, out.getvalue()

    code, text = await asyncio.to_thread(release, "BIG-1")
    assert code == 0 and "(BIG-1) to customs" in text
    assert len(await gateway.queue("customs", expect=2)) == 2  # released and delivered
    code, text = await asyncio.to_thread(release, "BIG-1")
    assert code == 1 and "nothing held" in text  # released once


async def test_a_new_agency_gets_its_queue_on_reload(gateway: Gateway) -> None:
    agencies = gateway.files.root / "agencies.yaml"
    replace(agencies, agencies.read_text() + "  - code: licensing\n    name: Licensing\n")
    routing = gateway.files.root / "routing.yaml"
    replace(routing, routing.read_text() + "\n  - name: licensing-sees-all\n"
            "    deliver: [licensing]\n")
    try:
        for _ in range(100):
            applied = await gateway.fetch("SELECT body FROM routing_versions"
                                          " WHERE status = 'applied' ORDER BY id")
            if "licensing" in applied[-1]["body"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the table naming the new agency was not applied")
        await gateway.upload("van-a", "decl.edi", cusdec(("8471",), sender="VANA"))
        await gateway.answers("van-a", "decl.edi")
        assert len(await gateway.queue("licensing", expect=1)) == 1
    finally:
        from tests.support.harness import delete_topology

        await delete_topology(gateway.files, ("licensing",))


async def test_the_trader_registry_decides_trusted_trader_rules(gateway: Gateway) -> None:
    import contextlib
    import io

    from gateway.cli import main

    registry = gateway.files.root / "traders.csv"
    registry.write_text("id,name,aeo,partners\n12345678,Formosa Trading Co.,true,van-a\n"
                        "99,Other,no,\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = await asyncio.to_thread(
            main, ["--config", str(gateway.files.config_path), "traders", "import",
                   str(registry)])
    assert code == 0 and "2 traders, 1 AEO" in out.getvalue()
    routing = gateway.files.root / "routing.yaml"
    replace(routing, "rules:\n  - name: customs\n    deliver: [customs]\n"
                     "  - name: aeo-fast-lane-notice\n    match: {trusted_trader: true}\n"
                     "    copy_to: [quarantine]\n")
    await versions(gateway, 2)
    await gateway.upload("van-a", "decl.edi", cusdec(("8471",), sender="VANA"))
    await gateway.answers("van-a", "decl.edi")
    (copy,) = await gateway.queue("quarantine", expect=1)
    assert copy.headers["role"] == "copy"

    bad = gateway.files.root / "bad.csv"
    bad.write_text("id,name,aeo,partners\n1,A,maybe,van-a\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = await asyncio.to_thread(
            main, ["--config", str(gateway.files.config_path), "traders", "import", str(bad)])
    assert code == 2 and "bad.csv:2: column 3 (aeo): 'maybe' is not true or false" in err.getvalue()


async def test_fan_out_to_three_agencies_and_the_cancellation_follows(gateway: Gateway) -> None:
    from tests.support.edifact import cusdec_message, interchange

    agencies = gateway.files.root / "agencies.yaml"
    replace(agencies, agencies.read_text() + "  - code: licensing\n    name: Licensing\n")
    routing = gateway.files.root / "routing.yaml"
    replace(
        routing,
        "rules:\n  - name: customs\n    deliver: [customs]\n"
        "  - name: food\n    match: {hs_chapters: ['01-24']}\n    deliver: [quarantine]\n"
        "  - name: norway\n    match: {origin_countries: [NO]}\n    deliver: [licensing]\n"
        "    priority: 7\n")
    try:
        for _ in range(100):
            applied = await gateway.fetch("SELECT body FROM routing_versions"
                                          " WHERE status = 'applied' ORDER BY id")
            if "norway" in applied[-1]["body"]:
                break
            await asyncio.sleep(0.1)
        original = interchange([cusdec_message(declaration="DEC-77",
                                               commodity_codes=("0303",))],
                               sender="VANA", control_reference="O1")
        await gateway.upload("van-a", "original.edi", original)
        await gateway.answers("van-a", "original.edi")
        for agency in ("customs", "quarantine", "licensing"):
            (delivery,) = await gateway.queue(agency, expect=1)
            assert delivery.priority == 7  # the highest priority of the matching rules
        # The cancellation speaks of machinery from Germany, but goes where the original went.
        cancel = [s.replace("BGM+929+DEC-77+9", "BGM+929+DEC-77+1").replace("LOC+27+NO",
                                                                          "LOC+27+DE")
                  for s in cusdec_message(declaration="DEC-77", commodity_codes=("8471",))]
        await gateway.upload("van-a", "cancel.edi",
                             interchange([cancel], sender="VANA", control_reference="O2"))
        await gateway.answers("van-a", "cancel.edi")
        for agency in ("customs", "quarantine", "licensing"):
            assert len(await gateway.queue(agency, expect=2, settle=0.5)) == 2
        rules = await gateway.fetch("SELECT rules FROM messages ORDER BY id")
        assert "(follows the original's route)" in rules[-1]["rules"]
    finally:
        from tests.support.harness import delete_topology

        await delete_topology(gateway.files, ("licensing",))


async def test_a_reload_during_steady_traffic_loses_and_doubles_nothing(
        quick_gateway: Gateway) -> None:
    gateway = quick_gateway
    from tests.support.edifact import cusdec_message, interchange

    routing = gateway.files.root / "routing.yaml"
    tables = [
        "rules:\n  - name: customs\n    deliver: [customs]\n",
        "rules:\n  - name: customs\n    deliver: [customs]\n"
        "  - name: all-to-quarantine\n    deliver: [quarantine]\n",
    ]

    async def traffic() -> None:
        for n in range(12):
            data = interchange([cusdec_message(declaration=f"T-{n}",
                                               commodity_codes=("8471",))],
                               sender="VANA", control_reference=f"T{n}")
            await gateway.upload("van-a", f"t{n}.edi", data)
            await asyncio.sleep(0.25)

    async def reloads() -> None:
        for n in range(6):
            replace(routing, tables[n % 2])
            await asyncio.sleep(0.6)  # each table is quiet long enough (0.3 s) to take over

    await asyncio.gather(traffic(), reloads())
    for n in range(12):
        await gateway.answers("van-a", f"t{n}.edi")
    rows = await gateway.fetch("SELECT document_ref, agencies FROM messages ORDER BY id")
    assert sorted(r["document_ref"] for r in rows) == sorted(f"T-{n}" for n in range(12))
    expected = {a: sum(a in r["agencies"] for r in rows) for a in ("customs", "quarantine")}
    assert expected["customs"] == 12
    for agency, count in expected.items():
        received = await gateway.queue(agency, expect=count, settle=1.0)
        assert len(received) == count
        assert len({m.message_id for m in received}) == count  # nothing doubled
