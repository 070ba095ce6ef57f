"""The session channel of a partner, which runs SFTP and nothing else, and asyncssh's SFTP
server loop for it (``SessionHandler``: why it is subclassed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.constants import FXP_OPEN, FXP_OPENDIR
from asyncssh.packet import SSHPacket
from asyncssh.sftp import (
    MAX_SFTP_PACKET_LEN,
    MAX_SFTP_READ_LEN,
    MAX_SFTP_WRITE_LEN,
    MIN_SFTP_VERSION,
    SFTPServerHandler,
)
from asyncssh.stream import SSHServerStreamSession

from gateway.transports.sftp.server import MailboxSFTPServer


class SessionHandler(SFTPServerHandler):
    """asyncssh's SFTP server loop for one session, at version 3 (the v4-v6 opens and renames
    reach other methods than ``open`` and ``rename``; VAN clients speak v3), telling the
    mailbox what asyncssh's SFTPServer interface does not: how many handles the session holds,
    and that the session is over, so that the closes asyncssh then makes of every handle left
    open are never taken for the client's SSH_FXP_CLOSE (a half-closed channel, a client that
    died, a broken connection).

    SFTPServer.close() is called alike for both, and no channel state tells them apart (a
    client may send its close and its EOF together), hence this subclass of an asyncssh
    internal (asyncssh 2.14 to 2.24: ``_cleanup``, ``_process_*``, ``_packet_handlers``);
    tests/integration/test_sftp_uploads.py fails if a new asyncssh changes them."""

    def __init__(self, server: MailboxSFTPServer, reader: asyncssh.SSHReader[bytes],
                 writer: asyncssh.SSHWriter[bytes]) -> None:
        super().__init__(server, reader, writer, MIN_SFTP_VERSION)
        self._mailbox = server

    async def _cleanup(self, exc: Exception | None) -> None:
        self._mailbox.end_session()
        await super()._cleanup(exc)

    async def _process_open(self, packet: SSHPacket) -> bytes:
        self._mailbox.make_room(self._handles())
        return await super()._process_open(packet)

    async def _process_opendir(self, packet: SSHPacket) -> bytes:
        self._mailbox.make_room(self._handles())
        return await super()._process_opendir(packet)

    async def _process_limits(self, packet: SSHPacket) -> asyncssh.SFTPLimits:
        packet.check_end()
        return asyncssh.SFTPLimits(MAX_SFTP_PACKET_LEN, MAX_SFTP_READ_LEN, MAX_SFTP_WRITE_LEN,
                                   self._mailbox.max_open)

    def _handles(self) -> int:
        return len(self._file_handles) + len(self._dir_handles)

    _packet_handlers = {
        **SFTPServerHandler._packet_handlers,
        FXP_OPEN: cast(Any, _process_open),
        FXP_OPENDIR: cast(Any, _process_opendir),
        b"limits@openssh.com": cast(Any, _process_limits),
    }


class SftpSession(SSHServerStreamSession[bytes]):
    """A session channel that runs SFTP and nothing else (no shell, command or scp), with
    SessionHandler: asyncssh's own stream session runs its stock handler for "sftp"."""

    def __init__(self, run: Callable[[asyncssh.SSHServerChannel[bytes],
                                      asyncssh.SSHReader[bytes],
                                      asyncssh.SSHWriter[bytes]], Awaitable[None]]) -> None:
        super().__init__(None)
        self._run = run
        self._channel: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: SSHChannel[bytes]) -> None:
        super().connection_made(chan)
        self._channel = cast(asyncssh.SSHServerChannel[bytes], chan)

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp"

    def session_started(self) -> None:
        assert self._channel is not None
        reader = asyncssh.SSHReader[bytes](self, self._channel)
        writer = asyncssh.SSHWriter[bytes](self, self._channel)
        self._channel.get_connection().create_task(
            self._run(self._channel, reader, writer), reader.logger)

