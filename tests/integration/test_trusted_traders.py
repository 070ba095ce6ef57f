"""Trusted traders (issue 15 item 2): only an authorisation that is active, valid on the day
and registered to the submitting partner opens the AEO lane; a suspension applies to the very
next declaration, not after the processor's periodic refresh; agencies are told the verified
programme and tier."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import asyncpg
import pytest

from gateway.app import traders as app_traders
from gateway.store import traders as trader_store
from gateway.store.database import create_pool
from tests.integration.test_poison import cli
from tests.integration.test_replay import replace_file, table_version
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import Gateway, create_database, database_url, drop_database

HEADER = ("id,name,aeo,partners,programme,tier,status,valid_from,valid_until,"
          "mutual_recognition\n")
#: cusdec_message() declares trader 12345678 (NAD+DT).
ACTIVE = HEADER + "12345678,Formosa Trading Co.,true,van-a,AEO-F,2,active,2020-01-01,,US JP\n"
LANE = ("rules:\n  - name: customs\n    deliver: [customs]\n"
        "  - name: aeo-fast-lane\n    match: {trusted_trader: true}\n"
        "    copy_to: [quarantine]\n")


async def _registry(gateway: Gateway, text: str) -> None:
    path = gateway.files.root / "traders.csv"
    path.write_text(text)
    code, said = await asyncio.to_thread(cli, gateway, "traders", "import", str(path))
    assert code == 0, said


async def _declare(gateway: Gateway, number: int, partner: str = "van-a") -> dict[str, Any]:
    """One declaration from ``partner``; the headers of its delivery to customs."""
    name = f"dec{number}.edi"
    sender = {"van-a": "VANA", "van-b": "VANB"}[partner]
    await gateway.upload(partner, name, interchange(
        [cusdec_message(declaration=f"DEC-{number}")], sender=sender,
        control_reference=f"REF{number}"))
    await gateway.answers(partner, name)
    delivered = await gateway.queue("customs", expect=number)
    return dict(delivered[number - 1].headers)


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Reads of the registry from the store, counted; and a periodic refresh too long to
    matter, so that only the version read with the claim can bring a change in."""
    reads: list[int] = []
    real = trader_store.registry

    async def counting(pool: Any) -> Any:
        found = await real(pool)
        reads.append(found.version)
        return found

    monkeypatch.setattr(trader_store, "registry", counting)
    monkeypatch.setattr(app_traders, "REFRESH_SECONDS", 3600.0)
    return reads


async def test_a_suspended_aeo_loses_the_lane_at_once_and_reinstate_restores_it(
        gateway: Gateway, counted_reads: list[int]) -> None:
    await _registry(gateway, ACTIVE)
    replace_file(gateway.files.root / "routing.yaml", LANE)
    await table_version(gateway, 2)

    first = await _declare(gateway, 1)
    assert first["aeo"] is True
    assert (first["aeo_trader"], first["aeo_programme"], first["aeo_tier"],
            first["aeo_status"], first["aeo_mutual_recognition"]) == (
        "12345678", "AEO-F", "2", "active", "US JP")
    assert len(await gateway.queue("quarantine", expect=1)) == 1

    code, said = await asyncio.to_thread(cli, gateway, "traders", "suspend", "12345678",
                                         "--reason", "audit finding 2026-17")
    assert code == 0 and "suspended at" in said, said
    second = await _declare(gateway, 2)  # at once: the refresh is an hour away
    assert second["aeo"] is False and "aeo_programme" not in second
    assert len(await gateway.queue("quarantine", expect=1)) == 1  # no lane copy
    (rules,) = await gateway.fetch("SELECT m.rules, m.aeo FROM messages m"
                                   " WHERE m.document_ref = 'DEC-2'")
    assert list(rules["rules"]) == ["customs"] and rules["aeo"] is False
    (why,) = await gateway.fetch("SELECT detail::text FROM events"
                                 " WHERE kind = 'trusted_trader_not_applied'")
    lapsed = json.loads(why["detail"])["lapsed"]
    assert lapsed["12345678"].endswith(": audit finding 2026-17")
    (audit,) = await gateway.fetch("SELECT kind, by_whom, reason, at FROM trader_events")
    assert (audit["kind"], audit["reason"]) == ("suspended", "audit finding 2026-17")
    assert audit["by_whom"] and audit["at"] is not None

    # Importing the programme's file again does not lift ops' suspension ...
    await _registry(gateway, ACTIVE)
    assert (await _declare(gateway, 3))["aeo"] is False
    # ... reinstating does, at once too.
    code, said = await asyncio.to_thread(cli, gateway, "traders", "reinstate", "12345678")
    assert code == 0 and "reinstated" in said and "still not trusted" not in said, said
    fourth = await _declare(gateway, 4)
    assert fourth["aeo"] is True and fourth["aeo_programme"] == "AEO-F"
    assert len(await gateway.queue("quarantine", expect=2)) == 2
    kinds = await gateway.fetch("SELECT kind FROM trader_events ORDER BY id")
    assert [k["kind"] for k in kinds] == ["suspended", "reinstated"]
    # The registry was read once per version the claims saw (the first read, the suspension,
    # the import, the reinstatement), not once per submission.
    assert len(counted_reads) == len(set(counted_reads)) <= 4, counted_reads


