"""Verifying a detached CMS signature (RFC 5652) with the project's own code: pyasn1-modules
for the structures (security.cms), cryptography for the primitives (security.algorithms) and
the certificates (security.chain).  cryptography signs CMS but verifies none.

Accepted: a ContentInfo holding a SignedData (DER, or BER as streaming tools write it) with
no encapsulated content (detached) of type id-data, one or more SignerInfos, every one of
which must verify: signed attributes with content-type id-data (section 11.1) and a
message-digest equal to the content's digest with the SignerInfo's digest algorithm
(section 11.2; SHA-256/384/512); the signature over the DER of the signed attributes
(section 5.4) by RSA PKCS#1 v1.5, RSASSA-PSS or ECDSA; the signer's certificate in the
SignedData, found by issuerAndSerialNumber or subjectKeyIdentifier (section 5.3); and a chain
from it to one of the trust anchors, valid at the signing time (section 11.3) or, without
one, now.

The signing time is the signer's own claim.  Checking validity then lets an answer still
verify after its certificate expired (what a non-repudiation record needs); a claimed time
in the future is refused, and ``at`` checks at another time (``now`` for OpenSSL's view).

``verify_pinned`` checks an AS2 partner's signature instead (RFC 4130): the signer must be
one of the partner's own certificates, as configured (no chain: the agreement pins them);
SHA-1 and SHA-224 are taken (security.algorithms, legacy); and a SignerInfo without signed
attributes is accepted, its signature then being over the content itself (section 5.4).

Every failure is a SignatureInvalid saying which check failed (a DigestMismatch when the
content is not the one signed); nothing else escapes,
whatever the bytes (tests/unit/test_cms_hostile.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc5652

from gateway.errors import ConfigError, DigestMismatch, SignatureInvalid
from gateway.security.algorithms import digest_algorithm, signature_scheme
from gateway.security.chain import (
    CERTIFICATE_FAILURES,
    check_chain,
    fingerprint,
    read_certificates,
    signer_certificate,
    subject,
)
from gateway.security.cms import (
    DECODE_FAILURES,
    SignedData,
    SignerInfo,
    decode_value,
    read_signed_data,
)

ID_DATA = str(rfc5652.id_data)
_CONTENT_TYPE = str(rfc5652.id_contentType)
_MESSAGE_DIGEST = str(rfc5652.id_messageDigest)
_SIGNING_TIME = str(rfc5652.id_signingTime)
#: How far a signing time may lie ahead of our clock (the signer's clock may be ahead).
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SignerVerified:
    """One signer whose signature verified."""

    #: RFC 4514 form of the signer certificate's subject.
    subject: str
    #: SHA-256 (hex) of the signer certificate's DER: what the non-repudiation record names.
    certificate_sha256: str
    #: The signing-time attribute (UTC), None when the signer gave none.
    signed_at: dt.datetime | None
    #: "sha256", "sha384" or "sha512".
    digest_algorithm: str
    #: "RSA PKCS#1 v1.5", "RSASSA-PSS" or "ECDSA".
    signature_algorithm: str
    #: Subjects from the signer's certificate to the trust anchor (the pinned certificate
    #: alone for verify_pinned).
    chain: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verified:
    """A signature that verified: every signer, and the digests the record keeps."""

    signers: tuple[SignerVerified, ...]
    #: SHA-256 (hex) of the content and of the signature as given.
    content_sha256: str
    signature_sha256: str

    @property
    def signer(self) -> SignerVerified:
        """The first signer (the gateway's signatures have exactly one)."""
        return self.signers[0]


def verify_detached(content: bytes, signature: bytes, anchors: Sequence[x509.Certificate],
                    *, at: dt.datetime | None = None,
                    now: dt.datetime | None = None) -> Verified:
    """Verify ``signature`` (a detached CMS SignedData) over ``content`` against the trust
    ``anchors``; the certificates are checked ``at`` that time (default: each signer's
    signing time, or ``now``).  SignatureInvalid says what failed."""
    if not anchors:
        raise ConfigError("no trust anchor to verify signatures against")
    clock = now or dt.datetime.now(dt.UTC)
    try:
        return _verify(content, signature, tuple(anchors), at, clock)
    except (*DECODE_FAILURES, *CERTIFICATE_FAILURES) as exc:
        # A value our checks did not foresee; still the signature's fault, and said so.
        raise SignatureInvalid(f"the signature cannot be read: {type(exc).__name__}: "
                               f"{str(exc)[:200]}") from exc


def verify_pinned(content: bytes, signature: bytes,
                  partner_certificates: Sequence[x509.Certificate], *,
                  check_validity: bool = True, now: dt.datetime | None = None) -> Verified:
    """Verify ``signature`` (a detached CMS SignedData) over ``content`` made by one of
    ``partner_certificates``; with ``check_validity`` that certificate must be valid ``now``
    (off only to read old records, such as an MDN whose certificate has since expired)."""
    if not partner_certificates:
        raise ConfigError("no partner certificate to verify signatures against")
    clock = now or dt.datetime.now(dt.UTC)
    try:
        return _verify_pinned(content, signature, tuple(partner_certificates),
                              check_validity, clock)
    except (*DECODE_FAILURES, *CERTIFICATE_FAILURES) as exc:
        raise SignatureInvalid(f"the signature cannot be read: {type(exc).__name__}: "
                               f"{str(exc)[:200]}") from exc


def _detached(signature: bytes, where: str) -> SignedData:
    """The SignedData of a detached signature over id-data (what both callers sign)."""
    signed = read_signed_data(signature)
    if not signed.detached:
        raise SignatureInvalid("the SignedData carries its content (encapsulated); a "
                               f"detached signature ({where}) is expected")
    if signed.content_type != ID_DATA:
        raise SignatureInvalid(f"the signed content type is {signed.content_type}; only "
                               f"id-data ({ID_DATA}) is accepted")
    return signed


def _verify_pinned(content: bytes, signature: bytes, pinned: tuple[x509.Certificate, ...],
                   check_validity: bool, now: dt.datetime) -> Verified:
    signed = _detached(signature, "multipart/signed, RFC 1847")
    signers = []
    for signer in signed.signers:
        digest = digest_algorithm(signer.digest, legacy=True)
        scheme = signature_scheme(signer.signature_algorithm, digest, legacy=True)
        try:
            certificate = signer_certificate(signer, pinned)
        except SignatureInvalid as exc:
            raise SignatureInvalid("the signer is not one of the partner's certificates: "
                                   f"{exc}") from exc
        signed_at = None
        if signer.signed_attributes is None:
            # RFC 5652 section 5.4: without signed attributes the signature is over the
            # content itself.
            scheme.check(certificate, signer.signature, content)
        else:
            _check_content_type(signer)
            _check_message_digest(signer, content, digest)
            signed_at = _signing_time(signer, now)
            scheme.check(certificate, signer.signature, signer.signed_attributes)
        if check_validity:
            # The pinned certificate is its own anchor: check_chain then checks its usage,
            # validity and critical extensions, and follows no chain.
            check_chain(certificate, (), (certificate,), now)
        signers.append(SignerVerified(subject(certificate), fingerprint(certificate),
                                      signed_at, digest.name, scheme.name,
                                      (subject(certificate),)))
    return Verified(tuple(signers), hashlib.sha256(content).hexdigest(),
                    hashlib.sha256(signature).hexdigest())


def _verify(content: bytes, signature: bytes, anchors: tuple[x509.Certificate, ...],
            at: dt.datetime | None, now: dt.datetime) -> Verified:
    signed = _detached(signature, "written beside the file")
    certificates = read_certificates(signed.certificates)
    signers = tuple(_verify_signer(s, content, certificates, anchors, at, now)
                    for s in signed.signers)
    return Verified(signers, hashlib.sha256(content).hexdigest(),
                    hashlib.sha256(signature).hexdigest())


def _verify_signer(signer: SignerInfo, content: bytes,
                   certificates: tuple[x509.Certificate, ...],
                   anchors: tuple[x509.Certificate, ...], at: dt.datetime | None,
                   now: dt.datetime) -> SignerVerified:
    digest = digest_algorithm(signer.digest)
    if signer.signed_attributes is None:
        raise SignatureInvalid("the signer has no signed attributes; content-type and "
                               "message-digest are required (RFC 5652 section 5.3)")
    _check_content_type(signer)
    _check_message_digest(signer, content, digest)
    signed_at = _signing_time(signer, now)
    scheme = signature_scheme(signer.signature_algorithm, digest)
    certificate = signer_certificate(signer, certificates)
    scheme.check(certificate, signer.signature, signer.signed_attributes)
    path = check_chain(certificate, certificates, anchors, at or signed_at or now)
    return SignerVerified(subject(certificate), fingerprint(certificate), signed_at,
                          digest.name, scheme.name, tuple(subject(c) for c in path))


def _optional(signer: SignerInfo, kind: str, name: str) -> bytes | None:
    """RFC 5652 sections 11.1-11.3: these attributes have exactly one value."""
    values = signer.attributes.get(kind)
    if values is not None and len(values) != 1:
        raise SignatureInvalid(f"the signed attribute {name} has {len(values)} values, "
                               "not one")
    return None if values is None else values[0]


def _required(signer: SignerInfo, kind: str, name: str) -> bytes:
    value = _optional(signer, kind, name)
    if value is None:
        raise SignatureInvalid(f"the signed attribute {name} ({kind}) is missing")
    return value


def _check_content_type(signer: SignerInfo) -> None:
    value = _required(signer, _CONTENT_TYPE, "content-type")
    kind = str(decode_value(value, univ.ObjectIdentifier(), "content-type attribute"))
    if kind != ID_DATA:
        raise SignatureInvalid(f"the content-type attribute is {kind}, not the signed "
                               f"content's type id-data ({ID_DATA})")


def _check_message_digest(signer: SignerInfo, content: bytes,
                          digest: hashes.HashAlgorithm) -> None:
    value = _required(signer, _MESSAGE_DIGEST, "message-digest")
    signed = bytes(decode_value(value, univ.OctetString(), "message-digest attribute"))
    computed = hashes.Hash(digest)
    computed.update(content)
    if not hmac.compare_digest(signed, computed.finalize()):
        raise DigestMismatch(f"the content's {digest.name} digest is not the signed "
                               "message-digest: the file is not the one that was signed")


def _signing_time(signer: SignerInfo, now: dt.datetime) -> dt.datetime | None:
    value = _optional(signer, _SIGNING_TIME, "signing-time")
    if value is None:
        return None
    time = decode_value(value, rfc5652.SigningTime(), "signing-time attribute")
    try:
        when: dt.datetime = time.getComponent().asDateTime
    except (PyAsn1Error, ValueError, OverflowError) as exc:
        raise SignatureInvalid(f"the signing time {str(time.getComponent())!r} is not a "
                               "time") from exc
    if when.tzinfo is None:
        raise SignatureInvalid("the signing time has no time zone (RFC 5652 section 11.3: "
                               "UTC, ending in Z)")
    when = when.astimezone(dt.UTC)
    if when > now + CLOCK_SKEW:
        raise SignatureInvalid(f"the signing time {when:%Y-%m-%d %H:%M:%S}Z is in the future")
    return when
