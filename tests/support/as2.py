"""AS2 test material: the recorded Mendelson and IBM Sterling requests and MDNs in
../shared/corpus/as2/pyas2lib-fixtures (read in place, never copied: GPL-3.0, see SOURCE.txt
there), and AS2 messages built here with our own keys (multipart/signed, enveloped and
compressed layers) for what no recording shows."""

from __future__ import annotations

import base64
import zlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from pyasn1.codec.der import encoder
from pyasn1_modules import rfc3274, rfc5652

from gateway.security.as2 import Keys
from gateway.security.pki import Issued
from gateway.wire.as2.mime import parse_headers
from tests.support.edifact import CORPUS

FIXTURES = CORPUS / "as2" / "pyas2lib-fixtures"
#: The Mendelson captures and what each carries: (signed, encrypted, compressed).
MENDELSON = {
    "mecas2_signed.as2": (True, False, False),
    "mecas2_encrypted.as2": (False, True, False),
    "mecas2_signed_encrypted.as2": (True, True, False),
    "mecas2_compressed.as2": (True, False, True),
    "mecas2_compressed_signed_encrypted.as2": (True, True, True),
}


def needs_fixtures() -> None:
    if not (FIXTURES / "SOURCE.txt").is_file():
        pytest.skip(f"the recorded AS2 messages are not at {FIXTURES} (the shared corpus "
                    "beside the checkout)")


def fixture(name: str) -> bytes:
    needs_fixtures()
    return (FIXTURES / name).read_bytes()


def request(name: str) -> tuple[dict[str, str], bytes]:
    """A recorded HTTP request (or MDN): header lines, an empty line, the body.  The header
    block ends at the first empty line, CRLF or LF (the recordings have both)."""
    return split_request(fixture(name))


def split_request(raw: bytes) -> tuple[dict[str, str], bytes]:
    crlf, lf = raw.find(b"\n\r\n"), raw.find(b"\n\n")
    if crlf < 0 or 0 <= lf < crlf:
        head, body = raw[:lf], raw[lf + 2:]
    else:
        head, body = raw[:crlf], raw[crlf + 3:]
    return dict(parse_headers(head).fields), body


def certificate(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(fixture(name))


def receiver_keys() -> Keys:
    """The receiving side's key the Mendelson captures are encrypted to (cert_test.p12)."""
    key, cert, _ = pkcs12.load_key_and_certificates(fixture("cert_test.p12"), b"test")
    assert key is not None and cert is not None
    return [(cert, key)]  # type: ignore[list-item]


def sign(content: bytes, issued: Issued, *, digest: hashes.HashAlgorithm | None = None,
         attributes: bool = True) -> bytes:
    """A detached DER signature over ``content`` exactly (Binary: no canonicalisation)."""
    options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
    if not attributes:
        options.append(pkcs7.PKCS7Options.NoAttributes)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(
        issued.certificate, issued.private_key, digest or hashes.SHA256())  # type: ignore[arg-type]
    return builder.sign(serialization.Encoding.DER, options)


def signed_multipart(entity: bytes, signature: bytes, *, boundary: str = "b-1",
                     base64_signature: bool = True) -> tuple[str, bytes]:
    """(Content-Type, body) of a multipart/signed: the entity as it is, then the signature."""
    encoded = base64.encodebytes(signature) if base64_signature else signature
    body = (f"--{boundary}\r\n".encode() + entity + f"\r\n--{boundary}\r\n".encode()
            + b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n"
            + b"Content-Transfer-Encoding: "
            + (b"base64" if base64_signature else b"binary") + b"\r\n\r\n"
            + encoded + f"\r\n--{boundary}--\r\n".encode())
    content_type = (f'multipart/signed; protocol="application/pkcs7-signature"; '
                    f'micalg=sha-256; boundary="{boundary}"')
    return content_type, body


def encrypt(entity: bytes, recipient: x509.Certificate) -> bytes:
    """An EnvelopedData (AES-256-CBC, RSA PKCS#1 v1.5) of ``entity``, DER."""
    return (pkcs7.PKCS7EnvelopeBuilder().set_data(entity).add_recipient(recipient)
            .set_content_encryption_algorithm(pkcs7.algorithms.AES256)  # type: ignore[attr-defined]
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))


def compress(entity: bytes) -> bytes:
    """A CompressedData (RFC 3274, zlib) of ``entity``, DER."""
    compressed = rfc3274.CompressedData()
    compressed["version"] = 0
    compressed["compressionAlgorithm"]["algorithm"] = rfc3274.id_alg_zlibCompress
    encap = compressed["encapContentInfo"]
    encap["eContentType"] = rfc5652.id_data
    encap["eContent"] = zlib.compress(entity)
    info = rfc5652.ContentInfo()
    info["contentType"] = rfc3274.id_ct_compressedData
    info["content"] = encoder.encode(compressed)
    return bytes(encoder.encode(info))


def entity(body: bytes, content_type: str = "application/edifact", *,
           filename: str | None = "order.edi", encoding: str = "binary") -> bytes:
    """A MIME entity: headers in CRLFs, an empty line, the body."""
    head = f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n"
    if filename is not None:
        head += f'Content-Disposition: attachment; filename="{filename}"\r\n'
    return head.encode() + b"\r\n" + body


def p7m_entity(data: bytes, smime_type: str) -> bytes:
    """An application/pkcs7-mime entity, base64."""
    return entity(base64.encodebytes(data), f"application/pkcs7-mime; smime-type={smime_type}",
                  filename="smime.p7m", encoding="base64")

