"""What the AS2 endpoint does with one request (RFC 4130): find the partner, unwrap and check
the message, commit the payload through the intake (the same path as an SFTP upload), and
answer with an MDN.

- The partner is the one whose AS2 name is AS2-From, and AS2-To must be ours; anything else is
  answered ``authentication-failed`` and nothing is kept.
- A ``processed`` MDN is given only once the payload and the Message-ID are committed together
  (DESIGN rule 1); a failure to commit is an HTTP 503, so the partner sends it again.
- A Message-ID the partner used before for a message we took gets the MDN it got then, and
  nothing is routed again (rule 2).  The same payload under a new Message-ID is taken and
  answered ``processed/warning: duplicate-document``; the pipeline's own duplicate check then
  routes it no second time.
- Every refusal is an MDN ``processed/error: <modifier>`` with the reason (rule 3); a
  decryption failure says no more than that, after the same work (RFC 3218).
- An asynchronous MDN (Receipt-Delivery-Option) goes through the outbox, committed with the
  payload, so it is retried until delivered.  A refusal of a request that did not
  authenticate is answered in the HTTP response instead: the gateway never POSTs to a URL
  that an unauthenticated request names (it could be anyone's)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import hashlib
import logging
import secrets
import ssl
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway import alarms
from gateway.app.as2_outbound import mdn_problem
from gateway.app.as2_unwrap import Unwrapping, UnwrappingUnavailable
from gateway.app.intake import Intake
from gateway.config.load import GatewayConfig
from gateway.config.partners import As2Settings, Partner
from gateway.config.settings import As2ServerSettings
from gateway.errors import (
    As2InsufficientSecurity,
    As2ProcessingError,
    As2Rejected,
    As2UnknownPartner,
    As2UnsupportedMic,
    ConfigError,
    StoreError,
)
from gateway.logs import event
from gateway.pipeline.origin import status_of_mdn
from gateway.security.as2 import As2Payload, read_mdn
from gateway.security.as2_write import HttpMessage
from gateway.security.partner_certificates import PartnerCertificate
from gateway.security.signing import Signer
from gateway.store import as2 as as2_store
from gateway.store import n2n as n2n_store
from gateway.store import outbox
from gateway.store.database import translated_errors
from gateway.store.interchanges import add_event
from gateway.transports.as2 import As2Listener, Reply, start_listener
from gateway.wire.as2.mic import Mic, parse_mic, parse_options
from gateway.wire.as2.mime import parameters, parse_entity, split_multipart

log = logging.getLogger("gateway.as2")

#: The longest Message-ID kept (RFC 5322 section 2.1.1: a line is at most 998 characters).
MAX_MESSAGE_ID = 998
#: Text of the MDN for a message that was taken.
PROCESSED_TEXT = ("The AS2 message was received, its payload is stored, and it will be "
                  "acknowledged in its own syntax (CONTRL or an XML answer).")


@dataclass(frozen=True, slots=True)
class As2Partner:
    partner: Partner
    #: Its certificates (two during a rotation): its signatures are verified against them.
    certificates: tuple[x509.Certificate, ...]


@dataclass(frozen=True, slots=True)
class _Request:
    """What the MDN answers: the request's identity, and what it asked of the MDN."""

    message_id: str
    as2_from: str
    as2_to: str
    #: Disposition-Notification-To was given (RFC 4130 section 7.3).
    wants_mdn: bool
    signed_receipt: bool
    micalg: str
    micalg_unsupported: bool
    async_url: str | None


class _MessageIdTaken(Exception):
    """Rolls back a commit that lost the race for its Message-ID to a concurrent retry."""


