"""Our signatures and our verification beside the real ``openssl`` binary: what Signer.sign
writes verifies with ``openssl cms -verify`` (the command partners run) and with
security.verify; what breaks one breaks the other; and what OpenSSL signs verifies with ours
(or is refused saying why)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from gateway.errors import SignatureInvalid
from gateway.security.pki import Issued, KeyType, create_ca, issue_signing_certificate
from gateway.security.signing import Signer, SigningKey
from gateway.security.verify import Verified, verify_detached
from tests.support.cms import indefinite, openssl, openssl_verifies, sign_detached

CONTENT = b"UNA:+.? 'UNB+UNOC:3+SWGATEWAY+DEMOVAN+261203:1326+42'UNZ+0+42'\r\n\x00\xff"
KINDS: tuple[KeyType, ...] = ("ec-p256", "rsa-2048")


class Files:
    """A CA, a signing certificate it issued, and a content file, on disk for OpenSSL."""

    def __init__(self, root: Path, kind: KeyType = "ec-p256") -> None:
        self.root = root
        self.ca = create_ca("test CA", kind=kind)
        self.issued = issue_signing_certificate(self.ca, "test gateway", kind=kind)
        self.ca_file = self.write("ca.crt", self.ca.certificate_pem)
        self.content = self.write("answer.edi", CONTENT)
        self.certificate = self.write("gateway.crt", self.issued.certificate_pem)
        self.key = self.write("gateway.key", self.issued.key_pem)

    def write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    def ours(self, signature: bytes, content: bytes = CONTENT) -> Verified:
        return verify_detached(content, signature, [self.ca.certificate])

    def openssl_sign(self, *options: str) -> bytes:
        out = self.root / "openssl.p7s"
        done = openssl("cms", "-sign", "-binary", "-outform", "DER", "-in", self.content,
                       "-signer", self.certificate, "-inkey", self.key, "-out", out,
                       *options)
        assert done.returncode == 0, done.stderr
        return out.read_bytes()


def signer_of(issued: Issued) -> Signer:
    return Signer([SigningKey(issued.certificate, issued.private_key)])


@pytest.mark.parametrize("kind", KINDS)
def test_a_signed_answer_verifies_with_openssl_and_with_ours(tmp_path: Path,
                                                             kind: KeyType) -> None:
    files = Files(tmp_path, kind)
    signature = signer_of(files.issued).sign(CONTENT)
    signature_file = files.write("answer.edi.p7s", signature.der)

    assert openssl_verifies(files.content, signature_file, files.ca_file)
    verified = files.ours(signature.der)
    assert verified.signer.subject == "CN=test gateway,O=Single Window Gateway"
    assert verified.signer.certificate_sha256 == signature.certificate_fingerprint
    assert verified.signer.digest_algorithm == "sha256"
    assert verified.signer.signature_algorithm == (
        "ECDSA" if kind == "ec-p256" else "RSA PKCS#1 v1.5")
    assert verified.signer.signed_at is not None
    assert abs(verified.signer.signed_at - signature.signed_at) < dt.timedelta(seconds=2)
    assert verified.content_sha256 == signature.content_digest
    assert verified.signature_sha256 == signature.signature_digest
    assert verified.signer.chain == (verified.signer.subject,
                                     "CN=test CA,O=Single Window Gateway")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("position", [0, len(CONTENT) // 2, len(CONTENT) - 1])
def test_a_changed_content_byte_fails_both(tmp_path: Path, kind: KeyType,
                                           position: int) -> None:
    files = Files(tmp_path, kind)
    signature = files.write("answer.edi.p7s", signer_of(files.issued).sign(CONTENT).der)
    changed = bytearray(CONTENT)
    changed[position] ^= 0x01
    files.write("answer.edi", bytes(changed))

    assert not openssl_verifies(files.content, signature, files.ca_file)
    with pytest.raises(SignatureInvalid, match=r"not the one that was signed"):
        files.ours(signature.read_bytes(), bytes(changed))


def _signature_bytes(files: Files, der: bytes) -> dict[str, int]:
    """Where to change one byte of a signature: its value (the last byte), the signed
    message digest, the signer certificate's own signature (made by the CA)."""
    digest = hashlib.sha256(CONTENT).digest()
    certificate = files.issued.certificate.public_bytes(serialization.Encoding.DER)
    return {"signature value": len(der) - 1,
            "message digest": der.index(digest) + 5,
            "certificate": der.index(certificate) + len(certificate) - 1}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["signature value", "message digest", "certificate"])
