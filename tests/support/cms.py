"""CMS signatures made to order for the verify tests: a signature re-signed after its
attributes or fields were changed (so each check of security.verify is reached on its own),
BER with indefinite lengths as streaming tools write it, certificates with chosen
extensions, and the ``openssl`` binary."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import tag, univ
from pyasn1_modules import rfc5652

from gateway.security.pki import Issued, new_key
from gateway.security.signing import SigningPrivateKey

Attributes = list[tuple[str, list[bytes]]]

CONTENT_TYPE = str(rfc5652.id_contentType)
MESSAGE_DIGEST = str(rfc5652.id_messageDigest)
SIGNING_TIME = str(rfc5652.id_signingTime)
SHA1 = "1.3.14.3.2.26"
SHA384 = "2.16.840.1.101.3.4.2.2"


def sign_detached(content: bytes, issued: Issued, *, extra: tuple[x509.Certificate, ...] = (),
                  digest: hashes.HashAlgorithm | None = None) -> bytes:
    """A detached DER signature as Signer.sign makes it, but with any key (Signer refuses
    an expired one) and extra certificates (intermediate CAs)."""
    builder = (pkcs7.PKCS7SignatureBuilder().set_data(content)
               .add_signer(issued.certificate, issued.private_key,
                           digest or hashes.SHA256()))  # type: ignore[arg-type]
    for certificate in extra:
        builder = builder.add_certificate(certificate)
    return builder.sign(pkcs7.serialization.Encoding.DER,
                        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])


def rebuild(signature: bytes, key: SigningPrivateKey, *,
            attributes: Callable[[Attributes], Attributes] | None = None,
            signer: Callable[[Any], None] | None = None,
            signed_data: Callable[[Any], None] | None = None,
            digest: hashes.HashAlgorithm | None = None) -> bytes:
    """``signature`` with its first SignerInfo's attributes, its SignerInfo or its SignedData
    changed, and the signed attributes signed again with ``key`` (so only the change is
    wrong)."""
    info, _ = decoder.decode(signature, asn1Spec=rfc5652.ContentInfo())
    data, _ = decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.SignedData())
    first = data["signerInfos"][0]
    if attributes is not None:
        found = [(str(a["attrType"]), [bytes(v) for v in a["attrValues"]])
                 for a in first["signedAttrs"]]
        first["signedAttrs"] = _attributes(attributes(found))
    if signer is not None:
        signer(first)
    if signed_data is not None:
        signed_data(data)
    signed = b"\x31" + encoder.encode(first["signedAttrs"])[1:]
    first["signature"] = univ.OctetString(_sign(key, signed, digest or hashes.SHA256()))
    info["content"] = univ.Any(encoder.encode(data)).subtype(
        explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0))
    return bytes(encoder.encode(info))


def _attributes(found: Attributes) -> Any:
    result = rfc5652.SignedAttributes().subtype(
        implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0))
    for kind, values in found:
        attribute = rfc5652.Attribute()
        attribute["attrType"] = univ.ObjectIdentifier(kind)
        for value in values:
            attribute["attrValues"].append(univ.Any(value))
        result.append(attribute)
    return result


def _sign(key: SigningPrivateKey, data: bytes, digest: hashes.HashAlgorithm) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), digest)
    return key.sign(data, ec.ECDSA(digest))


def encoded(value: Any) -> bytes:
    return bytes(encoder.encode(value))


def algorithm(oid: str) -> Any:
    identifier = rfc5652.DigestAlgorithmIdentifier()
    identifier["algorithm"] = univ.ObjectIdentifier(oid)
    return identifier


def indefinite(der: bytes, depth: int) -> bytes:
    """``der`` with every constructed value down to ``depth`` levels in indefinite-length
    form (X.690 section 8.1.3.6), as streaming CMS writers send it; deeper ones stay DER."""
    out, position = bytearray(), 0
    while position < len(der):
        tag_byte, length, start = _header(der, position)
        body = der[start:start + length]
        if tag_byte & 0x20 and depth > 0:
            out += bytes([tag_byte, 0x80]) + indefinite(body, depth - 1) + b"\0\0"
        else:
            out += der[position:start + length]
        position = start + length
    return bytes(out)


def _header(der: bytes, position: int) -> tuple[int, int, int]:
    tag_byte, first = der[position], der[position + 1]
    if first < 0x80:
        return tag_byte, first, position + 2
    size = first & 0x7F
    return (tag_byte, int.from_bytes(der[position + 2:position + 2 + size], "big"),
            position + 2 + size)


def certificate(issuer: Issued | None, name: str, *, ca: bool = False,
                path_length: int | None = None, usage: x509.KeyUsage | None = None,
                critical: x509.ExtensionType | None = None,
                kind: str = "ec-p256") -> Issued:
    """A certificate with exactly the extensions asked for (self-signed when ``issuer`` is
    None), valid from five minutes ago for a year."""
    key = new_key(kind)  # type: ignore[arg-type]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(subject if issuer is None else issuer.certificate.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length),
                              critical=True))
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if critical is not None:
        builder = builder.add_extension(critical, critical=True)
    signing_key = key if issuer is None else issuer.private_key
    return Issued(builder.sign(signing_key, hashes.SHA256()), key)


def key_usage(**flags: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment",
             "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names},
                         encipher_only=False, decipher_only=False)


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The ``openssl`` binary (tests that need it skip, saying so, where it is missing)."""
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("the openssl binary is not installed")
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False)


def openssl_verifies(content: Path, signature: Path, ca: Path) -> bool:
    """``openssl cms -verify`` exactly as a partner runs it (docs/signatures.md)."""
    done = openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", signature,
                   "-content", content, "-CAfile", ca, "-out", "/dev/null")
    return done.returncode == 0 and "Verification successful" in done.stderr
