"""The trader registry (AEO status and the partners each trader is registered to), read by the
processor and replaced by ops."""

from __future__ import annotations

from typing import Any

from gateway.store.database import translated_errors


async def aeo_partners(pool: Any) -> dict[str, frozenset[str]]:
    """Each authorised economic operator's identification -> the partners it is registered to."""
    async with translated_errors("reading the trader registry"), pool.acquire() as connection:
        rows = await connection.fetch("SELECT id, partners FROM traders WHERE aeo")
        return {str(r["id"]): frozenset(r["partners"]) for r in rows}


async def replace_all(pool: Any, traders: list[tuple[str, str, bool, tuple[str, ...]]]) -> None:
    """(id, name, aeo, partners) rows become the whole registry, in one transaction."""
    async with translated_errors("importing the trader registry"), pool.acquire() as connection, \
            connection.transaction():
        await connection.execute("DELETE FROM traders")
        await connection.executemany(
            "INSERT INTO traders (id, name, aeo, partners) VALUES ($1, $2, $3, $4)",
            [(i, n, a, list(p)) for i, n, a, p in traders])