def test_a_changed_signature_byte_fails_both(tmp_path: Path, kind: KeyType,
                                             where: str) -> None:
    files = Files(tmp_path, kind)
    der = bytearray(signer_of(files.issued).sign(CONTENT).der)
    der[_signature_bytes(files, bytes(der))[where]] ^= 0x01
    signature = files.write("answer.edi.p7s", bytes(der))

    assert not openssl_verifies(files.content, signature, files.ca_file)
    with pytest.raises(SignatureInvalid):
        files.ours(bytes(der))


def test_a_signature_by_another_ca_fails_both(tmp_path: Path) -> None:
    files = Files(tmp_path)
    stranger = issue_signing_certificate(create_ca("test CA"), "test gateway")
    signature = files.write("answer.edi.p7s", signer_of(stranger).sign(CONTENT).der)

    assert not openssl_verifies(files.content, signature, files.ca_file)
    with pytest.raises(SignatureInvalid, match=r"no chain to a trust anchor"):
        files.ours(signature.read_bytes())


def test_an_expired_signer_certificate_fails_both(tmp_path: Path) -> None:
    files = Files(tmp_path)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    expired = issue_signing_certificate(files.ca, "expired gateway", days=1, now=long_ago)
    signature = files.write("answer.edi.p7s", sign_detached(CONTENT, expired))

    assert not openssl_verifies(files.content, signature, files.ca_file)
    with pytest.raises(SignatureInvalid, match=r"expired gateway.* is valid from .* not at"):
        files.ours(signature.read_bytes())


def test_ber_with_indefinite_lengths_verifies_with_both(tmp_path: Path) -> None:
    """Streaming writers (BouncyCastle, OpenSSL -stream) send BER: the outer structures in
    indefinite-length form."""
    files = Files(tmp_path)
    der = signer_of(files.issued).sign(CONTENT).der
    ber = indefinite(der, depth=4)
    assert ber != der and ber[1] == 0x80
    signature = files.write("answer.edi.p7s", ber)

    assert openssl_verifies(files.content, signature, files.ca_file)
    assert files.ours(ber).signer.subject == "CN=test gateway,O=Single Window Gateway"


@pytest.mark.parametrize(("options", "digest"), [
    ((), "sha256"), (("-md", "sha256"), "sha256"), (("-md", "sha384"), "sha384"),
    (("-md", "sha512"), "sha512"), (("-keyid",), "sha256"), (("-nosmimecap",), "sha256")])
def test_openssl_signatures_verify_with_ours(tmp_path: Path, options: tuple[str, ...],
                                             digest: str) -> None:
    files = Files(tmp_path)
    verified = files.ours(files.openssl_sign(*options))
    assert verified.signer.digest_algorithm == digest
    assert verified.signer.certificate_sha256 == \
        files.issued.certificate.fingerprint(hashes.SHA256()).hex()


def test_an_rsa_pss_signature_by_openssl_verifies_with_ours(tmp_path: Path) -> None:
    files = Files(tmp_path, "rsa-2048")
    signature = files.openssl_sign("-md", "sha256", "-keyopt", "rsa_padding_mode:pss")
    assert files.ours(signature).signer.signature_algorithm == "RSASSA-PSS"
    with pytest.raises(SignatureInvalid, match=r"not the one that was signed"):
        files.ours(signature, CONTENT[:-1])


def test_an_openssl_signature_without_certificates_says_the_certificate_is_missing(
        tmp_path: Path) -> None:
    files = Files(tmp_path)
    with pytest.raises(SignatureInvalid, match=r"the signer's certificate .* is missing"):
        files.ours(files.openssl_sign("-md", "sha256", "-nocerts"))


def test_an_openssl_sha1_signature_is_refused_by_name(tmp_path: Path) -> None:
    files = Files(tmp_path)
    with pytest.raises(SignatureInvalid, match=r"SHA-1 .* refused"):
        files.ours(files.openssl_sign("-md", "sha1"))


def test_an_openssl_signature_without_signed_attributes_is_refused(tmp_path: Path) -> None:
    files = Files(tmp_path)
    with pytest.raises(SignatureInvalid, match=r"no signed attributes"):
        files.ours(files.openssl_sign("-noattr"))


def test_an_attached_openssl_signature_is_not_taken_for_a_detached_one(tmp_path: Path) -> None:
    files = Files(tmp_path)
    for options in (("-nodetach",), ("-nodetach", "-stream")):
        with pytest.raises(SignatureInvalid, match=r"carries its content"):
            files.ours(files.openssl_sign(*options))
