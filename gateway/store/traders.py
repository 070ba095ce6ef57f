"""The trader registry (AEO status), read by the processor and replaced by ops."""

from __future__ import annotations

from typing import Any

from gateway.store.database import translated_errors


async def aeo_ids(pool: Any) -> frozenset[str]:
    async with translated_errors("reading the trader registry"), pool.acquire() as connection:
        rows = await connection.fetch("SELECT id FROM traders WHERE aeo")
        return frozenset(str(r["id"]) for r in rows)


async def replace_all(pool: Any, traders: list[tuple[str, str, bool]]) -> None:
    """(id, name, aeo) rows become the whole registry, in one transaction."""
    async with translated_errors("importing the trader registry"), pool.acquire() as connection, \
            connection.transaction():
        await connection.execute("DELETE FROM traders")
        await connection.executemany(
            "INSERT INTO traders (id, name, aeo) VALUES ($1, $2, $3)", traders)
