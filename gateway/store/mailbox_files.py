"""Partners' outbox files in the database (``sftp.mailbox_store: database``): what every node
serves as ``outbox/`` (transports/sftp/outbox.py), written by the mailbox relay in the
transaction that marks its rows dispatched (app/relay.py).

Each file is a row; an answer and its signature are two.  At most one file of a name is
present in a partner's outbox (unique while ``removed_at`` is null).  Like the rest of the
store, the writer takes a connection and leaves the transaction to the caller; the SFTP
server's reads are single statements on the pool."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Connection = Any


@dataclass(frozen=True, slots=True)
class MailboxFile:
    """A file as a listing shows it: the body is read by range (``read``)."""

    id: int
    name: str
    size: int
    created_at: dt.datetime


_FILE = "id, name, octet_length(body) AS size, created_at"


async def put_many(connection: Connection, files: Sequence[tuple[str, str, bytes]]) -> None:
    """Each (partner id, name, body) present in the partner's outbox, in two statements for
    all.  A file of the same name already present (an answer sent again by ``gateway
    replay``) is removed first, as a file on disk is replaced by its rename: the partner sees
    one file of the name, the latest, and a handle open on the old one reads the old on."""
    if not files:
        return
    partners = [partner for partner, _, _ in files]
    names = [name for _, name, _ in files]
    await connection.execute(
        "UPDATE mailbox_files f SET removed_at = now()"
        " FROM unnest($1::text[], $2::text[]) AS n (partner_id, name)"
        " WHERE f.partner_id = n.partner_id AND f.name = n.name AND f.removed_at IS NULL",
        partners, names)
    await connection.execute(
        "INSERT INTO mailbox_files (partner_id, name, body)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])",
        partners, names, [body for _, _, body in files])


async def listing(connection: Connection, partner_id: str) -> list[MailboxFile]:
    rows = await connection.fetch(
        f"SELECT {_FILE} FROM mailbox_files WHERE partner_id = $1 AND removed_at IS NULL"
        " ORDER BY name", partner_id)
    return [MailboxFile(**row) for row in rows]


async def present(connection: Connection, partner_id: str, name: str) -> MailboxFile | None:
    row = await connection.fetchrow(
        f"SELECT {_FILE} FROM mailbox_files"
        " WHERE partner_id = $1 AND name = $2 AND removed_at IS NULL", partner_id, name)
    return None if row is None else MailboxFile(**row)


async def read(connection: Connection, file_id: int, offset: int, size: int) -> bytes:
    """``size`` bytes of a file from ``offset`` (fewer at its end, none past it): only that
    range is read (the body is stored uncompressed, out of line: migration 0022)."""
    body = await connection.fetchval(
        "SELECT substring(body FROM $2::int + 1 FOR $3::int) FROM mailbox_files"
        " WHERE id = $1", file_id, offset, size)
    return b"" if body is None else bytes(body)


async def remove(connection: Connection, partner_id: str, name: str) -> bool:
    """The partner's delete; False when no such file is present (removed already, by this
    node or another)."""
    status: str = await connection.execute(
        "UPDATE mailbox_files SET removed_at = now()"
        " WHERE partner_id = $1 AND name = $2 AND removed_at IS NULL", partner_id, name)
    return status != "UPDATE 0"


async def purge_removed(connection: Connection, older_than_days: float, limit: int) -> int:
    """Delete up to ``limit`` files removed more than ``older_than_days`` ago; returns how
    many (``limit``: more may be left)."""
    status: str = await connection.execute(
        "DELETE FROM mailbox_files WHERE id IN (SELECT id FROM mailbox_files"
        "  WHERE removed_at < now() - make_interval(secs => $1::double precision)"
        "  LIMIT $2)", older_than_days * 86400, limit)
    return int(status.split()[-1])
