"""``gateway demo as2-receiver``: a partner's AS2 server on this machine, for the demo and for
ops checking a partner set-up before its real server is there.  It takes what the gateway
POSTs (answers by AS2), decrypts it with the partner's key, verifies the gateway's signature,
writes the payload into a folder and answers with a synchronous MDN, signed when asked:
``processed`` with the MIC, or ``processed/error: ...`` with the reason.  Point the partner's
``as2.url`` in partners.yaml at it (README: answers by AS2)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509

from gateway.errors import As2Rejected
from gateway.logs import event
from gateway.security.as2 import read_as2
from gateway.security.as2_write import build_mdn
from gateway.security.signing import SigningKey
from gateway.transports.as2 import Reply, start_listener
from gateway.transports.durable import make_folder, write_file
from gateway.transports.mailbox import name_refusal

log = logging.getLogger("gateway.as2_receiver")


class LocalReceiver:
    """The Inbox of transports.as2.server, as a partner's server."""

    def __init__(self, as2_id: str, key: SigningKey, peers: Sequence[x509.Certificate],
                 folder: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._as2_id = as2_id
        self._key = key
        self._peers = tuple(peers)
        self._folder = folder
        self._max_bytes = max_bytes
        make_folder(folder)

    def limit_for(self, as2_from: str | None) -> int:
        return self._max_bytes

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Reply:
        return await asyncio.to_thread(self._receive, headers, body)

    def _receive(self, headers: Mapping[str, str], body: bytes) -> Reply:
        message_id = headers.get("Message-ID", "")
        try:
            payload = read_as2(headers, body, keys=[(self._key.certificate,
                                                     self._key.private_key)],
                               partner_certificates=self._peers, max_bytes=self._max_bytes)
        except As2Rejected as exc:
            event(log, "as2_receiver_refused", level=logging.WARNING, message_id=message_id,
                  disposition=exc.disposition, reason=str(exc))
            disposition, mic, text = exc.mdn_disposition, None, str(exc)
            signed, micalg = True, "sha256"
        else:
            path = self._folder / _file_name(payload.filename)
            write_file(path, payload.payload)
            event(log, "as2_receiver_received", message_id=message_id, file=str(path),
                  bytes=len(payload.payload), signed=payload.signed,
                  encrypted=payload.encrypted, encryption=payload.encryption)
            disposition, mic, text = "processed", payload.mic, f"stored as {path.name}"
            signed, micalg = payload.options.signed_receipt, payload.options.micalg
        if not headers.get("Disposition-Notification-To"):
            return Reply(200)
        mdn = build_mdn(original_message_id=message_id, original_recipient=self._as2_id,
                        as2_from=self._as2_id, as2_to=headers.get("AS2-From", ""),
                        message_id=f"<{secrets.token_hex(16)}@{self._as2_id}>",
                        disposition=disposition, mic=mic, text=text,
                        signer=self._key if signed else None, micalg=micalg)
        return Reply(200, mdn.headers, mdn.body)


def _file_name(name: str | None) -> str:
    """The name the sender gave when it is a safe file name, else one of ours."""
    if name and name_refusal(name) is None:
        return name
    return f"as2-{secrets.token_hex(8)}.bin"


async def run_receiver(receiver: LocalReceiver, host: str, port: int, path: str) -> None:
    listener = await start_listener(receiver, host=host, port=port, path=path)
    event(log, "as2_receiver_listening", url=f"http://{host}:{listener.port}{path}")
    try:
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await listener.close()
