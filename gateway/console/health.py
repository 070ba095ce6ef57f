"""/ready: whether this gateway can do its work now.  Three checks, each bounded in time: the
database answers ``SELECT 1``, the broker can be published to, a routing table is in force.
Each says what failed, without a password (DESIGN rule 5: URLs go through logs.redact).

The database is asked on a connection of /ready's own, never one of the pages' pool: pages
holding every pooled connection (slow searches, a flood of requests with made-up session
cookies, which need no login) must not make a healthy gateway look unready to an
orchestrator, which would restart it or take it out of service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.errors import GatewayError
from gateway.logs import redact
from gateway.store.database import connect
from gateway.store.gauges import ping

CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(slots=True)
class Readiness:
    """What /ready asks; the callables keep this module free of the app layer."""

    #: The console pages' pool (not /ready's: see the module's docstring).
    pool: Any
    database_url: str
    amqp_url: str
    #: Why the broker cannot be published to, or None (AmqpPublisher.unreachable).
    broker_unreachable: Callable[[], Awaitable[str | None]]
    #: The version of the routing table in force, None before one is.
    routing_version: Callable[[], int | None]
    #: How /ready opens its connection: (database URL, seconds) -> connection.
    connect: Callable[[str, float], Awaitable[Any]] = connect
    #: /ready's own database connection, opened at the first check and again after a failure.
    _connection: Any = field(default=None, init=False)
    #: One check at a time uses it (asyncpg runs one statement at a time per connection).
    _asking: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def checks(self) -> list[Check]:
        database, broker = await asyncio.gather(self._database(), self._broker())
        return [database, broker, self._routing()]

    async def _database(self) -> Check:
        where = redact(self.database_url)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), self._asking:
                if self._connection is None or self._connection.is_closed():
                    self._connection = await self.connect(self.database_url,
                                                          CHECK_TIMEOUT_SECONDS)
                await ping(self._connection, CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            await self.close()
            return Check("database", False, f"{where}: no answer to SELECT 1 within "
                         f"{CHECK_TIMEOUT_SECONDS:g} s")
        except (GatewayError, OSError) as exc:
            await self.close()
            return Check("database", False, self._scrub(f"{where}: {exc}"))
        return Check("database", True, f"{where}: SELECT 1 answered")

    async def close(self) -> None:
        """Close /ready's connection (a new one is opened at the next check)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()  # never waits: it may be the one that does not answer

    async def _broker(self) -> Check:
        where = redact(self.amqp_url)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                why = await self.broker_unreachable()
        except TimeoutError:
            why = f"no connection within {CHECK_TIMEOUT_SECONDS:g} s"
        if why is None:
            return Check("broker", True, f"{where}: connected")
        return Check("broker", False, self._scrub(f"{where}: {why}"))

    def _routing(self) -> Check:
        version = self.routing_version()
        if version is None:
            return Check("routing", False, "no routing table in force")
        return Check("routing", True, f"routing table version {version} in force")

    def _scrub(self, text: str) -> str:
        """Whatever a library put in an error message: never the URLs' passwords."""
        for url in (self.database_url, self.amqp_url):
            text = text.replace(url, redact(url))
            secret = _password(url)
            if secret:
                text = text.replace(secret, "***")
        return text


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
