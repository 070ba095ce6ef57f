"""gateway serve refused at start by a listener that cannot start: nothing it opened before
is left behind (its database pools, the console's listener)."""

from __future__ import annotations

import socket
from pathlib import Path

import asyncpg
import pytest

from tests.support.harness import (
    POSTGRES_URL,
    create_database,
    drop_database,
    start_gateway,
    write_files,
)


async def connections_to(database: str) -> int:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database)
        return count
    finally:
        await connection.close()


async def test_an_sftp_port_taken_leaves_no_pool_and_no_console_open(tmp_path: Path) -> None:
    """The SFTP listener starts after the database pools, the broker connection and the
    console: its port taken by another program fails the start, and every one of them is
    closed again (before, the pools and the console's listener stayed open in the process)."""
    database = await create_database()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        files = write_files(tmp_path, database, port=taken.getsockname()[1],
                            settings={"console": "{host: 127.0.0.1, port: 0}"})
        with pytest.raises(OSError):
            await start_gateway(files)
        assert await connections_to(database) == 0
    finally:
        taken.close()
        await drop_database(database)
