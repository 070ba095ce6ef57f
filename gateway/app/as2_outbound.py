"""Outbound AS2: the ``as2`` relay's dispatcher.  It sends two kinds of outbox rows:

- answers (CONTRLs, XML answers, agencies' answers) to partners whose ``as2.url`` is set: the
  answer is signed with our current key, encrypted to the partner's newest valid certificate,
  and POSTed with a Message-ID fixed by the row, so a retry is the same message again (the
  partner's duplicate check answers it with its first MDN).  A synchronous MDN is read,
  verified against the partner's certificates, and its MIC compared with ours: anything but
  ``processed`` with our MIC is a failed send, retried with backoff and alarmed, never dropped
  (Scope.DESTINATION: the partner's later answers wait behind it, in order).  With
  asynchronous receipts the POST's 2xx is the send, and the MDN arrives later at our endpoint
  (as2_inbound), alarmed when it does not within ``async_mdn_wait_seconds``;
- asynchronous MDNs to partners' messages, POSTed as built when the message was taken.

Each send is recorded (table as2_sent and the submission's events) in the transaction that
marks the row dispatched: `gateway track` shows it and its MDN."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from cryptography import x509

from gateway import alarms
from gateway.app import n2n
from gateway.app.relay import file_name
from gateway.app.workers import poll_forever
from gateway.config.load import GatewayConfig
from gateway.config.partners import As2Settings
from gateway.config.settings import As2ServerSettings
from gateway.errors import As2Rejected, ConfigError, PostFailed, StoreError
from gateway.logs import event
from gateway.pipeline.origin import status_of_mdn
from gateway.security.as2 import read_mdn
from gateway.security.as2_write import ReceiptRequest, build_message
from gateway.security.partner_certificates import PartnerCertificate
from gateway.security.signing import Signer
from gateway.store import as2 as as2_store
from gateway.store import n2n as n2n_store
from gateway.store.database import translated_errors
from gateway.store.interchanges import add_event
from gateway.store.outbox import Failure, OutboxRow, Scope
from gateway.transports.as2.client import PostResult, post
from gateway.wire.as2.mic import Mic

log = logging.getLogger("gateway.as2")
T = TypeVar("T")

#: Failed sends of one row after which each further failure is an alarm.
ALARM_AFTER_ATTEMPTS = 3
#: The MIME type of an answer, by its file name's ending.
_CONTENT_TYPES = ((".edi", "application/EDIFACT"), (".xml", "application/xml"),
                  (".txt", "text/plain; charset=utf-8"))


@dataclass(frozen=True, slots=True)
class _Sent:
    message_id: str
    mic: Mic
    disposition: str | None
    mic_matched: bool | None
    mdn_signed: bool


class As2Dispatcher:
    done_event = "as2_sent"

    def __init__(self, config: GatewayConfig,
                 certificates: Mapping[str, Sequence[PartnerCertificate]],
                 signer: Signer, receipt_url: str, pool: Any) -> None:
        """``receipt_url``: where partners POST their asynchronous MDNs (our endpoint)."""
        assert config.settings.as2 is not None
        self._pool = pool
        self._receipt_url = receipt_url
        self._settings: As2ServerSettings = config.settings.as2
        self._config = config
        self._certificates = certificates
        self._signer = signer
        self._session: aiohttp.ClientSession | None = None
        #: Row id -> what to record once it is marked sent (several are sent at once).
        self._sent: dict[int, _Sent] = {}
        #: Row id -> the error disposition of a signed MDN refusing it (certificates: their
        #: status is then not_readable, docs/n2n.md).
        self._refused: dict[int, str] = {}
        # Signing, encrypting and verifying the MDN are CPU work: off the event loop, in a
        # thread of their own (the default executor is the processor's).
        self._crypto = ThreadPoolExecutor(max_workers=1, thread_name_prefix="as2-send")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._crypto.shutdown(wait=False, cancel_futures=True)

    async def _off_loop(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._crypto, work)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def dispatch(self, row: OutboxRow) -> Failure | None:
        if row.properties.get("kind") == "mdn":
            return await self._send_mdn(row)
        partner = self._config.partner(row.destination)
        if partner is None or partner.as2 is None or partner.as2.url is None:
            return Failure(Scope.DESTINATION, f"partner {row.destination!r} has no AS2 url in "
                           "partners.yaml any more; the answer waits until it has one (or "
                           "ops move it)")
        self._refused.pop(row.id, None)  # what an earlier try of the row was answered
        failure = await self._send_answer(row, partner.as2)
        if row.properties.get("kind") == n2n.ROW_KIND and failure is not None and \
                failure.scope is Scope.DESTINATION:
            failure = await self._certificate_failed(row, failure)
        if failure is not None and failure.scope is Scope.DESTINATION and \
                row.attempts + 1 >= ALARM_AFTER_ATTEMPTS:
            event(log, "as2_send_failing", level=logging.ERROR, code=alarms.AS2_SEND_FAILING,
                  partner=row.destination,
                  submission=row.interchange_id, key=row.dispatch_key,
                  attempts=row.attempts + 1, error=failure.error,
                  note="alarm: the answer stays queued and is retried with backoff")
        return failure

    async def _certificate_failed(self, row: OutboxRow, failure: Failure) -> Failure:
        """A certificate of origin not confirmed (docs/n2n.md): pending while it is retried;
        not_readable when the single window answered an error MDN, failed after
        ``n2n.max_attempts`` sends: then no more retries (parked, ``gateway n2n resend``)."""
        attempts = row.attempts + 1
        refused = self._refused.pop(row.id, None)
        status = "not_readable" if refused is not None else "failed" \
            if attempts >= self._config.settings.n2n.max_attempts else "pending"
        number = row.properties.get("certificate")
        try:
            async with translated_errors("recording a certificate's send"), \
                    self._pool.acquire() as connection, connection.transaction():
                await n2n_store.attempted(connection, row.id, status=status, attempts=attempts,
                                          error=failure.error, disposition=refused)
                if status != "pending":
                    await add_event(connection, row.interchange_id, f"n2n_{status}", {
                        "certificate": number, "single_window": row.destination,
                        "attempts": attempts, "error": failure.error}, row.message_id)
        except StoreError as exc:
            return Failure(Scope.CHANNEL, str(exc))
        if status == "pending":
            return failure
        event(log, "n2n_send_failed", level=logging.ERROR, code=alarms.N2N_SEND_FAILED,
              certificate=number, partner=row.destination, status=status, attempts=attempts,
              error=failure.error, submission=row.interchange_id,
              note="alarm: not retried any more; `gateway n2n resend CERT` once fixed")
        return Failure(Scope.UNDELIVERABLE, f"certificate of origin {status} after {attempts} "
                                            f"send(s): {failure.error}")

    async def _send_mdn(self, row: OutboxRow) -> Failure | None:
        headers = [(str(k), str(v)) for k, v in row.properties["headers"]]
        result = await self._post(row.properties["url"], headers, row.body)
        return result if isinstance(result, Failure) else None

    async def _post(self, url: str, headers: Sequence[tuple[str, str]],
                    body: bytes) -> PostResult | Failure:
        """The partner's answer, or a failure of its destination (unreachable, not 2xx)."""
        try:
            result = await post(self._http(), url, headers, body,
                                timeout_seconds=self._settings.send_timeout_seconds)
        except PostFailed as exc:
            return Failure(Scope.DESTINATION, str(exc))
        if not 200 <= result.status < 300:
            return Failure(Scope.DESTINATION, f"{url} answered HTTP {result.status}: "
                                              f"{_snippet(result.body)}")
        return result

    async def _send_answer(self, row: OutboxRow, settings: As2Settings) -> Failure | None:
        try:
            key = self._signer.current(dt.datetime.now(dt.UTC))
            recipient = self._recipient(row.destination)
        except ConfigError as exc:
            return Failure(Scope.DESTINATION, str(exc))
        message_id = _message_id(row, self._settings.id)
        name = file_name(row)
        receipt = ReceiptRequest(signed=True, micalg=settings.signing,
                                 async_url=self._receipt_url
                                 if self._settings.receipt == "async" else None,
                                 to=self._settings.id)
        try:
            message, mic = await self._off_loop(functools.partial(
                build_message, row.body, filename=name, content_type=_content_type(name),
                as2_from=self._settings.id, as2_to=settings.id, message_id=message_id,
                subject=f"{row.properties.get('kind', 'answer')} {name}", signer=key,
                digest=settings.signing, recipients=(recipient,),
                encryption=settings.encryption, compress=settings.compress, receipt=receipt))
        except ConfigError as exc:  # ours: the partner's settings or certificate
            return Failure(Scope.DESTINATION, str(exc))
        assert settings.url is not None
        try:
            await self._sending(row, message_id, mic)
        except StoreError as exc:
            return Failure(Scope.CHANNEL, str(exc))
        result = await self._post(settings.url, message.headers, message.body)
        if isinstance(result, Failure):
            return result
        if receipt.async_url is not None:
            self._sent[row.id] = _Sent(message_id, mic, None, None, False)
            return None
        return await self._check_mdn(row, message_id, mic, result)

    async def _sending(self, row: OutboxRow, message_id: str, mic: Mic) -> None:
        """Recorded and committed before the POST: an asynchronous MDN may come back before
        the relay's own transaction commits, and must find the message it answers."""
        async with translated_errors("recording an AS2 send"), \
                self._pool.acquire() as connection:
            await as2_store.record_sent(connection, as2_store.SentMessage(
                message_id=message_id, outbox_id=row.id, interchange_id=row.interchange_id,
                partner_id=row.destination, mic=mic.header()))

    async def _check_mdn(self, row: OutboxRow, message_id: str, mic: Mic,
                         result: PostResult) -> Failure | None:
        """The synchronous MDN: verified, for this message, processed, with our MIC."""
        pinned = [c.certificate for c in self._certificates.get(row.destination, ())]
        try:
            mdn = await self._off_loop(functools.partial(
                read_mdn, dict(result.headers), result.body, partner_certificates=pinned))
        except As2Rejected as exc:
            return Failure(Scope.DESTINATION, f"the partner's MDN cannot be read or verified: "
                                              f"{exc}")
        report = mdn.report
        problem = mdn_problem(mdn.signed, report.original_message_id, message_id,
                              report.disposition.ok, report.disposition.text(), report.mic, mic)
        if problem is not None:
            if not report.disposition.ok and mdn.signed and \
                    row.properties.get("kind") == n2n.ROW_KIND:  # it could not read it
                self._refused[row.id] = report.disposition.text()
            try:  # what the partner said is kept for `gateway track`, the row stays queued
                await self._negative(message_id, report.disposition.text(), mdn.signed)
            except StoreError as exc:
                return Failure(Scope.CHANNEL, str(exc))
            return Failure(Scope.DESTINATION, problem)
        self._sent[row.id] = _Sent(message_id, mic, report.disposition.text(), True,
                                   mdn.signed)
        return None

    async def _negative(self, message_id: str, disposition: str, signed: bool) -> None:
        async with translated_errors("recording an AS2 MDN"), \
                self._pool.acquire() as connection:
            await as2_store.record_mdn(connection, message_id=message_id,
                                       disposition=disposition, mic_matched=False,
                                       signed=signed)

    def _recipient(self, partner_id: str) -> x509.Certificate:
        """The partner's newest certificate valid now (answers are encrypted to it)."""
        now = dt.datetime.now(dt.UTC)
        valid = [c.certificate for c in self._certificates.get(partner_id, ())
                 if c.certificate.not_valid_before_utc <= now <= c.expires]
        if not valid:
            raise ConfigError(f"partner {partner_id!r} has no AS2 certificate valid now to "
                              "encrypt to (partners.yaml as2.certificates)")
        return max(valid, key=lambda c: c.not_valid_before_utc)

    async def record(self, connection: Any, rows: list[OutboxRow]) -> list[dict[str, Any]]:
        """Relay ``on_done``: each send (and its MDN) in the transaction that marks it sent."""
        return [await self._record(connection, row) for row in rows]

    async def _record(self, connection: Any, row: OutboxRow) -> dict[str, Any]:
        if row.properties.get("kind") == "mdn":
            return {"kind": "mdn", "url": row.properties.get("url"),
                    "message_id": row.properties.get("message_id")}
        sent = self._sent.pop(row.id)
        if sent.disposition is not None:
            await as2_store.record_mdn(connection, message_id=sent.message_id,
                                       disposition=sent.disposition,
                                       mic_matched=sent.mic_matched, signed=sent.mdn_signed)
        if row.properties.get("kind") == n2n.ROW_KIND:
            await _certificate_sent(connection, row, sent)
        return {"file_name": file_name(row), "as2_message_id": sent.message_id,
                "mic": sent.mic.header(),
                "mdn": sent.disposition or "awaited (asynchronous)",
                "mdn_signed": sent.mdn_signed}


