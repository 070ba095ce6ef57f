"""SFTP resources a partner, or anyone who can reach the port, may hold: open files per
session, sessions and connections per partner, connections still logging in, and how long a
login or a vanished client may last.  Beyond a limit the request is refused with a message that
says which limit, and the others carry on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncssh
import pytest

from tests.support.edifact import cusdec
from tests.support.harness import (
    FXF_CREAT,
    FXF_TRUNC,
    FXF_WRITE,
    FXP_HANDLE,
    FXP_STATUS,
    Gateway,
    RawSftp,
    restart_with_sftp,
    sftp_string,
)

T = TypeVar("T")
FXP_OPENDIR, FXP_EXTENDED, FXP_EXTENDED_REPLY = 11, 200, 201
DEADLINE = 30.0


async def eventually(attempt: Callable[[], Awaitable[T]]) -> T:
    """What ``attempt`` gives once it stops raising (the server frees a slot when it has seen
    the other side go, a moment after the client is done)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return await attempt()
        except (asyncssh.Error, OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def limited(gateway: Gateway, **settings: object) -> AsyncIterator[Gateway]:
    restarted = await restart_with_sftp(gateway, **settings)
    try:
        yield restarted
    finally:
        await restarted.stop()


async def submitted(gateway: Gateway) -> list[str]:
    rows = await gateway.fetch("SELECT file_name FROM interchanges ORDER BY id")
    return [r["file_name"] for r in rows]


async def test_open_files_of_a_session_are_capped(gateway: Gateway) -> None:
    """Files and folders open, and temporaries waiting for their rename, count alike."""
    async with limited(gateway, max_open_files=3) as gw, gw.connect("van-a") as connection:
        sftp = await connection.start_sftp_client()
        raw = await RawSftp.start(connection)
        kind, body = await raw.request(FXP_EXTENDED, sftp_string(b"limits@openssh.com"))
        assert kind == FXP_EXTENDED_REPLY and body[-8:] == (3).to_bytes(8, "big")  # told
        one = await raw.open(b"inbox/one.edi", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        kind, _ = await raw.request(FXP_OPENDIR, sftp_string(b"outbox"))
        assert kind == FXP_HANDLE
        parked = await raw.open(b"inbox/two.edi.part", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        assert await raw.write(parked, 0, b"waits for its rename") == 0
        assert (await raw.close(parked))[0] == 0
        for _ in range(2):
            kind, body = await raw.request(3, sftp_string(b"inbox/four.edi"),  # OPEN
                                           (FXF_WRITE | FXF_CREAT).to_bytes(4, "big"),
                                           bytes(4))
            assert kind == FXP_STATUS and b"too many open files" in body, body
        kind, body = await raw.request(FXP_OPENDIR, sftp_string(b"inbox"))
        assert kind == FXP_STATUS and b"too many open files" in body, body
        # the limit is per session: another session of the partner opens files meanwhile
        async with sftp.open("inbox/three.edi", "wb") as elsewhere:
            await elsewhere.write(cusdec(sender="VANA"))
        assert (await raw.close(one))[0] == 0  # an empty upload, submitted
        four = await raw.open(b"inbox/four.edi", FXF_WRITE | FXF_CREAT)
        assert (await raw.close(four))[0] == 0
        sftp.exit()
    assert await submitted(gw) == ["three.edi", "one.edi", "four.edi"]


async def test_sessions_of_a_partner_are_capped(gateway: Gateway) -> None:
    async with limited(gateway, max_sessions_per_partner=2) as gw, \
            gw.connect("van-a") as connection, gw.connect("van-a") as second:
        first = await connection.start_sftp_client()
        await second.start_sftp_client()
        with pytest.raises(asyncssh.ChannelOpenError, match="too many SFTP sessions"):
            await connection.start_sftp_client()
        with pytest.raises(asyncssh.ChannelOpenError, match="too many SFTP sessions"):
            await second.start_sftp_client()
        async with gw.connect("van-b") as other, other.start_sftp_client() as theirs:
            assert await theirs.listdir("inbox") == [".", ".."]  # another partner: unaffected
        first.exit()
        await first.wait_closed()
        again = await eventually(connection.start_sftp_client)
        assert await again.listdir("inbox") == [".", ".."]


async def test_connections_of_a_partner_are_capped(gateway: Gateway) -> None:
    async with limited(gateway, max_connections_per_partner=2) as gw, \
            gw.connect("van-a") as one, gw.connect("van-a"):
        assert "too many SSH connections: partner van-a may have 2" in await refusal(gw)
        async with gw.connect("van-b") as other, other.start_sftp_client():
            pass
        one.close()
        await one.wait_closed()

        async def log_in() -> None:
            async with gw.connect("van-a") as again, again.start_sftp_client() as sftp:
                await sftp.listdir("outbox")

        await eventually(log_in)


async def refusal(gateway: Gateway) -> str:
    """Why the server disconnects a partner once it has logged in (SSH_MSG_DISCONNECT's
    description, which OpenSSH prints; asyncssh hands it to the client's connection_lost)."""
    lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    class Watch(asyncssh.SSHClient):
        def connection_lost(self, exc: Exception | None) -> None:
            if not lost.done():
                lost.set_result(exc)

    try:
        connection = await asyncssh.connect(
            "127.0.0.1", gateway.port, username="van-a", known_hosts=None, agent_path=None,
            client_keys=[str(gateway.files.partners["van-a"].key_path)], client_factory=Watch)
    except asyncssh.DisconnectError as exc:  # it came before the login was through
        return exc.reason
    with pytest.raises(asyncssh.Error):
        async with connection, connection.start_sftp_client():
            pass
    exc = await asyncio.wait_for(lost, DEADLINE)
    assert isinstance(exc, asyncssh.DisconnectError), exc
    return exc.reason


async def idle_tcp(gateway: Gateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that says nothing once the server has greeted it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    assert (await reader.readline()).startswith(b"SSH-2.0-")
    return reader, writer


async def test_connections_logging_in_are_capped(gateway: Gateway) -> None:
    async with limited(gateway, max_unauthenticated=2) as gw:
        idle = [await idle_tcp(gw) for _ in range(2)]
        with pytest.raises((asyncssh.DisconnectError, ConnectionError),
                           match="logging in"):
            async with gw.connect("van-a"):
                pass
        idle[0][1].close()

        async def log_in() -> None:
            async with gw.connect("van-a") as connection, \
                    connection.start_sftp_client() as sftp:
                await sftp.listdir("inbox")

        await eventually(log_in)
        # once logged in, a connection no longer counts: two more may log in beside it
        async with gw.connect("van-a"), gw.connect("van-b"):
            pass
        idle[1][1].close()


async def test_a_login_that_takes_too_long_is_cut(gateway: Gateway) -> None:
    async with limited(gateway, login_timeout_seconds=1) as gw:
        reader, writer = await idle_tcp(gw)
        # the server closes the connection: the read ends (well before the deadline, which
        # only keeps a regression from hanging the suite; asyncssh's default is 120 s)
        assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
        writer.close()


async def test_a_client_that_vanished_frees_its_slot(gateway: Gateway) -> None:
    """A partner's network drops without a word (a NAT forgets it): keepalives find out, so
    the connection limit does not lock the partner out until TCP gives up hours later."""
    async with limited(gateway, max_connections_per_partner=1, keepalive_seconds=3) as gw, \
            frozen_proxy(gw.port) as (port, freeze):
        vanishing = await asyncssh.connect(
            "127.0.0.1", port, username="van-a", known_hosts=None, agent_path=None,
            client_keys=[str(gw.files.partners["van-a"].key_path)])
        freeze()
        assert "too many SSH connections" in await refusal(gw)

        async def log_in() -> None:
            async with gw.connect("van-a") as connection, \
                    connection.start_sftp_client() as sftp:
                await sftp.listdir("inbox")

        await eventually(log_in)
        vanishing.abort()


@contextlib.asynccontextmanager
async def frozen_proxy(target: int) -> AsyncIterator[tuple[int, Callable[[], None]]]:
    """A TCP relay to ``target``; calling the second value stops it relaying, both ways,
    without closing anything: the network path is gone, the sockets are not."""
    frozen = asyncio.Event()
    pumps: list[asyncio.Task[None]] = []

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if frozen.is_set():
                await asyncio.Event().wait()  # hold the bytes for ever
            sink.write(data)

    async def relay(client_reader: asyncio.StreamReader,
                    client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        pumps.extend([asyncio.create_task(pump(client_reader, server_writer)),
                      asyncio.create_task(pump(server_reader, client_writer))])

    listener = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1], frozen.set
    finally:
        for task in pumps:
            task.cancel()
        listener.close()
