"""Several gateway nodes on one database (issue 16): one leads routing and judges its own
routing.yaml; the others route with the table it applied, whatever their own file says, and
take the lead when the leader goes (its lock connection closed or broken)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app.routing_lead import RoutingLead
from gateway.config.load import load_config
from gateway.errors import ConfigError
from gateway.store.database import create_pool
from tests.support.harness import create_database, database_url, drop_database, write_files
from tests.support.proxy import TcpProxy

INTERVAL = 0.1
ONLY_CUSTOMS = "rules:\n  - name: customs\n    deliver: [customs]\n"
ONLY_PORT = "rules:\n  - name: port\n    deliver: [port]\n"


@contextlib.asynccontextmanager
async def nodes(tmp_path: Path, lock_port: dict[str, int] | None = None
                ) -> AsyncIterator[tuple[Any, RoutingLead, RoutingLead]]:
    """Two nodes on one database, each with its own folder and routing.yaml (customs only on
    the first, port only on the second).  ``lock_port``: a node's own connections (its lead
    lock's) to that port instead of PostgreSQL's (a proxy); the pool is shared."""
    database = await create_database()
    leads: list[RoutingLead] = []
    pool = await create_pool(database_url(database))
    try:
        for name, table in (("a", ONLY_CUSTOMS), ("b", ONLY_PORT)):
            (tmp_path / name).mkdir()
            port = (lock_port or {}).get(name)
            files = write_files(tmp_path / name, database, reload_seconds=INTERVAL,
                                settings={"routing_settle_seconds": INTERVAL},
                                database_url_override=None if port is None else database_url(
                                    database).replace("127.0.0.1:5432", f"127.0.0.1:{port}"))
            (files.root / "routing.yaml").write_text(table)
            leads.append(RoutingLead(load_config(files.config_path, environ={}), pool))
        yield pool, leads[0], leads[1]
    finally:
        for lead in leads:
            await lead.close()
        await pool.close()
        await drop_database(database)


def _delivers(lead: RoutingLead) -> list[str]:
    assert lead.current is not None
    return [agency for rule in lead.current.table.rules for agency in rule.deliver]


async def _until(check: Any, what: str) -> None:
    for _ in range(600):  # 30 s: a busy machine
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def test_one_node_leads_the_other_follows_and_takes_over(tmp_path: Path) -> None:
    async with nodes(tmp_path) as (_pool, a, b):
        first = await a.start()
        second = await b.start()
        assert a.leading and not b.leading
        assert second.version == first.version and _delivers(b) == ["customs"]
        with pytest.raises(ConfigError, match="does not lead routing"):
            b.expect("0" * 64, 1)  # the console approves on the leading node only
        watching = asyncio.create_task(b.watch(asyncio.Event(), INTERVAL))
        try:
            await asyncio.sleep(5 * INTERVAL)
            assert not b.leading and _delivers(b) == ["customs"]  # its own file is not used
            await a.close()  # the leader stops: its lock goes with its session
            await _until(lambda: b.leading, "the second node leads")
            await _until(lambda: _delivers(b) == ["port"], "its own table applied")
            assert b.current is not None and b.current.version > first.version
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching


async def test_a_leader_whose_lock_connection_breaks_stops_leading(tmp_path: Path) -> None:
    async with nodes(tmp_path) as (pool, a, b):
        await a.start()
        await b.start()
        watching = [asyncio.create_task(n.watch(asyncio.Event(), INTERVAL)) for n in (a, b)]
        try:
            # The leader's session ended from the server's side (a network cut, an admin):
            # the lock is gone, so the other node may lead; the old leader must notice.
            killed = await pool.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND objid = 72016 AND granted AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())")  # other tests' gateways lead theirs
            assert killed is True
            await _until(lambda: b.leading, "the second node leads")
            await _until(lambda: not a.leading or not b.leading, "one leader")
            await asyncio.sleep(3 * INTERVAL)
            assert [a.leading, b.leading].count(True) == 1
            leader = b if b.leading else a
            follower = a if leader is b else b
            await _until(lambda: follower.current is not None and leader.current is not None
                         and follower.current.version == leader.current.version,
                         "both route with the leader's table")
        finally:
            for task in watching:
                task.cancel()
            await asyncio.gather(*watching, return_exceptions=True)


async def test_a_node_taking_the_lead_routes_with_a_table_all_along(tmp_path: Path) -> None:
    """While the new leader judges its own file (two looks apart: the file is new), the
    processor must still find a table in force: the one it followed, until its own applies.
    Every turn of the event loop looks (the processor reads ``current`` on any of them)."""
    async with nodes(tmp_path) as (_pool, a, b):
        await a.start()
        await b.start()
        (tmp_path / "b" / "routing.yaml").write_text(ONLY_PORT + "# fresh\n")
        watching = asyncio.create_task(b.watch(asyncio.Event(), INTERVAL))
        seen: list[list[str] | None] = []
        try:
            await a.close()
            while not seen or seen[-1] != ["port"]:
                current = b.current
                seen.append(None if current is None else
                            [agency for rule in current.table.rules for agency in rule.deliver])
                assert len(seen) < 10_000_000, "never: its own table applied"
                await asyncio.sleep(0)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    assert None not in seen, "the table in force was None while the new leader judged its file"
    assert {" ".join(table or ()) for table in seen} == {"customs", "port"}


async def test_a_leader_losing_its_lock_routes_with_a_table_all_along(tmp_path: Path) -> None:
    """A node that led from its start never followed: when its lock session goes, it routes
    with the table it applied until it reads the one in force (never with none)."""
    async with nodes(tmp_path) as (pool, a, _b):
        await a.start()
        watching = asyncio.create_task(a.watch(asyncio.Event(), INTERVAL))
        seen: list[bool] = []  # whether a table was in force, at every turn of the loop
        try:
            assert await pool.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND objid = 72016 AND granted") is True
            lost = False
            while not (lost and a.leading):  # the lead lost, then taken again
                lost |= not a.leading
                seen.append(a.current is not None)
                assert len(seen) < 10_000_000, "never: the lead lost and taken again"
                await asyncio.sleep(0)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    assert all(seen), "no table in force after the lead was lost"


async def test_a_follower_whose_lock_link_goes_silent_still_takes_the_lead(
        tmp_path: Path) -> None:
    """The second node's own lock connection passes through a link that goes silent (no
    reset, no answer: the kernel would wait minutes): its next try for the lead must give up
    that connection and open another, not wait on it for ever (nor stop following)."""
    link = await TcpProxy("127.0.0.1", 5432).start()
    try:
        async with nodes(tmp_path, lock_port={"b": link.port}) as (_pool, a, b):
            await a.start()
            await b.start()
            link.freeze()
            watching = asyncio.create_task(b.watch(asyncio.Event(), INTERVAL))
            try:
                await asyncio.sleep(3 * INTERVAL)
                await a.close()
                await _until(lambda: b.leading, "the second node leads")
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
    finally:
        await link.close()
