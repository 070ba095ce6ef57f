"""Reading an AS2 message (RFC 4130) and an MDN: the MIME layers undone, the signature
verified against the partner's pinned certificates, the MIC computed.  Pure: bytes in,
values out, no I/O.

It lives in security, not in wire/as2 where the MIME codec is: it decrypts and verifies, and
the import-linter layers put wire below security (wire may not import it) and pipeline beside
it (neither may import the other).

Layers (RFC 4130 section 2.4.2, RFC 5402 section 3): application/pkcs7-mime with
smime-type enveloped-data (decrypted) or compressed-data (inflated), multipart/signed with
an application/pkcs7-signature (RFC 1847, verified over the first part's bytes as received),
then the payload.  Each layer kind at most once, so at most three layers over the payload:
what nests deeper is refused before any work is done on it.

Every refusal is an As2Rejected whose class names the MDN disposition (errors.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from gateway.errors import (
    As2AuthenticationFailed,
    As2DecompressionFailed,
    As2DecryptionFailed,
    As2IntegrityCheckFailed,
    As2ProcessingError,
    ConfigError,
    DecompressionFailed,
    DecryptionFailed,
    DigestMismatch,
    SignatureInvalid,
)
from gateway.security.chain import fingerprint
from gateway.security.compressed import decompress
from gateway.security.envelope import decrypt_enveloped
from gateway.security.verify import Verified, verify_pinned
from gateway.wire.as2.mdn import DispositionReport, parse_report_fields
from gateway.wire.as2.mic import Mic, NotificationOptions, compute_mic, parse_options
from gateway.wire.as2.mime import Entity, Headers, canonical, parse_entity, split_multipart

_PKCS7_MIME = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_PKCS7_SIGNATURE = frozenset({"application/pkcs7-signature",
                              "application/x-pkcs7-signature"})
_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
_AUTH_ENVELOPED_DATA = "1.2.840.113549.1.9.16.1.23"
_COMPRESSED_DATA = "1.2.840.113549.1.9.16.1.9"
#: The largest human-readable explanation of an MDN kept.
MAX_MDN_TEXT = 4096

Keys = Sequence[tuple[x509.Certificate, PrivateKeyTypes]]


@dataclass(frozen=True, slots=True)
class As2Payload:
    """What an AS2 message carried and how it was protected."""

    payload: bytes
    #: The payload entity's Content-Type (lower-cased, without parameters).
    content_type: str
    #: Content-Disposition filename as the partner wrote it (unchecked: not a path to use).
    filename: str | None
    signed: bool
    encrypted: bool
    compressed: bool
    #: The partner certificate that signed, None when unsigned.
    signer: x509.Certificate | None
    verified: Verified | None
    #: What the MDN reports as Received-Content-MIC (RFC 4130 section 7.3.1).
    mic: Mic
    #: The Disposition-Notification-Options asked for (signed MDN? which micalg?).
    options: NotificationOptions
    #: "aes256-cbc", "3des-cbc", ... when encrypted.
    encryption: str | None


@dataclass(frozen=True, slots=True)
class Mdn:
    """A message disposition notification as read and, when signed, verified."""

    #: The MDN's own Message-ID header, when given.
    message_id: str | None
    report: DispositionReport
    signed: bool
    signer: x509.Certificate | None
    verified: Verified | None
    #: The human-readable part (first text/plain), cut to MAX_MDN_TEXT characters.
    text: str


def read_as2(headers: Mapping[str, str], body: bytes, *, keys: Keys,
             partner_certificates: Sequence[x509.Certificate], max_bytes: int,
             check_validity: bool = True, now: dt.datetime | None = None) -> As2Payload:
    """The payload of an AS2 request (its HTTP headers and body).  ``keys``: ours, to
    decrypt; ``partner_certificates``: the sender's, pinned, to verify; ``max_bytes``: the
    largest body, decrypted content and decompressed content accepted."""
    if len(body) > max_bytes:
        raise As2ProcessingError(f"the message is {len(body)} bytes; at most {max_bytes}")
    top = Entity(Headers.of(headers), body, body)
    options = parse_options(top.headers.get("disposition-notification-options"))
    entity = top
    decrypted: bytes | None = None
    signed_content: bytes | None = None
    verified: Verified | None = None
    signer: x509.Certificate | None = None
    encryption: str | None = None
    seen: set[str] = set()
    while True:
        kind = _layer(entity)
        if kind == "payload":
            break
        if kind in seen:
            raise As2ProcessingError(f"a second {kind} layer (RFC 4130 nests each at most "
                                     "once)")
        seen.add(kind)
        if kind == "encrypted":
            content, encryption = _decrypt(entity, keys, max_bytes)
            if decrypted is None and signed_content is None:
                decrypted = content
            entity = _inner(content, top)
        elif kind == "compressed":
            entity = _inner(_decompress(entity, max_bytes), top)
        else:
            signed_content, signature = _signed_parts(entity)
            signed_content, verified = _verify(signed_content, signature,
                                               partner_certificates, check_validity, now)
            signer = _signer(verified, partner_certificates)
            entity = parse_entity(signed_content)
    # RFC 4130 section 7.3.1: signed -> the signed entity; encrypted only -> the decrypted
    # entity; neither -> the body without headers.
    mic_source = (signed_content if signed_content is not None
                  else decrypted if decrypted is not None else body)
    payload = entity.decoded()
    if len(payload) > max_bytes:
        raise As2ProcessingError(f"the payload is {len(payload)} bytes; at most {max_bytes}")
    return As2Payload(
        payload=payload, content_type=entity.content_type.value, filename=entity.filename,
        signed="signed" in seen, encrypted="encrypted" in seen,
        compressed="compressed" in seen, signer=signer, verified=verified,
        mic=compute_mic(mic_source, options.micalg), options=options, encryption=encryption)


def read_mdn(headers: Mapping[str, str], body: bytes, *,
             partner_certificates: Sequence[x509.Certificate], max_bytes: int = 1 << 20,
             check_validity: bool = True, now: dt.datetime | None = None) -> Mdn:
    """An MDN (RFC 4130 section 7.4): multipart/report, maybe inside multipart/signed,
    whose signature is then verified against the partner's ``partner_certificates``."""
    if len(body) > max_bytes:
        raise As2ProcessingError(f"the MDN is {len(body)} bytes; at most {max_bytes}")
    top = Entity(Headers.of(headers), body, body)
    entity = top
    verified: Verified | None = None
    signer: x509.Certificate | None = None
    if entity.content_type.value == "multipart/signed":
        content, signature = _signed_parts(entity)
        content, verified = _verify(content, signature, partner_certificates,
                                    check_validity, now)
        signer = _signer(verified, partner_certificates)
        entity = parse_entity(content)
    content_type = entity.content_type
    if content_type.value != "multipart/report":
        raise As2ProcessingError(f"an MDN of type {content_type.value[:60]!r}; "
                                 "multipart/report is expected (RFC 4130 section 7.4.2)")
    report: DispositionReport | None = None
    text = ""
    for part in split_multipart(entity.body, content_type.get("boundary")):
        inner = parse_entity(part)
        kind = inner.content_type.value
        if kind == "message/disposition-notification" and report is None:
            report = parse_report_fields(inner.decoded())
        elif kind == "text/plain" and not text:
            text = inner.decoded()[:MAX_MDN_TEXT].decode("utf-8", "replace")
    if report is None:
        raise As2ProcessingError("the MDN has no message/disposition-notification part")
    return Mdn(top.headers.get("message-id"), report, verified is not None, signer,
               verified, text)


