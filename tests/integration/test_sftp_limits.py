"""SFTP resources a partner, or anyone who can reach the port, may hold: open files per
session, sessions and connections per partner, connections still logging in, and how long a
login or a vanished client may last.  Beyond a limit the request is refused with a message that
says which limit, and the others carry on; what anyone may hold before logging in never locks
the partners out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncssh
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config.settings import SftpSettings
from gateway.transports.sftp import Startups, source_block
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


async def idle_tcp(gateway: Gateway, source: str = "127.0.0.1"
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from ``source`` that says nothing once the server has greeted it (the
    greeting shows the server has counted it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port,
                                                   local_addr=(source, 0))
    assert (await reader.readline()).startswith(b"SSH-2.0-")
    return reader, writer


async def cut(reader: asyncio.StreamReader) -> None:
    """Return once the server has closed the connection (the deadline only keeps a
    regression from hanging the suite)."""
    await asyncio.wait_for(reader.read(), DEADLINE)


def connect_from(gateway: Gateway, partner: str, source: str) -> Any:
    return asyncssh.connect(
        "127.0.0.1", gateway.port, username=partner, known_hosts=None, agent_path=None,
        client_keys=[str(gateway.files.partners[partner].key_path)], local_addr=(source, 0))


async def lists_inbox(connecting: Any) -> None:
    async with connecting as connection, connection.start_sftp_client() as sftp:
        await sftp.listdir("inbox")


async def test_connections_logging_in_are_capped(gateway: Gateway) -> None:
    async with limited(gateway, max_unauthenticated=2, banner_timeout_seconds=600) as gw:
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


async def test_one_address_holding_every_login_slot_does_not_lock_the_partners_out(
        gateway: Gateway) -> None:
    """Idle sockets from one host (no banner, no key: they cost it nothing) once held every
    slot, and every partner's login was refused for as long as it kept them.  Now each partner
    from elsewhere takes the newest of that host's slots, and the host's own new connections
    are refused, not the partners'."""
    # no timeout cuts a connection here: only a drop does
    async with limited(gateway, max_unauthenticated=4, banner_timeout_seconds=600,
                       login_timeout_seconds=600) as gw:
        idle = [await idle_tcp(gw, "127.0.0.2") for _ in range(4)]
        refused = await idle_tcp(gw, "127.0.0.2")
        await cut(refused[0])  # full: the attacker's own newcomer goes
        await lists_inbox(connect_from(gw, "van-a", "127.0.0.1"))
        await cut(idle[3][0])  # the slot the partner took: the attacker's newest
        idle.append(await idle_tcp(gw, "127.0.0.2"))  # the attacker fills it again
        await lists_inbox(connect_from(gw, "van-b", "127.0.0.3"))
        await cut(idle[4][0])
        for _, writer in [*idle, refused]:
            writer.close()


async def test_one_address_cannot_exceed_its_own_login_slots(gateway: Gateway) -> None:
    async with limited(gateway, max_unauthenticated_per_source=2,
                       banner_timeout_seconds=600) as gw:
        idle = [await idle_tcp(gw, "127.0.0.2") for _ in range(2)]
        with pytest.raises(asyncssh.DisconnectError, match="from your address"):
            await lists_inbox(connect_from(gw, "van-a", "127.0.0.2"))
        await lists_inbox(connect_from(gw, "van-a", "127.0.0.1"))  # another address: in
        idle[0][1].close()
        await eventually(lambda: lists_inbox(connect_from(gw, "van-a", "127.0.0.2")))
        idle[1][1].close()


async def test_a_connection_that_sends_no_banner_is_cut_early(gateway: Gateway) -> None:
    """RFC 4253 section 4.2: a client sends its identification string at once; a socket that
    does not only holds a slot, so it goes well before the login timeout."""
    async with limited(gateway, banner_timeout_seconds=1, login_timeout_seconds=600) as gw:
        silent_reader, silent = await idle_tcp(gw)
        polite_reader, polite = await idle_tcp(gw)
        polite.write(b"SSH-2.0-slow_but_polite\r\n")
        await cut(silent_reader)
        with pytest.raises(TimeoutError):  # logging in slowly is allowed (600 s)
            await asyncio.wait_for(polite_reader.read(), 3)
        silent.close()
        polite.close()


