"""``gateway track REF``: the event history of a submission, interchange or declaration."""

from __future__ import annotations

from typing import Any

from gateway.config.load import GatewayConfig
from gateway.store.database import create_pool
from gateway.store.interchanges import history


async def track(config: GatewayConfig, reference: str) -> list[dict[str, Any]]:
    pool = await create_pool(config.database_url, size=1)
    try:
        async with pool.acquire() as connection:
            return await history(connection, reference)
    finally:
        await pool.close()
