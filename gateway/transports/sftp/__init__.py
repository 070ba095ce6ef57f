"""The SFTP endpoint (asyncssh, SFTP version 3): public-key login per partner, each partner
confined to its own mailbox, ``inbox/`` to upload and ``outbox/`` to collect answers.

- names.py: what a client's name may be, temporary names, where a path points;
- uploads.py: each handle opened for writing stages its own anonymous file;
- server.py: one session's file operations (only the client's close or rename submits);
- session.py: asyncssh's SFTP loop at version 3, telling the client's close from the
  session's end;
- logins.py: which connection goes when too many log in at once (``Startups``);
- listener.py: the SSH server, its logins and what each connection and partner holds;
- keys.py: the host key, private keys written private from the first byte.

Limits (``SftpSettings``): connections logging in (per address, and over all with random early
drop of the newest from the address holding the most, see ``Startups``), connections and
sessions per partner, files open per session, the time to send the SSH banner and to log in,
keepalives, and ``max_submission_bytes`` checked at every write.  Beyond one the request is
refused with a message naming it and an event is logged."""

from gateway.transports.sftp.keys import create_key_pair, load_or_create_host_key
from gateway.transports.sftp.listener import KEEPALIVE_COUNT_MAX, start_server
from gateway.transports.sftp.logins import Startups, source_block
from gateway.transports.sftp.names import (
    TEMPORARY_SUFFIXES,
    as_text,
    is_temporary,
    upload_name_refusal,
)
from gateway.transports.sftp.server import MailboxSFTPServer, PartnerAccess, Submit

__all__ = [
    "KEEPALIVE_COUNT_MAX",
    "TEMPORARY_SUFFIXES",
    "MailboxSFTPServer",
    "PartnerAccess",
    "Startups",
    "Submit",
    "as_text",
    "create_key_pair",
    "is_temporary",
    "load_or_create_host_key",
    "source_block",
    "start_server",
    "upload_name_refusal",
]