# --- what to drop when too many log in at once (no gateway: the policy on its own) ----------


def startups_settings(full: int, start: int, rate: int, per_source: int) -> SftpSettings:
    return SftpSettings(host_key="k", mailboxes="m", max_unauthenticated=full,
                        unauthenticated_drop_start=start, unauthenticated_drop_rate=rate,
                        max_unauthenticated_per_source=per_source)


class Draw:
    """The chance a Startups draws: what a test says."""

    def __init__(self, value: int = 99) -> None:
        self.value = value

    def __call__(self, below: int) -> int:
        assert 0 <= self.value < below
        return self.value


def test_random_early_drop_follows_openssh_max_startups() -> None:
    """10:30:100 (sshd's drop_connection): none dropped below 10 logging in, then one with a
    chance of 30 % rising linearly to 100 % at 100 (a draw below the percentage drops)."""
    for existing, percent in ((9, 0), (10, 30), (55, 65), (99, 99), (100, 100)):
        draw = Draw()
        startups: Startups[int] = Startups(startups_settings(100, 10, 30, 100), draw)
        for number in range(existing):  # each from its own address, drawing 99: all in
            assert startups.arrive(f"s{number}", number) is None
        for draw.value in range(100):
            outcome = startups.arrive("new", -1)
            assert outcome == ((-1, "max_unauthenticated") if draw.value < percent else None)
            startups.leave("new", -1)
        assert startups.count == existing


@given(full=st.integers(1, 8), start=st.integers(1, 10), rate=st.integers(0, 100),
       per_source=st.integers(1, 5),
       steps=st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.integers(0, 99)),
                      max_size=60))
def test_what_is_dropped_is_the_newest_of_the_largest_holder(
        full: int, start: int, rate: int, per_source: int,
        steps: list[tuple[bool, int, int]]) -> None:
    """Whatever arrives and leaves, from four addresses: the caps hold; nothing is dropped
    below the start; beyond full something always is; a drop takes the newest connection of
    an address that holds the most, so a newcomer from an address holding fewer than another
    is never the one refused (unless its own address is at its cap)."""
    draw = Draw()
    startups: Startups[int] = Startups(startups_settings(full, start, rate, per_source), draw)
    held: list[tuple[str, int]] = []  # the model: (address, connection), oldest first
    for number, (arrives, address, draw.value) in enumerate(steps):
        source = f"10.0.0.{address}"
        if not arrives:
            if held:
                startups.leave(*held.pop(draw.value % len(held)))
            continue
        counts = {s: sum(1 for h, _ in held if h == s) for s, _ in held}
        outcome = startups.arrive(source, number)
        if counts.get(source, 0) >= per_source:
            assert outcome == (number, "max_unauthenticated_per_source")
            continue
        existing = len(held)
        held.append((source, number))
        counts[source] = counts.get(source, 0) + 1
        assert (outcome is None) or existing >= min(start, full)
        assert (outcome is not None) or existing < full
        if outcome is not None:
            victim, limit = outcome
            assert limit == "max_unauthenticated"
            (victim_source,) = [h for h, c in held if c == victim]
            assert counts[victim_source] == max(counts.values())
            assert victim == [c for h, c in held if h == victim_source][-1]  # its newest
            assert victim == number or counts[source] < counts[victim_source]
            held.remove((victim_source, victim))
        assert startups.count == len(held) <= full
        assert all(startups.held(h) == sum(1 for s, _ in held if s == h) <= per_source
                   for h, _ in held)


@pytest.mark.parametrize(("peer", "block"), [
    (("127.0.0.2", 40000), "127.0.0.2/32"),
    (("::ffff:127.0.0.2", 40000, 0, 0), "127.0.0.2/32"),  # a dual-stack listener's IPv4
    (("2001:db8:1:2::1", 40000, 0, 0), "2001:db8:1:2::/64"),
    (("2001:db8:1:2:ffff:1:2:3", 40000, 0, 0), "2001:db8:1:2::/64"),  # one host's /64
    (("fe80::1%lo", 40000, 0, 1), "fe80::/64"),
])
def test_a_source_is_an_ipv4_address_or_an_ipv6_64(peer: tuple[object, ...], block: str) -> None:
    assert source_block(peer, startups_settings(64, 16, 30, 16)) == block


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
