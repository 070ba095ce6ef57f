"""/ready: whether this gateway can do its work now.  Three checks, each bounded in time: the
database answers ``SELECT 1``, the broker can be published to, a routing table is in force.
Each says what failed, without a password (DESIGN rule 5: URLs go through logs.redact)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.errors import GatewayError
from gateway.logs import redact
from gateway.store.gauges import ping

CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Readiness:
    """What /ready asks; the callables keep this module free of the app layer."""

    pool: Any
    database_url: str
    amqp_url: str
    #: Why the broker cannot be published to, or None (AmqpPublisher.unreachable).
    broker_unreachable: Callable[[], Awaitable[str | None]]
    #: The version of the routing table in force, None before one is.
    routing_version: Callable[[], int | None]

    async def checks(self) -> list[Check]:
        database, broker = await asyncio.gather(self._database(), self._broker())
        return [database, broker, self._routing()]

    async def _database(self) -> Check:
        where = redact(self.database_url)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                async with self.pool.acquire() as connection:
                    await ping(connection, CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return Check("database", False, f"{where}: no answer to SELECT 1 within "
                         f"{CHECK_TIMEOUT_SECONDS:g} s")
        except (GatewayError, OSError) as exc:
            return Check("database", False, self._scrub(f"{where}: {exc}"))
        return Check("database", True, f"{where}: SELECT 1 answered")

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