async def test_an_expired_revoked_or_other_partners_aeo_is_not_trusted(
        gateway: Gateway, counted_reads: list[int]) -> None:
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    await _registry(gateway, HEADER + f"12345678,F,true,van-a,AEO-S,1,,2020-01-01,{yesterday},\n")
    replace_file(gateway.files.root / "routing.yaml", LANE)
    await table_version(gateway, 2)
    assert (await _declare(gateway, 1))["aeo"] is False
    (why,) = await gateway.fetch("SELECT detail::text FROM events"
                                 " WHERE kind = 'trusted_trader_not_applied'")
    assert json.loads(why["detail"])["lapsed"] == {"12345678": f"expired on {yesterday}"}

    await _registry(gateway, HEADER + "12345678,F,true,van-a,C-TPAT,Tier III,revoked,,,\n")
    assert (await _declare(gateway, 2))["aeo"] is False
    await _registry(gateway, HEADER + "12345678,F,true,van-a,C-TPAT,Tier III,active,,,\n")
    assert (await _declare(gateway, 3, partner="van-b"))["aeo"] is False  # not van-b's
    third = await _declare(gateway, 4)
    assert (third["aeo"], third["aeo_programme"], third["aeo_tier"],
            third["aeo_valid_until"]) == (True, "C-TPAT", "Tier III", "")
    assert len(await gateway.queue("quarantine", expect=1)) == 1


async def test_import_errors_name_file_line_and_column_and_suspend_needs_a_known_id(
        gateway: Gateway) -> None:
    path = gateway.files.root / "traders.csv"
    path.write_text(HEADER + "1,A,true,van-a,AEO-F,,,,,\n2,B,true,van-a,AEO-F,,,,2026-13-01,\n")
    code, said = await asyncio.to_thread(cli, gateway, "traders", "import", str(path))
    assert code == 2 and "traders.csv:3: column 9 (valid_until): '2026-13-01' is not a date" \
        in said, said
    assert await gateway.fetch("SELECT id FROM traders") == []  # nothing half imported
    code, said = await asyncio.to_thread(cli, gateway, "traders", "suspend", "404",
                                         "--reason", "x")
    assert code == 1 and "not in the registry" in said
    assert await gateway.fetch("SELECT id FROM trader_events") == []


async def test_a_console_release_after_a_suspension_tells_customs_no_aeo(
        gateway: Gateway, counted_reads: list[int]) -> None:
    import asyncpg

    from gateway.app.console_operations import ConsoleOperations
    from tests.support.harness import database_url

    await _registry(gateway, ACTIVE)
    replace_file(gateway.files.root / "routing.yaml",
                 "rules:\n  - name: customs\n    deliver: [customs]\n"
                 "  - name: hold-all\n    match: {kind: CustomsDeclaration}\n    hold: true\n")
    await table_version(gateway, 2)
    for number in (1, 2):
        name = f"held{number}.edi"
        await gateway.upload("van-a", name, interchange(
            [cusdec_message(declaration=f"HELD-{number}")], sender="VANA",
            control_reference=f"HELD{number}"))
        await gateway.answers("van-a", name)
    held = {r["document_ref"]: r["id"] for r in await gateway.fetch(
        "SELECT id, document_ref FROM messages WHERE status = 'held'")}
    assert gateway.config is not None
    pool = await asyncpg.create_pool(database_url(gateway.files.database), min_size=1,
                                     max_size=3)
    try:
        operations = ConsoleOperations(gateway.config, pool)

        async def release(document: str) -> None:
            async with pool.acquire() as connection, connection.transaction():
                assert (await operations.release(connection, held[document])).changed

        await release("HELD-1")
        (first,) = await gateway.queue("customs", expect=1)
        assert first.headers["aeo"] is True and first.headers["aeo_programme"] == "AEO-F"
        code, said = await asyncio.to_thread(cli, gateway, "traders", "suspend", "12345678",
                                             "--reason", "seal tampering")
        assert code == 0, said
        await release("HELD-2")  # within the 10 s (here: an hour) of the snapshot
        _, second = await gateway.queue("customs", expect=2)
        assert second.headers["aeo"] is False and "aeo_programme" not in second.headers
    finally:
        await pool.close()