class As2Inbox:
    def __init__(self, settings: As2ServerSettings, partners: Sequence[As2Partner],
                 signer: Signer, pool: Any, intake: Intake,
                 wake_as2: asyncio.Event) -> None:
        self._settings = settings
        self._partners = {p.partner.as2.id: p for p in partners if p.partner.as2 is not None}
        self._signer = signer
        self._pool = pool
        self._intake = intake
        self._wake = wake_as2
        # Unwrapping and MDN signing are CPU work off the event loop, in processes of their
        # own (as2_unwrap): a flood of AS2 messages takes neither the loop nor the default
        # executor the processor's work needs (rule 6).
        self._unwrapping = Unwrapping(signer, settings.unwrap_processes)
        # Asynchronous MDNs to our messages are few: a thread reads them.
        self._mdns = ThreadPoolExecutor(max_workers=1, thread_name_prefix="as2-mdn")
        # RSA keys decrypt (CMS key transport, RFC 5652 section 6.2.1); all of them, so a
        # partner still encrypting to our previous certificate during a rotation is read.
        if not any(isinstance(k.private_key, rsa.RSAPrivateKey) for k in signer.keys):
            event(log, "as2_cannot_decrypt", level=logging.ERROR,
                  note="no signing key is RSA: encrypted AS2 messages will be refused "
                       "(decryption-failed); add an RSA key and certificate under signing.keys")

    async def start(self) -> None:
        """The unwrapping processes started (see Unwrapping.warm)."""
        await self._unwrapping.warm()

    def close(self) -> None:
        self._unwrapping.close()
        self._mdns.shutdown(wait=False, cancel_futures=True)

    def limit_for(self, as2_from: str | None) -> int:
        """The largest body read from a request naming ``as2_from``."""
        known = self._partners.get(_unquoted(as2_from or ""))
        if known is None or known.partner.as2 is None:
            return self._settings.max_unknown_bytes
        return known.partner.as2.max_bytes

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Reply:
        try:
            return await self._receive(headers, body)
        except UNAVAILABLE as exc:  # ours (rule 4): 503, the partner sends it again
            event(log, "as2_unavailable", level=logging.ERROR, error=str(exc))
            return unavailable_reply(exc)

    async def _receive(self, headers: Mapping[str, str], body: bytes) -> Reply:
        request = self._request(headers)
        known = self._partners.get(request.as2_from)
        try:
            if known is None or request.as2_to != self._settings.id:
                raise As2UnknownPartner(self._unknown(request))
            if not request.message_id:
                raise As2ProcessingError("no Message-ID (RFC 4130 section 5.3.3): a message "
                                         "must carry one, unique to it")
            if request.micalg_unsupported:
                raise As2UnsupportedMic("the MIC algorithms required are none of sha1, "
                                        "sha224, sha256, sha384, sha512; nothing was kept")
            partner = known.partner
            if is_mdn(headers, body):  # the receipt for one of our messages (RFC 4130 7.3)
                return await self._take_mdn(known, headers, body)
            # Read (authenticated) before a repeated Message-ID is answered with its first
            # MDN: that MDN is for the partner, not for whoever knows the Message-ID.
            payload = self._checked(known, await self._unwrapping.read(
                headers, body, known.certificates, _settings_of(partner).max_bytes))
        except As2Rejected as exc:
            return await self._refuse(request, known, exc)
        digest = hashlib.sha256(payload.payload).digest()
        earlier, seen = await self._lookup(partner.id, request.message_id, digest)
        if earlier is not None:
            return self._repeat(partner.id, request, earlier)
        return await self._take(partner, request, payload, digest, seen)

    # --- asynchronous MDNs to what we sent ---------------------------------------------------

    async def _take_mdn(self, known: As2Partner, headers: Mapping[str, str],
                        body: bytes) -> Reply:
        """An MDN that cannot be taken is answered with an HTTP 400 and its reason, never
        with an MDN (an MDN is not acknowledged by another, RFC 3798 section 2.1)."""
        try:
            return await self._record_mdn(known, headers, body)
        except As2Rejected as exc:
            event(log, "as2_mdn_refused", level=logging.WARNING, partner=known.partner.id,
                  reason=str(exc))
            return Reply.text(400, f"this MDN was not taken: {exc}")

    async def _record_mdn(self, known: As2Partner, headers: Mapping[str, str],
                          body: bytes) -> Reply:
        """Verified against the partner's certificates (an unsigned one is refused: it would
        let anyone who knows a Message-ID fail a send, or a delivered certificate of origin),
        matched to our message, recorded with the submission it answered; a negative one or
        a wrong MIC is an alarm."""
        mdn = await asyncio.get_running_loop().run_in_executor(
            self._mdns, functools.partial(read_mdn, headers, body,
                                            partner_certificates=known.certificates))
        original = (mdn.report.original_message_id or "").strip()
        if not mdn.signed:  # nobody vouches for it: it changes no send's record or status
            raise As2ProcessingError("the MDN is not signed: we ask for signed receipts, and "
                                     "an unsigned one could come from anyone")
        async with translated_errors("recording an AS2 MDN"), \
                self._pool.acquire() as connection, connection.transaction():
            sent = await as2_store.sent_message(connection, original)
            if sent is None or sent.partner_id != known.partner.id:
                raise As2ProcessingError(f"no message of ours to {known.partner.id} has the "
                                         f"Message-ID {original[:100]!r}")
            disposition = mdn.report.disposition.text()
            problem = mdn_problem(mdn.signed, original, sent.message_id,
                                  mdn.report.disposition.ok, disposition, mdn.report.mic,
                                  parse_mic(sent.mic))
            await as2_store.record_mdn(connection, message_id=sent.message_id,
                                       disposition=disposition, mic_matched=problem is None,
                                       signed=mdn.signed)
            await add_event(connection, sent.interchange_id, "as2_mdn", {
                "message_id": sent.message_id, "disposition": disposition,
                "signed": mdn.signed, "confirmed": problem is None, "problem": problem})
            certificate = await n2n_store.attempted(
                connection, sent.outbox_id, status=status_of_mdn(disposition, problem is None),
                attempts=0, error=problem, disposition=disposition)
            if certificate is not None:  # a certificate of origin's status (docs/n2n.md)
                await add_event(connection, sent.interchange_id, f"n2n_{certificate.status}", {
                    "certificate": certificate.certificate_number, "mdn": disposition,
                    "single_window": known.partner.id}, certificate.message_id)
        event(log, "as2_mdn" if problem is None else "as2_send_unconfirmed",
              level=logging.INFO if problem is None else logging.ERROR,
              partner=known.partner.id, message_id=sent.message_id, disposition=disposition,
              problem=problem, submission=sent.interchange_id)
        if certificate is not None and certificate.status == "not_readable":
            # as for a synchronous MDN (as2_outbound): the certificate is not sent again
            event(log, "n2n_send_failed", level=logging.ERROR, code=alarms.N2N_SEND_FAILED,
                  certificate=certificate.certificate_number, partner=known.partner.id,
                  status=certificate.status, attempts=certificate.attempts, error=problem,
                  submission=sent.interchange_id,
                  note="alarm: not retried any more; `gateway n2n resend CERT` once fixed")
        return Reply(200)

    # --- reading ----------------------------------------------------------------------------

    def _request(self, headers: Mapping[str, str]) -> _Request:
        def header(name: str) -> str:
            return _single_line(headers.get(name, ""))

        try:
            options = parse_options(headers.get("Disposition-Notification-Options"))
            signed, micalg = options.signed_receipt, options.micalg
            unsupported = options.micalg_unsupported
        except As2Rejected:
            signed, micalg, unsupported = False, "sha256", False
        wants_mdn = bool(header("Disposition-Notification-To"))
        return _Request(
            message_id=header("Message-ID")[:MAX_MESSAGE_ID],
            as2_from=_unquoted(header("AS2-From")), as2_to=_unquoted(header("AS2-To")),
            wants_mdn=wants_mdn, signed_receipt=signed, micalg=micalg,
            micalg_unsupported=unsupported,
            async_url=(header("Receipt-Delivery-Option") or None) if wants_mdn else None)

    def _checked(self, known: As2Partner, payload: As2Payload) -> As2Payload:
        """The payload, if it was protected as the partner's settings require."""
        settings = _settings_of(known.partner)
        if settings.require_signature and not payload.signed:
            raise As2InsufficientSecurity("the message is not signed; this partner's messages "
                                          "must be (partners.yaml as2.require_signature)")
        if settings.require_encryption and not payload.encrypted:
            raise As2InsufficientSecurity("the message is not encrypted; this partner's "
                                          "messages must be (as2.require_encryption)")
        if payload.verified is not None:
            digest = payload.verified.signer.digest_algorithm
            if digest not in settings.signature_digests:
                raise As2InsufficientSecurity(
                    f"signed with {digest}; this partner may sign with "
                    f"{', '.join(settings.signature_digests)} (as2.signature_digests)")
        return payload

    def _unknown(self, request: _Request) -> str:
        if request.as2_from not in self._partners:
            return (f"AS2-From {request.as2_from[:128]!r} is not a partner of this gateway "
                    "(partners.yaml as2.id)")
        return f"AS2-To {request.as2_to[:128]!r} is not this gateway ({self._settings.id})"

    # --- answering --------------------------------------------------------------------------

    async def _lookup(self, partner_id: str, message_id: str,
                      digest: bytes) -> tuple[as2_store.ReceivedMessage | None, bool]:
        """The partner's earlier message with this Message-ID, and whether it sent this
        payload before (one round trip)."""
        async with translated_errors("looking up an AS2 Message-ID"), \
                self._pool.acquire() as connection:
            return await as2_store.lookup(connection, partner_id, message_id, digest)

    def _repeat(self, partner_id: str, request: _Request,
                earlier: as2_store.ReceivedMessage) -> Reply:
        event(log, "as2_message_repeated", partner=partner_id, message_id=request.message_id,
              submission=earlier.interchange_id,
              note="answered with its first MDN; nothing routed again")
        if earlier.mdn_headers is None or earlier.mdn_body is None:
            return Reply(200)  # none was asked for then
        # In the response even when an asynchronous one is asked for: the partner sends again
        # because it has no MDN, and the first may still be on its way (or never arrive).
        return Reply(200, earlier.mdn_headers, earlier.mdn_body)

    async def _refuse(self, request: _Request, known: As2Partner | None,
                      exc: As2Rejected) -> Reply:
        event(log, "as2_refused", level=logging.WARNING, as2_from=request.as2_from[:128],
              partner=None if known is None else known.partner.id,
              message_id=request.message_id, disposition=exc.disposition, reason=str(exc),
              cause=repr(exc.__cause__) if exc.__cause__ is not None else None)
        if not request.wants_mdn:
            return Reply.text(400, f"the AS2 message was not accepted ({exc.disposition}): "
                                   f"{exc}; nothing of it was kept")
        mdn = await self._mdn(request, exc.mdn_disposition, None,
                              f"The AS2 message was not accepted: {exc}\nNothing of it was "
                              "kept.")
        # Never POSTed to the URL it names: the request did not authenticate (see above).
        return _reply(mdn)

    async def _take(self, partner: Partner, request: _Request, payload: As2Payload,
                    digest: bytes, seen: bool) -> Reply:
        if request.async_url is not None and not receipt_url_allowed(partner,
                                                                     request.async_url):
            event(log, "as2_receipt_url_refused", level=logging.WARNING, partner=partner.id,
                  message_id=request.message_id, url=request.async_url[:200],
                  note="answered synchronously: the URL is not one of the partner's "
                       "(partners.yaml as2.receipt_urls)")
            request = dataclasses.replace(request, async_url=None)
        disposition = "processed/warning: duplicate-document" if seen else "processed"
        mdn = await self._mdn(request, disposition, payload.mic, PROCESSED_TEXT) \
            if request.wants_mdn else None

        async def record(connection: Any, interchange_id: int) -> None:
            if not await as2_store.record_received(
                    connection, partner_id=partner.id, message_id=request.message_id,
                    interchange_id=interchange_id, payload_sha256=digest,
                    disposition=disposition,
                    mdn_headers=None if mdn is None else mdn.headers,
                    mdn_body=None if mdn is None else mdn.body):
                raise _MessageIdTaken
            await add_event(connection, interchange_id, "as2_received", _received_detail(
                request, payload, disposition))
            if request.async_url is not None and mdn is not None:
                await outbox.add(
                    connection, interchange_id=interchange_id, message_id=None,
                    channel="as2", destination=f"mdn:{partner.id}",
                    dispatch_key=f"as2-mdn-{interchange_id}", body=mdn.body,
                    properties={"kind": "mdn", "url": request.async_url,
                                "headers": [list(h) for h in mdn.headers],
                                "partner": partner.id, "message_id": request.message_id})

        name = _file_name(payload, request.message_id)
        try:
            submission = await self._intake.submit(partner.id, "as2", name, payload.payload,
                                                   also=record)
        except _MessageIdTaken:
            earlier, _ = await self._lookup(partner.id, request.message_id, digest)
            assert earlier is not None  # it was taken by the commit that won
            return self._repeat(partner.id, request, earlier)
        if request.async_url is not None:
            self._wake.set()
            event(log, "as2_received", partner=partner.id, message_id=request.message_id,
                  submission=submission, disposition=disposition, mdn="async")
            return Reply(200)
        event(log, "as2_received", partner=partner.id, message_id=request.message_id,
              submission=submission, disposition=disposition,
              mdn="sync" if mdn is not None else "none")
        return Reply(200) if mdn is None else _reply(mdn)

    async def _mdn(self, request: _Request, disposition: str, mic: Mic | None,
                   text: str) -> HttpMessage:
        """Built, and signed, in the unwrapping threads: a signature is CPU work too."""
        signer = None
        if request.signed_receipt:
            try:
                signer = self._signer.current(dt.datetime.now(dt.UTC))
            except ConfigError as exc:  # ours: no certificate valid now
                raise _Unavailable(str(exc)) from exc
        return await self._unwrapping.mdn(
            signer, original_message_id=request.message_id,
            original_recipient=self._settings.id, as2_from=self._settings.id,
            as2_to=request.as2_from, message_id=_new_message_id(self._settings.id),
            disposition=disposition, mic=mic, text=text, micalg=request.micalg)


