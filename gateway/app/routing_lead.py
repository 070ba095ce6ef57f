"""Which gateway node judges ``routing.yaml`` when several serve one database (issue 16).

Every node's main process used to watch its own ``routing.yaml`` and apply what it found: two
nodes whose files differed (a ConfigMap reaching the pods a minute apart, an operator editing
one machine) routed with different tables for as long as that lasted.  Now one node leads: the
one holding PostgreSQL's session advisory lock ``LEAD_LOCK`` on a connection of its own (not a
pooled one: the pool keeps no session state).  The leader judges its file as before
(routing_reload.LiveRouting); every other node follows the table the leader applied, from the
database, as a worker process does (routing_follow.FollowedRouting), looking every
``routing_reload_seconds`` and trying for the lead at each look.  When the leader dies its
connection goes, PostgreSQL releases the lock, and the next node to look takes the lead and
judges its own file (the same file, on a sound deployment).  A leader that finds its lock
connection broken stops leading at once: two nodes never apply their own files for longer
than one look.  A single node always leads: it behaves as before.

The console's routing desk writes an approved table into the leader's file; on a node that
does not lead it says so (ConfigError), and the operator approves on the leading node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from gateway.app.routing_follow import FollowedRouting
from gateway.app.routing_reload import LiveRouting, NewAgencies, TableInForce
from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError, StoreError
from gateway.logs import event
from gateway.store.database import connect, translated_errors

log = logging.getLogger("gateway.routing")
#: The advisory lock key of the routing lead (0x5257 'RW' routing watcher, beside the port
#: alarms' transaction lock 72017).
LEAD_LOCK = 72016


class RoutingLead:
    """The routing table in force on this node, led or followed (module doc)."""

    def __init__(self, config: GatewayConfig, pool: Any,
                 on_new_agencies: NewAgencies | None = None) -> None:
        self._url = config.database_url
        self._live = LiveRouting(config, pool, on_new_agencies=on_new_agencies)
        self._follower = FollowedRouting(config, pool, on_new_agencies=on_new_agencies)
        self._interval = config.settings.routing_reload_seconds
        self._lock: Any = None  # the connection holding LEAD_LOCK while we lead
        self.leading = False

    @property
    def current(self) -> TableInForce | None:
        return (self._live if self.leading else self._follower).current

    def expect(self, sha256: str, proposal: int) -> asyncio.Future[int | None]:
        """routing_reload.LiveRouting.expect, on the leading node only."""
        if not self.leading:
            raise ConfigError("this gateway node does not lead routing: another node judges "
                              "its routing.yaml; approve the change on the leading node (its "
                              "log says routing_leading)")
        return self._live.expect(sha256, proposal)

    async def start(self) -> TableInForce:
        """Lead (judge our file) when no other node does; else the table the leader applied,
        waiting for it while a leader is still starting.  Failing, it holds no connection."""
        try:
            return await self._start()
        except BaseException:
            await self._give_up_lead()
            raise

    async def _start(self) -> TableInForce:
        while True:
            if await self._take_lead():
                table = await self._live.start()
                self.leading = True
                return table
            if await self._follower.step() or self._follower.current is not None:
                assert self._follower.current is not None
                event(log, "routing_following", version=self._follower.current.version,
                      note="another gateway node leads routing: its table is in force here")
                return self._follower.current
            await asyncio.sleep(self._interval)

    async def watch(self, hangup: asyncio.Event, interval: float) -> None:
        """For ever: lead while the lock holds, else follow and try for the lead."""
        while True:
            if self.leading:
                await self._lead(hangup, interval)
                continue
            await asyncio.sleep(interval)
            try:
                await self._follower.step()
            except Exception as exc:  # noqa: BLE001 - keep following (routing_follow)
                self._follower.alarm(exc)
            if await self._take_lead():
                try:
                    await self._live.start()  # our file, judged as at a start
                except Exception as exc:  # noqa: BLE001 - an invalid file leads nothing
                    await self._give_up_lead()
                    self._live.failed(exc)
                else:
                    self.leading = True

    async def _lead(self, hangup: asyncio.Event, interval: float) -> None:
        """Judge our file until the lock connection breaks."""
        watching = asyncio.create_task(self._live.watch(hangup, interval))
        try:
            # a connection's health has no event to wait on: it is asked every interval
            while await self._still_leading():  # noqa: ASYNC110
                await asyncio.sleep(interval)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
        ours, followed = self._live.current, self._follower.current
        if ours is not None and (followed is None or followed.version < ours.version):
            # Never followed (led from the start), or what we followed before we led: ours
            # routes until the next look reads the table in force.
            self._follower.current = ours
        await self._give_up_lead()
        event(log, "routing_lead_lost", level=logging.WARNING,
              note="the lock connection broke: following the table in force from now on")

    async def _take_lead(self) -> bool:
        """Whether this node now holds the lock.  ``leading`` (and so ``current``) follows
        only once our file is judged (``_live.start``): until then the processor routes with
        the table it followed, never with none or with a table of an earlier lead."""
        try:
            opened = self._lock is None
            if opened:
                self._lock = await connect(self._url, 10)
            # A link gone silent answers nothing, and the kernel would wait minutes: this
            # node would neither follow nor lead meanwhile (watch looks in turn).
            async with asyncio.timeout(max(self._interval, 1.0)):
                if opened:
                    async with translated_errors("setting the lead connection's keepalives"):
                        # A node cut off by the network: PostgreSQL drops its session, and
                        # so the lock, within about 15 s instead of the kernel's two hours.
                        await self._lock.execute(
                            "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 5;"
                            " SET tcp_keepalives_count = 2")
                async with translated_errors("taking the routing lead"):
                    taken = bool(await self._lock.fetchval(
                        "SELECT pg_try_advisory_lock($1)", LEAD_LOCK))
        except (StoreError, TimeoutError) as exc:
            event(log, "routing_lead_unavailable", level=logging.WARNING,
                  error=str(exc) or "no answer within the interval")
            await self._give_up_lead()
            return False
        if taken:
            event(log, "routing_leading", note="this node judges routing.yaml")
        return taken

    async def _still_leading(self) -> bool:
        """Whether the lock's session still answers; anything else (an error of any kind, or
        no answer within the interval) ends the lead: leading on a lock we cannot see is how
        two nodes would apply two files."""
        try:
            async with asyncio.timeout(max(self._interval, 1.0)):
                await self._lock.fetchval("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - see above
            event(log, "routing_lead_check_failed", level=logging.WARNING, error=repr(exc))
            return False
        return True

    async def _give_up_lead(self) -> None:
        self.leading = False
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.terminate()  # the lock goes with the session; never waits on a dead link

    async def close(self) -> None:
        await self._give_up_lead()
