"""What an unlucky operator does to routing.yaml while the gateway runs: a file written in two
parts, a recursive alias, an alias bomb, a NUL byte, a file that is not UTF-8.  None of it is
ever the table in force, each is refused with its file and line, and the watcher goes on: the
next valid table takes over and routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config.load import parse_routing
from tests.integration.test_reload import (
    MACHINERY_TO_QUARANTINE,
    replace,
    settling_gateway,
    versions,
)
from tests.support.edifact import cusdec
from tests.support.harness import DEMO_AGENCIES, Gateway

#: Long enough that a pause of five polls (1 s at 0.2 s) is far inside it.
SETTLE_SECONDS = 5.0


@pytest.fixture
async def slow_gateway(tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    async for gateway in settling_gateway(tmp_path, monkeypatch, SETTLE_SECONDS):
        yield gateway


async def lathe_goes_to_quarantine(gateway: Gateway, reference: str) -> None:
    """HS 8458 reaches quarantine only under a table with MACHINERY_TO_QUARANTINE."""
    await gateway.upload("van-a", f"{reference}.edi", cusdec(("8458",), sender="VANA",
                                                             control_reference=reference))
    await gateway.answers("van-a", f"{reference}.edi")
    assert len(await gateway.queue("quarantine", expect=1)) == 1


async def test_a_table_written_in_two_parts_is_never_in_force(slow_gateway: Gateway) -> None:
    """The shipped table plus one rule, written in place in two writes with five polls
    between them; the first part alone (the shipped first rule) is a valid table, which the
    old watcher applied at its next poll."""
    gateway = slow_gateway
    routing = gateway.files.root / "routing.yaml"
    whole = routing.read_text() + MACHINERY_TO_QUARANTINE
    cut = whole.index("  - name: quarantine-inspects")
    assert len(parse_routing(whole[:cut], "prefix", DEMO_AGENCIES).rules) == 1
    with routing.open("w") as handle:
        handle.write(whole[:cut])
        handle.flush()
        await asyncio.sleep(1.0)  # five polls at 0.2 s
        handle.write(whole[cut:])
    rows = await versions(gateway, 2)  # the whole table, once it has been quiet for 5 s
    assert [(r["status"], r["body"]) for r in rows[1:]] == [("applied", whole)]
    await lathe_goes_to_quarantine(gateway, "HALF1")


async def test_a_recursive_alias_is_refused_and_the_next_table_applied(
        gateway: Gateway) -> None:
    routing = gateway.files.root / "routing.yaml"
    shipped = routing.read_text()
    replace(routing, "lists:\n  loop: &loop ['01', *loop]\n" + shipped.split("lists:\n")[1])
    rows = await versions(gateway, 2)
    assert rows[1]["status"] == "refused"
    assert "routing.yaml:2:" in str(rows[1]["error"])
    assert "recursive alias" in str(rows[1]["error"])
    replace(routing, shipped + MACHINERY_TO_QUARANTINE)
    rows = await versions(gateway, 3)
    assert rows[2]["status"] == "applied"
    await lathe_goes_to_quarantine(gateway, "LOOP1")


async def test_an_alias_bomb_is_refused_and_the_next_table_applied(gateway: Gateway) -> None:
    routing = gateway.files.root / "routing.yaml"
    shipped = routing.read_text()
    bomb = ["lists:", "  l0: &l0 ['01', '02', '03', '04', '05', '06', '07', '08', '09', '10']"]
    bomb += [f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 7)]
    replace(routing, "\n".join(bomb) + "\nrules:" + shipped.split("rules:")[1])
    rows = await versions(gateway, 2)  # 10**7 values, built whole by the old loader
    assert rows[1]["status"] == "refused" and "alias bomb" in str(rows[1]["error"])
    replace(routing, shipped + MACHINERY_TO_QUARANTINE)
    assert (await versions(gateway, 3))[2]["status"] == "applied"
    await lathe_goes_to_quarantine(gateway, "BOMB1")


async def test_a_nul_byte_is_refused_and_recorded(gateway: Gateway) -> None:
    """YAML refuses the NUL; PostgreSQL then refused to store the refused body, and the
    StoreError stopped the old watcher."""
    routing = gateway.files.root / "routing.yaml"
    shipped = routing.read_text()
    replace(routing, shipped.replace("name: customs-receives", "name: cus\x00toms-receives"))
    rows = await versions(gateway, 2)
    assert rows[1]["status"] == "refused" and "U+0000" in str(rows[1]["error"])
    assert "cus\\x00toms" in str(rows[1]["body"])  # stored, with the NUL made visible
    replace(routing, shipped + MACHINERY_TO_QUARANTINE)
    assert (await versions(gateway, 3))[2]["status"] == "applied"
    await lathe_goes_to_quarantine(gateway, "NUL1")


async def test_a_file_that_is_not_utf8_is_refused_and_watching_goes_on(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """UnicodeDecodeError is no OSError: it crashed the old watcher (restarted by its
    supervisor after a growing pause), and nothing was recorded."""
    caplog.set_level(logging.INFO)
    routing = gateway.files.root / "routing.yaml"
    shipped = routing.read_text()
    replace(routing, shipped.replace("# Who", "# Wh\xf6").encode("latin-1"))
    rows = await versions(gateway, 2)
    assert rows[1]["status"] == "refused"
    assert "routing.yaml:1:5: not UTF-8 (byte 0xf6)" in str(rows[1]["error"])
    replace(routing, shipped + MACHINERY_TO_QUARANTINE)
    assert (await versions(gateway, 3))[2]["status"] == "applied"
    await lathe_goes_to_quarantine(gateway, "UTF1")
    assert not [r for r in caplog.records if r.getMessage() == "worker_crashed"]