def as2_partners(config: GatewayConfig,
                 certificates: Mapping[str, Sequence[PartnerCertificate]]) -> list[As2Partner]:
    """The partners that speak AS2, each with its certificates."""
    return [As2Partner(p, tuple(c.certificate for c in certificates.get(p.id, ())))
            for p in config.partners if p.as2 is not None]


async def start_endpoint(config: GatewayConfig, inbox: As2Inbox) -> As2Listener:
    """The AS2 listener of ``gateway.yaml`` ``as2:``, and its HTTPS one when configured."""
    settings = config.settings.as2
    assert settings is not None
    https = None
    if settings.https is not None:
        base = config.source.parent
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(base / settings.https.certificate,
                                    base / settings.https.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{config.source}: as2.https: cannot load the certificate "
                              f"and key: {exc}") from exc
        https = (settings.https.host, settings.https.port, context)
    return await start_listener(inbox, host=settings.host, port=settings.port,
                                path=settings.path, https=https)


def receipt_url_allowed(partner: Partner, url: str) -> bool:
    """Whether an asynchronous MDN may be POSTed to ``url``: one of the partner's
    ``receipt_urls`` prefixes, or, without them, on the origin of its ``url``.  A signed
    message could otherwise make the gateway POST to any address it reaches (RFC 4130 section
    11 leaves this to the receiver)."""
    assert partner.as2 is not None
    allowed = partner.as2.receipt_urls or (
        () if partner.as2.url is None else (_origin(partner.as2.url) + "/",))
    return any(url.startswith(prefix) for prefix in allowed) and not _dot_segments(url)


