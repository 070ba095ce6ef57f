"""The digest and signature algorithms a CMS signature may use here, by object identifier,
and the check of one signature value with cryptography's primitives.

Digests: SHA-256, SHA-384, SHA-512 (RFC 5754).  MD5 and SHA-1 are refused by name: a
collision lets someone present a second document with the same signature.  Signatures:
RSA PKCS#1 v1.5 (RFC 3370 section 3.2, RFC 5754 section 3.2), RSASSA-PSS (RFC 4056) and
ECDSA (RFC 5753 section 2.1.1, RFC 5754 section 3.3), each with the SignerInfo's digest.

``legacy=True`` (an AS2 partner's signature, checked against its pinned certificate) also
takes SHA-1 and SHA-224: RFC 4130 section 7.3.1 lists sha1 as the micalg every AS2 product
supports and IBM Sterling signs MDNs with it.  MD5 stays refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import Certificate
from pyasn1_modules import rfc4055

from gateway.errors import SignatureInvalid
from gateway.security.cms import Algorithm, algorithm_of, decode_value

#: The smallest RSA key accepted for a signer (NIST SP 800-131A: 2048 bits since 2014).
MIN_RSA_BITS = 2048

DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
#: Taken only with legacy=True (see the module docstring).
LEGACY_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
}
_REFUSED_DIGESTS = {
    "1.2.840.113549.2.5": "MD5",
    "1.3.14.3.2.26": "SHA-1",
    "1.2.840.113549.1.1.4": "MD5",  # md5WithRSAEncryption
    "1.2.840.113549.1.1.5": "SHA-1",  # sha1WithRSAEncryption
    "1.2.840.10045.4.1": "SHA-1",  # ecdsa-with-SHA1
}
_RSA_PKCS1 = "1.2.840.113549.1.1.1"
_RSA_PSS = "1.2.840.113549.1.1.10"
_MGF1 = "1.2.840.113549.1.1.8"
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"  # some tools name the key, not the scheme (RFC 5753)
#: Signature algorithms that name their hash: (scheme, digest OID).
_WITH_HASH = {
    "1.2.840.113549.1.1.11": ("rsa", "2.16.840.1.101.3.4.2.1"),
    "1.2.840.113549.1.1.12": ("rsa", "2.16.840.1.101.3.4.2.2"),
    "1.2.840.113549.1.1.13": ("rsa", "2.16.840.1.101.3.4.2.3"),
    "1.2.840.10045.4.3.2": ("ecdsa", "2.16.840.1.101.3.4.2.1"),
    "1.2.840.10045.4.3.3": ("ecdsa", "2.16.840.1.101.3.4.2.2"),
    "1.2.840.10045.4.3.4": ("ecdsa", "2.16.840.1.101.3.4.2.3"),
}
#: The same with the legacy digests (RFC 3370 section 3.2, RFC 5754 section 3).
_LEGACY_WITH_HASH = {
    "1.2.840.113549.1.1.5": ("rsa", "1.3.14.3.2.26"),
    "1.2.840.113549.1.1.14": ("rsa", "2.16.840.1.101.3.4.2.4"),
    "1.2.840.10045.4.1": ("ecdsa", "1.3.14.3.2.26"),
    "1.2.840.10045.4.3.1": ("ecdsa", "2.16.840.1.101.3.4.2.4"),
}


def digest_algorithm(algorithm: Algorithm, *, legacy: bool = False) -> hashes.HashAlgorithm:
    """The hash named by a digest AlgorithmIdentifier, or why it is not accepted."""
    oid = algorithm.oid
    if legacy and oid in LEGACY_DIGESTS:
        return LEGACY_DIGESTS[oid]()
    if oid in _REFUSED_DIGESTS:
        raise SignatureInvalid(f"the digest algorithm is {_REFUSED_DIGESTS[oid]} ({oid}), "
                               "which is refused: collisions are practical; SHA-256, SHA-384 "
                               "or SHA-512 are accepted")
    if oid not in DIGESTS:
        raise SignatureInvalid(f"unsupported digest algorithm {oid} (SHA-256, SHA-384 or "
                               "SHA-512 are accepted)")
    return DIGESTS[oid]()


@dataclass(frozen=True, slots=True)
class Scheme:
    """How to check one signature value: its name and the check."""

    name: str
    check: Callable[[Certificate, bytes, bytes], None]


def signature_scheme(algorithm: Algorithm, digest: hashes.HashAlgorithm, *,
                     legacy: bool = False) -> Scheme:
    """The scheme of a SignerInfo's signatureAlgorithm with its digest algorithm."""
    oid = algorithm.oid
    with_hash = {**_WITH_HASH, **_LEGACY_WITH_HASH} if legacy else _WITH_HASH
    if oid in _REFUSED_DIGESTS and oid not in with_hash:
        digest_algorithm(algorithm)  # raises, naming the weak hash
    if oid == _RSA_PKCS1:
        return Scheme("RSA PKCS#1 v1.5", _rsa(padding.PKCS1v15(), digest))
    if oid == _RSA_PSS:
        return _pss(algorithm, digest, legacy)
    if oid == _EC_PUBLIC_KEY:
        return Scheme("ECDSA", _ecdsa(digest))
    if oid in with_hash:
        kind, hash_oid = with_hash[oid]
        _same_hash({**DIGESTS, **LEGACY_DIGESTS}[hash_oid](), digest, oid)
        if kind == "rsa":
            return Scheme("RSA PKCS#1 v1.5", _rsa(padding.PKCS1v15(), digest))
        return Scheme("ECDSA", _ecdsa(digest))
    raise SignatureInvalid(f"unsupported signature algorithm {oid} (RSA PKCS#1 v1.5, "
                           "RSASSA-PSS or ECDSA are accepted)")