def _inner(content: bytes, top: Entity) -> Entity:
    """The MIME entity inside a decrypted or decompressed layer.  RFC 4130 wants one, with
    its Content-Type; Mendelson sends an encrypted-only payload bare (no headers).  What has
    no Content-Type among headers is such a bare payload: it keeps the request's filename."""
    try:
        entity = parse_entity(content)
    except As2ProcessingError:
        entity = None
    if entity is not None and entity.headers.get("content-type") is not None:
        return entity
    disposition = top.headers.get("content-disposition")
    fields = (("content-type", "application/octet-stream"),
              *((("content-disposition", disposition),) if disposition else ()))
    return Entity(Headers(fields), content, content)


def _layer(entity: Entity) -> str:
    """encrypted, compressed, signed or payload."""
    content_type = entity.content_type
    if content_type.value == "multipart/signed":
        return "signed"
    if content_type.value not in _PKCS7_MIME:
        return "payload"
    smime_type = (content_type.get("smime-type") or "").lower()
    # RFC 8551 section 3.2.2: AuthEnvelopedData (AES-GCM) is authEnveloped-data, as OpenSSL
    # labels it; some AS2 products label it enveloped-data: the ContentInfo tells anyway.
    if smime_type in ("enveloped-data", "authenveloped-data"):
        return "encrypted"
    if smime_type == "compressed-data":
        return "compressed"
    if smime_type:
        raise As2ProcessingError(f"unsupported smime-type {smime_type[:40]!r} (AS2 sends "
                                 "enveloped-data, authEnveloped-data or compressed-data)")
    # No smime-type (RFC 5751 section 3.2.2 makes it optional): the ContentInfo says.
    oid = _content_info_type(entity.decoded())
    if oid in (_ENVELOPED_DATA, _AUTH_ENVELOPED_DATA):
        return "encrypted"
    if oid == _COMPRESSED_DATA:
        return "compressed"
    raise As2ProcessingError("an application/pkcs7-mime that is neither enveloped nor "
                             "compressed data")


