"""Names and paths as a client gives them: what a name may be, which names are temporary, and
where a path points in a mailbox (lexically: no link is ever consulted)."""

from __future__ import annotations

import posixpath
import unicodedata
from dataclasses import dataclass

from gateway.transports.mailbox import INBOX, NAME_MAX_BYTES, OUTBOX

#: Names clients upload under before renaming to the final name (WinSCP, FileZilla, scripts).
TEMPORARY_SUFFIXES = (".part", ".filepart", ".tmp", ".temp", ".partial", ".upload",
                      ".inprogress")


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


def as_text(raw: bytes) -> str:
    """A client's name or path as text, an upload's name as the intake gets it.  SFTP v3
    names are bytes; v4 and later say UTF-8 (draft-ietf-secsh-filexfer-13 section 6), which
    OpenSSH and WinSCP send, but a legacy client may send Latin-1 or cp1252: each byte that is
    not UTF-8 is kept as ``\\xNN``, so the name stays exact and readable, never a replacement
    mark (U+FFFD) that loses the byte and makes two names one."""
    return raw.decode("utf-8", errors="backslashreplace")


def upload_name_refusal(raw: bytes) -> str | None:
    """Why ``raw`` cannot name an upload, or None: a name is 1 to NAME_MAX_BYTES bytes (what
    a file system holds) without control characters (Unicode Cc, NUL included: no tool makes
    them, and they would corrupt logs, terminals and the answer's name)."""
    if not raw:
        return "it is empty"
    if len(raw) > NAME_MAX_BYTES:
        return f"it is longer than {NAME_MAX_BYTES} bytes"
    control = next((ch for ch in as_text(raw) if unicodedata.category(ch) == "Cc"), None)
    if control is not None:
        return f"it holds the control character U+{ord(control):04X}"
    return None


_FOLDERS = {INBOX.encode(): INBOX, OUTBOX.encode(): OUTBOX}


@dataclass(frozen=True)
class Place:
    """A place in a mailbox: a folder ('' for the mailbox itself) and a name in it (b'' for
    the folder itself)."""

    folder: str
    name: bytes


def components(path: bytes) -> list[bytes]:
    """The components of ``path`` from the mailbox, read lexically as asyncssh's chroot does:
    '..' stops at the mailbox, and no link is ever consulted."""
    return [part for part in posixpath.normpath(b"/" + path).split(b"/") if part]


def locate(path: bytes) -> Place | None:
    """Where ``path`` points, or None: nothing else exists in a mailbox."""
    parts = components(path)
    if not parts:
        return Place("", b"")
    folder = _FOLDERS.get(parts[0])
    if folder is None or len(parts) > 2:
        return None
    return Place(folder, parts[1] if len(parts) == 2 else b"")