@pytest.fixture
async def two_workers(tmp_path: Any) -> Any:
    from tests.support.harness import gateway_fixture

    async for gateway in gateway_fixture(tmp_path, workers=2):
        yield gateway


async def test_worker_processes_see_a_suspension_at_once(two_workers: Gateway) -> None:
    """``serve --workers 2``: each worker process keeps its own snapshot (refreshed every
    10 s); the version read with its claim brings the suspension in before that."""
    gateway = two_workers
    await _registry(gateway, ACTIVE)
    replace_file(gateway.files.root / "routing.yaml", LANE)
    await table_version(gateway, 2)
    before = [await _declare(gateway, n) for n in range(1, 7)]  # snapshots in every process
    assert all(h["aeo"] is True for h in before)
    code, said = await asyncio.to_thread(cli, gateway, "traders", "suspend", "12345678",
                                         "--reason", "audit")
    assert code == 0, said
    after = [await _declare(gateway, n) for n in range(7, 13)]  # within the 10 s refresh
    assert [h["aeo"] for h in after] == [False] * 6


async def test_a_suspension_committed_while_a_decision_is_made_is_in_that_decision(
        gateway: Gateway) -> None:
    """The window the claim's version left open: a declaration claimed (and its pipeline
    run) before a suspension commits was decided with the lane.  The decision now holds the
    registry's version row FOR SHARE: the suspension, holding it FOR UPDATE here, makes the
    decision wait, and once it commits the decision is made again without the lane."""
    await _registry(gateway, ACTIVE)
    replace_file(gateway.files.root / "routing.yaml", LANE)
    await table_version(gateway, 2)
    suspension = await asyncpg.connect(database_url(gateway.files.database))
    try:
        held = suspension.transaction()
        await held.start()
        await suspension.execute("SELECT 1 FROM trader_registry_version FOR UPDATE")
        await gateway.upload("van-a", "dec1.edi", interchange(
            [cusdec_message(declaration="DEC-1")], sender="VANA", control_reference="REF1"))
        for _ in range(400):  # the decision waits for the suspension, never decides before it
            waiting = await suspension.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'")
            decided = await suspension.fetchval(
                "SELECT count(*) FROM interchanges WHERE status <> 'received'")
            assert decided == 0, "decided while a suspension was being committed"
            if waiting:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no decision waited for the registry's version")
        await suspension.execute(
            "UPDATE traders SET suspended_at = now(), suspended_by = 'test',"
            " suspension_reason = 'audit' WHERE id = '12345678'")
        await held.commit()
    finally:
        await suspension.close()
    await gateway.answers("van-a", "dec1.edi")
    (delivered,) = await gateway.queue("customs", expect=1)
    assert delivered.headers["aeo"] is False
    (message,) = await gateway.fetch("SELECT aeo FROM messages WHERE document_ref = 'DEC-1'")
    assert message["aeo"] is False


async def test_a_suspension_is_not_starved_by_decisions_that_overlap() -> None:
    """Decisions hold the registry's version shared until they commit (hold_version); under
    load one always does.  A suspension must still get its turn once those in hand commit:
    PostgreSQL lets a new FOR SHARE past a waiting FOR UPDATE, so with six decisions that
    overlap for ever the suspension waited for ever (the deciders below stop only when it is
    through)."""
    database = await create_database()
    pool = await create_pool(database_url(database))
    suspended = asyncio.Event()

    async def deciding(offset: float) -> int:
        await asyncio.sleep(offset)
        decided = 0
        async with pool.acquire() as connection:
            while not suspended.is_set():
                async with connection.transaction():
                    await trader_store.hold_version(connection)
                    await asyncio.sleep(0.06)  # the decision's own work
                decided += 1
        return decided

    deciders = [asyncio.create_task(deciding(n * 0.01)) for n in range(6)]
    try:
        await asyncio.sleep(0.2)  # all six deciding
        assert await asyncio.wait_for(
            trader_store.suspend(pool, "NOBODY", "ops", "test"), 30) is None
        suspended.set()
        assert all(await asyncio.gather(*deciders))
    finally:
        suspended.set()
        await asyncio.gather(*deciders, return_exceptions=True)
        await pool.close()
        await drop_database(database)