def _content_info_type(data: bytes) -> str | None:
    """The contentType OID at the start of a ContentInfo (SEQUENCE, then an OID), read by
    hand: enough to tell the layers apart, the real reading is done by the layer's reader."""
    position = 1
    if len(data) < 4 or data[0] != 0x30:
        return None
    length = data[position]
    position += 1 + (length & 0x7F if length & 0x80 else 0)
    if position + 2 > len(data) or data[position] != 0x06:
        return None
    size = data[position + 1]
    body = data[position + 2:position + 2 + size]
    if size > 0x7F or len(body) != size or not body:
        return None
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return None
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _decrypt(entity: Entity, keys: Keys, max_bytes: int) -> tuple[bytes, str]:
    try:
        decrypted = decrypt_enveloped(entity.decoded(), keys, max_bytes=max_bytes)
    except DecryptionFailed as exc:
        # The text stays DecryptionFailed's one text (RFC 3218); the reason is in __cause__.
        raise As2DecryptionFailed(str(exc)) from exc
    return decrypted.content, decrypted.algorithm


def _decompress(entity: Entity, max_bytes: int) -> bytes:
    try:
        return decompress(entity.decoded(), max_bytes)
    except DecompressionFailed as exc:
        raise As2DecompressionFailed(str(exc)) from exc


def _signed_parts(entity: Entity) -> tuple[bytes, bytes]:
    """The first part's bytes and the decoded signature of a multipart/signed (RFC 1847
    section 2.1: exactly two parts, the second the signature of the protocol named)."""
    content_type = entity.content_type
    protocol = (content_type.get("protocol") or "").lower()
    if protocol not in _PKCS7_SIGNATURE:
        raise As2ProcessingError(f"a multipart/signed with protocol {protocol[:60]!r}; "
                                 "application/pkcs7-signature is expected")
    parts = split_multipart(entity.body, content_type.get("boundary"))
    if len(parts) != 2:
        raise As2ProcessingError(f"a multipart/signed with {len(parts)} parts, not two "
                                 "(RFC 1847 section 2.1)")
    signature = parse_entity(parts[1])
    if signature.content_type.value not in _PKCS7_SIGNATURE:
        raise As2ProcessingError(f"the signature part is {signature.content_type.value[:60]!r}"
                                 ", not application/pkcs7-signature")
    return parts[0], signature.decoded()


def _verify(content: bytes, signature: bytes, pinned: Sequence[x509.Certificate],
            check_validity: bool, now: dt.datetime | None) -> tuple[bytes, Verified]:
    """The signed bytes as received or, if only those verify, canonical: some proxies and
    stores turn CRLFs into LFs, and what is signed is canonical (RFC 5751 section 3.1.1):
    MIME headers always in CRLFs, a binary body as it is, a text body in CRLFs.  Returns the
    bytes that verified, which the MIC covers."""
    if not pinned:
        raise As2AuthenticationFailed("a signed message, but no certificate of the partner "
                                      "is configured to verify it")
    try:
        return content, verify_pinned(content, signature, pinned,
                                      check_validity=check_validity, now=now)
    except (SignatureInvalid, ConfigError) as exc:
        first = exc
    for fixed in _canonical_forms(content):
        try:
            return fixed, verify_pinned(fixed, signature, pinned,
                                        check_validity=check_validity, now=now)
        except (SignatureInvalid, ConfigError):
            continue
    if isinstance(first, DigestMismatch):
        raise As2IntegrityCheckFailed(str(first)) from first
    raise As2AuthenticationFailed(str(first)) from first


def _canonical_forms(content: bytes) -> tuple[bytes, ...]:
    """The other forms the signer may have signed: headers in CRLFs with the body as is,
    then everything in CRLFs; each only when it differs from what was tried before."""
    try:
        entity = parse_entity(content)
    except As2ProcessingError:
        return ()
    headers = content[:len(content) - len(entity.body)]
    forms = [canonical(headers) + entity.body, canonical(content)]
    unique: list[bytes] = []
    for form in forms:
        if form != content and form not in unique:
            unique.append(form)
    return tuple(unique)


def _signer(verified: Verified, pinned: Sequence[x509.Certificate]) -> x509.Certificate:
    """The pinned certificate of the (first) signer, by the fingerprint verify reported."""
    wanted = verified.signer.certificate_sha256
    return next(c for c in pinned if fingerprint(c) == wanted)
