"""The SSH listener: public-key logins, the limits on what a connection and a partner may
hold, and an SFTP session for each partner's channel."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import asyncssh

from gateway.config.settings import SftpSettings
from gateway.logs import event
from gateway.transports.sftp.logins import Startups, source_block
from gateway.transports.sftp.server import MailboxSFTPServer, PartnerAccess, Submit
from gateway.transports.sftp.session import SessionHandler, SftpSession

log = logging.getLogger("gateway.sftp")

#: Keepalives a client may leave unanswered before its connection is closed.
KEEPALIVE_COUNT_MAX = 3


class _Census:
    """What the listener holds now over all its connections."""

    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings
        self.startups: Startups[_SSHServer] = Startups(settings)
        self.connections: Counter[str] = Counter()
        self.sessions: Counter[str] = Counter()
        self._watching: set[asyncio.Task[None]] = set()

    def hold_session(self, partner_id: str, channel: asyncssh.SSHServerChannel[bytes]) -> None:
        """Count a session of ``partner_id`` until its channel is closed, however that comes
        (asyncssh closes a channel in every case, even one whose opening never completed,
        while its session object may never hear of it)."""
        self.sessions[partner_id] += 1
        watch = asyncio.get_running_loop().create_task(self._until_closed(partner_id, channel))
        self._watching.add(watch)
        watch.add_done_callback(self._watching.discard)

    async def _until_closed(self, partner_id: str,
                            channel: asyncssh.SSHServerChannel[bytes]) -> None:
        try:
            await channel.wait_closed()
        finally:
            _release(self.sessions, partner_id)


def _release(counter: Counter[str], partner_id: str) -> None:
    counter[partner_id] -= 1
    if counter[partner_id] <= 0:
        del counter[partner_id]


class _SSHServer(asyncssh.SSHServer):
    """Public keys only (DESIGN rule 5): no passwords, no keyboard-interactive.  Counts the
    connection while it logs in (``Startups``) and, once logged in, against its partner."""

    def __init__(self, access: PartnerAccess, census: _Census, submit: Submit) -> None:
        self._access = access
        self._census = census
        self._submit = submit
        self._connection: Any = None
        self._source = ""
        self._banner_timer: asyncio.TimerHandle | None = None
        self._partner_id: str | None = None  # once logged in, counted against it
        self._refusal: str | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn
        settings = self._census.settings
        self._source = source_block(conn.get_extra_info("peername"), settings)
        self._banner_timer = asyncio.get_running_loop().call_later(
            settings.banner_timeout_seconds, self._banner_due)
        dropped = self._census.startups.arrive(self._source, self)
        if dropped is None:
            return
        connection, limit = dropped
        if limit == "max_unauthenticated_per_source":
            connection._refuse("too many connections from your address are logging in (at "
                               f"most {settings.max_unauthenticated_per_source} at once); try "
                               "again later", None, limit)
        else:
            connection._refuse("too many connections are logging in (at most "
                               f"{settings.max_unauthenticated} at once); try again later",
                               None, limit)

    def _banner_due(self) -> None:
        """RFC 4253 section 4.2: a client sends its identification string as soon as it is
        connected; one that has not after ``banner_timeout_seconds`` only holds a slot."""
        self._banner_timer = None
        if self._connection.get_extra_info("client_version") is None:
            self._refuse("no SSH identification string received in time (RFC 4253 section "
                         "4.2)", None, "banner_timeout_seconds", asyncssh.DISC_PROTOCOL_ERROR)

    def connection_lost(self, exc: Exception | None) -> None:
        self._logged_in()
        if self._partner_id is not None:
            _release(self._census.connections, self._partner_id)
            self._partner_id = None

    def begin_auth(self, username: str) -> bool:
        partner_id = self._access.logins.get(username)
        keys = self._access.keys.get(partner_id, ()) if partner_id else ()
        # An unknown user gets an empty key list: login fails the same way as a wrong key.
        self._connection.set_authorized_keys(asyncssh.import_authorized_keys("\n".join(keys)))
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def auth_completed(self) -> None:
        self._logged_in()
        partner_id = self._access.logins[self._connection.get_extra_info("username")]
        self._partner_id = partner_id
        self._census.connections[partner_id] += 1
        limit = self._census.settings.max_connections_per_partner
        if self._census.connections[partner_id] > limit:
            self._refuse(f"too many SSH connections: partner {partner_id} may have {limit} "
                         "at once", partner_id, "max_connections_per_partner")

    def session_requested(self) -> tuple[asyncssh.SSHServerChannel[bytes], SftpSession]:
        partner_id = self._partner_id
        if partner_id is None or self._refusal is not None:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            self._refusal or "not logged in")
        limit = self._census.settings.max_sessions_per_partner
        if self._census.sessions[partner_id] >= limit:
            event(log, "sftp_limit", level=logging.WARNING, partner=partner_id,
                  limit="max_sessions_per_partner", value=limit)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"too many SFTP sessions: partner {partner_id} may have {limit} open at once")
        channel = self._connection.create_server_channel(encoding=None)
        self._census.hold_session(partner_id, channel)
        return channel, SftpSession(
            lambda chan, reader, writer: self._serve(partner_id, chan, reader, writer))

    async def _serve(self, partner_id: str, chan: asyncssh.SSHServerChannel[bytes],
                     reader: asyncssh.SSHReader[bytes],
                     writer: asyncssh.SSHWriter[bytes]) -> None:
        server = MailboxSFTPServer(chan, partner_id, self._access, self._submit)
        await SessionHandler(server, reader, writer).run()

    def _logged_in(self) -> None:
        """The connection no longer counts as logging in (it did, or it is gone)."""
        self._census.startups.leave(self._source, self)
        if self._banner_timer is not None:
            self._banner_timer.cancel()
            self._banner_timer = None

    def _refuse(self, message: str, partner_id: str | None, limit: str,
                code: int = asyncssh.DISC_TOO_MANY_CONNECTIONS) -> None:
        """Disconnect with ``message`` (by default SSH disconnect reason 12, RFC 4253 section
        11.1); from now on it holds no slot and opens nothing."""
        self._refusal = message
        self._logged_in()
        event(log, "sftp_refused", level=logging.WARNING, reason=message, partner=partner_id,
              limit=limit, peer=self._connection.get_extra_info("peername"))
        asyncio.get_running_loop().call_soon(self._connection.disconnect, code, message)


async def start_server(host: str, port: int, host_key: asyncssh.SSHKey, access: PartnerAccess,
                       submit: Submit) -> asyncssh.SSHAcceptor:
    census = _Census(access.settings)
    return await asyncssh.create_server(
        lambda: _SSHServer(access, census, submit), host, port, server_host_keys=[host_key],
        login_timeout=access.settings.login_timeout_seconds,
        keepalive_interval=access.settings.keepalive_seconds,
        keepalive_count_max=KEEPALIVE_COUNT_MAX, agent_forwarding=False, allow_pty=False)
