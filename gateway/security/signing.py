"""Signing what the gateway sends: a detached CMS SignedData (RFC 5652 section 5), DER, with
the signer's certificate and the signed attributes content-type, message-digest and
signing-time (section 11), so that a partner can verify an answer with nothing but our CA
certificate (``openssl cms -verify -binary -inform DER``) and nobody can deny it later
(UN/CEFACT Recommendation 35: non-repudiation of origin).

Rotation: several keys may be configured; each signature is made with the one whose
certificate is valid now and became valid last.  A new certificate is added beside the old,
takes over on its notBefore date, and the old is removed once it has expired."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from gateway.errors import ConfigError

#: Key types the gateway signs with: what partners' tools verify everywhere.
SigningPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_OPTIONS = (pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary)
_SHA256 = hashes.SHA256()


@dataclass(frozen=True, slots=True)
class SigningKey:
    certificate: x509.Certificate
    private_key: SigningPrivateKey
    # What every signature needs of the certificate, read once: cryptography parses the
    # certificate again on each access (a fingerprint cost more than a tenth of an ECDSA
    # signature).
    #: SHA-256 of the certificate's DER: what the non-repudiation record names.
    fingerprint: str = field(init=False, compare=False)
    not_before: dt.datetime = field(init=False, compare=False)
    not_after: dt.datetime = field(init=False, compare=False)

    def __post_init__(self) -> None:
        cert = self.certificate
        object.__setattr__(self, "fingerprint", cert.fingerprint(hashes.SHA256()).hex())
        object.__setattr__(self, "not_before", cert.not_valid_before_utc)
        object.__setattr__(self, "not_after", cert.not_valid_after_utc)

    def valid_at(self, when: dt.datetime) -> bool:
        return self.not_before <= when <= self.not_after


@dataclass(frozen=True, slots=True)
class Signature:
    """A detached signature and what the non-repudiation record keeps of it."""

    der: bytes
    #: SHA-256 (hex) of the signed content and of the signature itself.
    content_digest: str
    signature_digest: str
    certificate_fingerprint: str
    signed_at: dt.datetime


class Signer:
    """Signs with the current key of ``keys`` (see the module's note on rotation)."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ConfigError("signing: no key configured")
        for key in keys:
            if key.certificate.public_key() != key.private_key.public_key():
                raise ConfigError(f"signing: the key of {_subject(key.certificate)} is not "
                                  "the certificate's")
        self._keys = tuple(keys)
        self.current(dt.datetime.now(dt.UTC))  # refuse to start with nothing valid

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        return self._keys

    def current(self, when: dt.datetime) -> SigningKey:
        """The key valid at ``when`` that became valid last (the first such in ``keys``)."""
        found: SigningKey | None = None
        for key in self._keys:
            if key.not_before <= when <= key.not_after and (
                    found is None or key.not_before > found.not_before):
                found = key
        if found is None:
            spans = "; ".join(f"{_subject(k.certificate)}: {k.not_before:%Y-%m-%d} to "
                              f"{k.not_after:%Y-%m-%d}" for k in self._keys)
            raise ConfigError(f"signing: no certificate is valid at {when:%Y-%m-%d %H:%M}Z "
                              f"({spans}); add a current one")
        return found

    def sign(self, content: bytes) -> Signature:
        """A detached CMS SignedData over ``content`` (DER).  The signing time is the
        library's clock (it sets the attribute itself), which is ours."""
        now = dt.datetime.now(dt.UTC)
        key = self.current(now)
        der = (pkcs7.PKCS7SignatureBuilder()
               .set_data(content)
               .add_signer(key.certificate, key.private_key, _SHA256)
               .sign(serialization.Encoding.DER, _OPTIONS))
        return Signature(der=der, content_digest=hashlib.sha256(content).hexdigest(),
                         signature_digest=hashlib.sha256(der).hexdigest(),
                         certificate_fingerprint=key.fingerprint, signed_at=now)


def signing_key(certificate_pem: bytes, key_pem: bytes, password: bytes | None = None,
                name: str = "signing key") -> SigningKey:
    """A certificate and its private key from PEM; ConfigError naming ``name`` otherwise."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as exc:
        raise ConfigError(f"{name}: not a PEM certificate: {exc}") from exc
    try:
        private_key = serialization.load_pem_private_key(key_pem, password)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name}: not a PEM private key (or a wrong password): "
                          f"{exc}") from exc
    if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{name}: an RSA or EC key is needed, not "
                          f"{type(private_key).__name__}")
    return SigningKey(certificate, private_key)


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()