async def _certificate_sent(connection: Any, row: OutboxRow, sent: _Sent) -> None:
    """A certificate of origin confirmed by the single window's MDN (delivered, delivered
    with warnings), or sent with its MDN to come (pending until it does)."""
    status = status_of_mdn(sent.disposition, True)
    await n2n_store.attempted(connection, row.id, status=status, attempts=row.attempts + 1,
                              error=None, disposition=sent.disposition,
                              as2_message_id=sent.message_id)
    detail: dict[str, Any] = {"certificate": row.properties.get("certificate"),
                              "single_window": row.destination, "as2_message_id": sent.message_id,
              "mdn": sent.disposition or "awaited (asynchronous)"}
    await add_event(connection, row.interchange_id, f"n2n_{status}", detail, row.message_id)
    event(log, f"n2n_{status}", **detail, submission=row.interchange_id)


def mdn_problem(signed: bool, original: str | None, message_id: str, ok: bool,
                disposition: str, reported: Mic | None, ours: Mic) -> str | None:
    """Why an MDN does not confirm our message, or None when it does."""
    if not signed:
        return "the partner's MDN is not signed; we asked for a signed one"
    if original is not None and original.strip() != message_id:
        return f"the MDN is for {original[:100]!r}, not for {message_id}"
    if not ok:
        return f"the partner answered {disposition}"
    if reported is None or not reported.matches(ours):
        return (f"the MDN's MIC {reported.header() if reported else 'is missing'}; we sent "
                f"{ours.header()}: the partner did not receive what we sent")
    return None


