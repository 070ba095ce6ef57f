"""The signer's certificate and its chain to a trust anchor (RFC 5652 section 5.6; a subset
of RFC 5280 section 6 path validation, enough for a CA that issues signing certificates).

What is checked: each certificate's signature with its issuer's key; each one's validity at
the given time; basicConstraints cA (and keyCertSign, when keyUsage is there) on every issuer,
with its pathLenConstraint; digitalSignature or nonRepudiation on the signer when keyUsage is
there; no critical extension we do not understand.  What is not: revocation (CRL, OCSP),
name constraints and policies (a certificate marking those critical is refused)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID

from gateway.errors import SignatureInvalid
from gateway.security.cms import SignerInfo

_T = TypeVar("_T", bound=x509.ExtensionType)

#: What cryptography raises on a malformed certificate beyond ValueError (a few of its x509
#: errors derive from Exception alone).
CERTIFICATE_FAILURES = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                        x509.DuplicateExtension, x509.UnsupportedGeneralNameType)
#: The longest chain followed, signer and anchor included.
MAX_CHAIN = 8
#: Critical extensions that constrain nothing we leave unchecked (RFC 5280 section 4.2).
_UNDERSTOOD = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.CERTIFICATE_POLICIES,
})


def read_certificates(encodings: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    """The X.509 certificates among a SignedData's CertificateChoices (the other choices,
    attribute certificates, say nothing about a signer and are passed over)."""
    found = []
    for encoding in encodings:
        if not encoding.startswith(b"\x30"):  # [0]..[3]: not an X.509 Certificate
            continue
        if encoding[1:2] == b"\x80":
            raise SignatureInvalid("a certificate in the signature is BER with indefinite "
                                   "lengths; certificates are DER (RFC 5280 section 4.1)")
        try:
            found.append(x509.load_der_x509_certificate(encoding))
        except CERTIFICATE_FAILURES as exc:
            raise SignatureInvalid(f"a certificate in the signature cannot be read: "
                                   f"{exc}") from exc
    return tuple(found)


def signer_certificate(signer: SignerInfo,
                       certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    """The certificate the SignerInfo's sid names (RFC 5652 section 5.3)."""
    for certificate in certificates:
        if _names(signer, certificate):
            return certificate
    raise SignatureInvalid(f"the signer's certificate ({_sid_text(signer)}) is missing: "
                           f"the signature carries {len(certificates)} certificate(s) and "
                           "none is the signer's")


def check_chain(signer: x509.Certificate, pool: Sequence[x509.Certificate],
                anchors: Sequence[x509.Certificate], when: dt.datetime
                ) -> tuple[x509.Certificate, ...]:
    """The path from ``signer`` to a trust anchor, every certificate checked at ``when``."""
    _check_signer_usage(signer)
    path = [signer]
    while len(path) <= MAX_CHAIN:
        current = path[-1]
        _check_certificate(current, when)
        if current in anchors:
            return tuple(path)
        issuer = _issuer(current, [*anchors, *pool], path)
        _check_issuer(issuer, intermediates_below=len(path) - 1)
        path.append(issuer)
    raise SignatureInvalid(f"no trust anchor within {MAX_CHAIN} certificates of "
                           f"{subject(signer)}")


def subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def _names(signer: SignerInfo, certificate: x509.Certificate) -> bool:
    if signer.key_identifier is not None:
        return signer.key_identifier == _key_identifier(certificate)
    return (signer.serial == certificate.serial_number
            and signer.issuer == certificate.issuer.public_bytes())


def _key_identifier(certificate: x509.Certificate) -> bytes | None:
    """The subjectKeyIdentifier, or the RFC 5280 section 4.2.1.2 method (1) one when the
    certificate has none (as OpenSSL does)."""
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        pass
    except CERTIFICATE_FAILURES:
        return None
    try:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest
    except CERTIFICATE_FAILURES:
        return None


def _sid_text(signer: SignerInfo) -> str:
    if signer.key_identifier is not None:
        return f"subject key identifier {signer.key_identifier.hex()}"
    return f"serial number {signer.serial:x}"


def _issuer(certificate: x509.Certificate, candidates: Sequence[x509.Certificate],
            path: Sequence[x509.Certificate]) -> x509.Certificate:
    """The first candidate (trust anchors first) whose key verifies the certificate."""
    for candidate in candidates:
        if candidate in path or candidate.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except (InvalidSignature, *CERTIFICATE_FAILURES):
            continue
        return candidate
    raise SignatureInvalid(f"no chain to a trust anchor: no trusted certificate named "
                           f"{certificate.issuer.rfc4514_string()} verifies the certificate "
                           f"of {subject(certificate)}")


def _check_certificate(certificate: x509.Certificate, when: dt.datetime) -> None:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not start <= when <= end:
        raise SignatureInvalid(f"the certificate of {subject(certificate)} is valid from "
                               f"{start:%Y-%m-%d %H:%M:%S}Z to {end:%Y-%m-%d %H:%M:%S}Z, "
                               f"not at {when:%Y-%m-%d %H:%M:%S}Z")
    for extension in _extensions(certificate):
        if extension.critical and extension.oid not in _UNDERSTOOD:
            raise SignatureInvalid(f"the certificate of {subject(certificate)} has a critical "
                                   f"extension not supported here: {extension.oid.dotted_string}")


def _check_issuer(issuer: x509.Certificate, intermediates_below: int) -> None:
    """RFC 5280 section 4.2.1.9 (cA, pathLenConstraint) and 4.2.1.3 (keyCertSign)."""
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise SignatureInvalid(f"{subject(issuer)} issued a certificate but is not a CA "
                               "(basicConstraints cA is not set)")
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        raise SignatureInvalid(f"{subject(issuer)} allows {constraints.path_length} "
                               f"intermediate CA(s) below it, not {intermediates_below}")
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise SignatureInvalid(f"the key of {subject(issuer)} may not sign certificates "
                               "(keyUsage without keyCertSign)")


def _check_signer_usage(signer: x509.Certificate) -> None:
    """RFC 5280 section 4.2.1.3: a signature is made with digitalSignature, non-repudiation
    with nonRepudiation (contentCommitment); either suffices."""
    usage = _extension(signer, x509.KeyUsage)
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise SignatureInvalid(f"the key of {subject(signer)} may not sign documents "
                               "(keyUsage has neither digitalSignature nor nonRepudiation)")


def _extensions(certificate: x509.Certificate) -> x509.Extensions:
    try:
        return certificate.extensions
    except CERTIFICATE_FAILURES as exc:  # duplicate or malformed extensions
        raise SignatureInvalid(f"the certificate of {subject(certificate)} has extensions "
                               f"that cannot be read: {exc}") from exc


def _extension(certificate: x509.Certificate, kind: type[_T]) -> _T | None:
    try:
        return _extensions(certificate).get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