def _dot_segments(url: str) -> bool:
    """Whether the path has "." or ".." segments, percent-encoded too: the HTTP client removes
    them (RFC 3986 section 5.2.4), so "PREFIX../admin" would be POSTed outside the prefix."""
    return any(segment in (".", "..") for segment in unquote(urlsplit(url).path).split("/"))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_mdn(headers: Mapping[str, str], body: bytes) -> bool:
    """An MDN (multipart/report, maybe inside multipart/signed), not a message: told by its
    Content-Type, or the signed part's (RFC 4130 section 7.4.2)."""
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    try:
        content_type = parameters(value)
        if content_type.value == "multipart/report":
            return True
        if content_type.value != "multipart/signed":
            return False
        first = split_multipart(body, content_type.get("boundary"))[0]
        return parse_entity(first).content_type.value == "multipart/report"
    except (As2Rejected, IndexError):
        return False


def _reply(message: HttpMessage) -> Reply:
    return Reply(200, message.headers, message.body)


class _Unavailable(Exception):
    """Ours (the database down, no valid key): an HTTP 503, and the partner tries again."""


def _settings_of(partner: Partner) -> As2Settings:
    settings = partner.as2
    assert settings is not None  # only partners with as2 settings are As2Partners
    return settings


def _received_detail(request: _Request, payload: As2Payload,
                     disposition: str) -> dict[str, Any]:
    signer = payload.verified.signer if payload.verified is not None else None
    return {"message_id": request.message_id, "as2_from": request.as2_from,
            "signed": payload.signed, "encrypted": payload.encrypted,
            "compressed": payload.compressed, "encryption": payload.encryption,
            "signer": None if signer is None else signer.subject,
            "signer_certificate_sha256": None if signer is None else signer.certificate_sha256,
            "digest": None if signer is None else signer.digest_algorithm,
            "mic": payload.mic.header(), "disposition": disposition,
            "mdn": "async" if request.async_url else "sync"}


def _file_name(payload: As2Payload, message_id: str) -> str:
    """The Content-Disposition filename, or the Message-ID's local part: it names the
    answers (transports.mailbox.answer_name makes any name safe)."""
    if payload.filename:
        return payload.filename[:200]
    local = message_id.strip("<>").partition("@")[0]
    return f"as2-{local[:100] or 'message'}"


def _single_line(value: str) -> str:
    """A header value on one line, without control characters (it is echoed in the MDN)."""
    return "".join(ch for ch in value if ch.isprintable()).strip()


def _unquoted(name: str) -> str:
    """RFC 4130 section 6.2: an AS2 name may be quoted."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name


def _new_message_id(as2_id: str) -> str:
    return f"<{secrets.token_hex(16)}@{as2_id}>"


def unavailable_reply(exc: BaseException) -> Reply:
    """What a failure of ours while taking a message answers: 503, send again later."""
    # the cause is logged, not told: the partner need not learn our database's address
    return Reply.text(503, "the gateway cannot take AS2 messages right now; nothing "
                           "was kept: send it again later")


#: What the endpoint turns into ``unavailable_reply``.
UNAVAILABLE = (_Unavailable, StoreError, UnwrappingUnavailable)