def _message_id(row: OutboxRow, as2_id: str) -> str:
    """Fixed by the row: a retry is the same message (RFC 4130 section 5.3.3)."""
    digest = hashlib.sha256(row.body).hexdigest()[:12]
    return f"<{row.dispatch_key}.{row.id}.{digest}@{as2_id}>"


def _content_type(name: str) -> str:
    return next((kind for suffix, kind in _CONTENT_TYPES if name.endswith(suffix)),
                "application/octet-stream")


def _snippet(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").replace("\n", " ")


class ReceiptWatch:
    """Asynchronous MDNs that do not come: each of our messages still unconfirmed
    ``async_mdn_wait_seconds`` after it was sent is an alarm, once, in the log and in the
    submission's history (the answer was delivered as far as HTTP goes; whether the partner
    could read it is not known)."""

    def __init__(self, pool: Any, settings: As2ServerSettings) -> None:
        self._pool = pool
        self._wait = settings.async_mdn_wait_seconds

    async def run(self) -> None:
        await poll_forever("as2-receipts", self.check, asyncio.Event(),
                           min(60.0, max(1.0, self._wait / 4)))

    async def check(self) -> bool:
        async with translated_errors("AS2 receipts"), self._pool.acquire() as connection, \
                connection.transaction():
            missing = await as2_store.unconfirmed(connection, self._wait)
            for sent in missing:
                await add_event(connection, sent.interchange_id, "as2_mdn_missing", {
                    "message_id": sent.message_id, "waited_seconds": self._wait})
        for sent in missing:
            event(log, "as2_mdn_missing", level=logging.ERROR, code=alarms.AS2_MDN_MISSING,
                  partner=sent.partner_id,
                  message_id=sent.message_id, submission=sent.interchange_id,
                  waited_seconds=self._wait,
                  note="alarm: no MDN came for this answer; ask the partner whether it "
                       "arrived, `gateway replay` sends it again")
        return False
