from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.console import RunningConsole, running_console
from tests.support.harness import (
    Gateway,
    create_database,
    database_url,
    drop_database,
    gateway_fixture,
)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for running in gateway_fixture(tmp_path):
        yield running


@pytest.fixture
async def pool() -> AsyncIterator[Any]:
    """A pool on a database of its own (the relay tests write outbox rows straight in)."""
    name = await create_database()
    pool = await asyncpg.create_pool(database_url(name), min_size=1, max_size=6)
    try:
        yield pool
    finally:
        await pool.close()
        await drop_database(name)


@pytest.fixture
async def console(pool: Any, tmp_path: Path) -> AsyncIterator[RunningConsole]:
    """A console with pages (tests/support/console.py) on ``pool``'s database."""
    async with running_console(pool, tmp_path) as running:
        yield running