def _same_hash(named: hashes.HashAlgorithm, digest: hashes.HashAlgorithm, oid: str) -> None:
    if named.name != digest.name:
        raise SignatureInvalid(f"the signature algorithm {oid} hashes with {named.name}, "
                               f"the digest algorithm is {digest.name}")


def _pss(algorithm: Algorithm, digest: hashes.HashAlgorithm, legacy: bool) -> Scheme:
    """RSASSA-PSS parameters (RFC 4055 section 3.1); their defaults are SHA-1, refused
    unless legacy."""
    if algorithm.parameters is None and legacy:
        _same_hash(hashes.SHA1(), digest, "RSASSA-PSS")
        return Scheme("RSASSA-PSS", _rsa(padding.PSS(mgf=padding.MGF1(hashes.SHA1()),
                                                     salt_length=20), digest))
    if algorithm.parameters is None:
        raise SignatureInvalid("RSASSA-PSS without parameters means SHA-1 (RFC 4055 "
                               "section 3.1), which is refused")
    params = decode_value(algorithm.parameters, rfc4055.RSASSA_PSS_params(),
                          "RSASSA-PSS parameters (RFC 4055 section 3.1)")
    pss_hash = digest_algorithm(algorithm_of(params["hashAlgorithm"]), legacy=legacy)
    _same_hash(pss_hash, digest, "RSASSA-PSS")
    mgf = algorithm_of(params["maskGenAlgorithm"])
    if mgf.oid != _MGF1 or mgf.parameters is None:
        raise SignatureInvalid(f"RSASSA-PSS mask generation {mgf.oid}: only MGF1 with a "
                               "named hash is accepted")
    mgf_hash = digest_algorithm(algorithm_of(decode_value(
        mgf.parameters, rfc4055.HashAlgorithm(), "MGF1 hash (RFC 4055 section 2.2)")),
        legacy=legacy)
    salt, trailer = int(params["saltLength"]), int(params["trailerField"])
    if trailer != 1 or not 0 <= salt <= 1024:
        raise SignatureInvalid(f"RSASSA-PSS trailer field {trailer} or salt length {salt} "
                               "(RFC 4055 section 3.1: trailer 1)")
    scheme = padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt)
    return Scheme("RSASSA-PSS", _rsa(scheme, digest))


def _rsa(scheme: padding.AsymmetricPadding, digest: hashes.HashAlgorithm
         ) -> Callable[[Certificate, bytes, bytes], None]:
    def check(certificate: Certificate, signature: bytes, data: bytes) -> None:
        key = _public_key(certificate)
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureInvalid(f"an RSA signature, but the signer's key is "
                                   f"{_key_kind(key)}")
        if key.key_size < MIN_RSA_BITS:
            raise SignatureInvalid(f"the signer's RSA key has {key.key_size} bits; at least "
                                   f"{MIN_RSA_BITS} are accepted")
        _verified(lambda: key.verify(signature, data, scheme, digest))
    return check


def _ecdsa(digest: hashes.HashAlgorithm) -> Callable[[Certificate, bytes, bytes], None]:
    def check(certificate: Certificate, signature: bytes, data: bytes) -> None:
        key = _public_key(certificate)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureInvalid(f"an ECDSA signature, but the signer's key is "
                                   f"{_key_kind(key)}")
        _verified(lambda: key.verify(signature, data, ec.ECDSA(digest)))
    return check


def _public_key(certificate: Certificate) -> object:
    try:
        return certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureInvalid(f"the signer's public key cannot be read: {exc}") from exc


def _key_kind(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC"
    return type(key).__name__


def _verified(check: Callable[[], None]) -> None:
    try:
        check()
    except InvalidSignature as exc:
        raise SignatureInvalid("the signature value does not verify with the signer's "
                               "certificate over the signed attributes") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureInvalid(f"the signature cannot be checked: {exc}") from exc
