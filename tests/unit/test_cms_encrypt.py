"""security.envelope_write.encrypt_enveloped and security.compressed.compress_data: what we
encrypt decrypts with our reader (same algorithm name) and with the openssl binary (an
independent peer), for every recipient of a rotation; the structure is what RFC 5652,
RFC 5083 and RFC 5084 say; wrong recipients are refused naming the certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyasn1.codec.der import decoder
from pyasn1_modules import rfc3274, rfc5083, rfc5084, rfc5652

from gateway.errors import ConfigError, DecryptionFailed
from gateway.security.compressed import compress_data, decompress
from gateway.security.envelope import decrypt_enveloped
from gateway.security.envelope_write import CIPHERS, encrypt_enveloped
from gateway.security.pki import create_ca, issue_signing_certificate
from tests.support.as2_write import CA, PARTNER, PARTNER_NEXT, US, OnDisk
from tests.support.cms import openssl

ALGORITHMS = sorted(CIPHERS)
CBC = [name for name in ALGORITHMS if name.endswith("-cbc")]
GCM = [name for name in ALGORITHMS if name.endswith("-gcm")]
CONTENT = b"Content-Type: application/edifact\r\n\r\nUNB+UNOC:3'\n\x00\xff" * 7


def _content(data: bytes, spec: Any) -> Any:
    info, rest = decoder.decode(data, asn1Spec=rfc5652.ContentInfo())
    assert not rest
    content, rest = decoder.decode(bytes(info["content"]), asn1Spec=spec)
    assert not rest
    return str(info["contentType"]), content


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", [0, 1, 7, 8, 15, 16, 17, 100_003])
def test_each_algorithm_decrypts_with_our_reader_to_the_content_and_its_name(
        algorithm: str, size: int) -> None:
    content = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    der = encrypt_enveloped(content, [PARTNER.certificate], algorithm)
    decrypted = decrypt_enveloped(der, [(PARTNER.certificate, PARTNER.private_key)])
    assert decrypted.content == content
    assert decrypted.algorithm == algorithm
    assert decrypted.key_transport == "rsa-pkcs1v15"
    assert decrypted.content_type == str(rfc5652.id_data)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_recipient_of_a_rotation_decrypts_and_no_one_else(algorithm: str) -> None:
    der = encrypt_enveloped(CONTENT, [PARTNER.certificate, PARTNER_NEXT.certificate],
                            algorithm)
    for partner in (PARTNER, PARTNER_NEXT):
        assert decrypt_enveloped(der, [(partner.certificate, partner.private_key)]
                                 ).content == CONTENT
    with pytest.raises(DecryptionFailed):
        decrypt_enveloped(der, [(US.certificate, US.private_key)])


@pytest.mark.parametrize("algorithm", CBC)
def test_cbc_is_enveloped_data_naming_each_recipient_by_issuer_and_serial(
        algorithm: str) -> None:
    der = encrypt_enveloped(CONTENT, [PARTNER.certificate, PARTNER_NEXT.certificate],
                            algorithm)
    kind, enveloped = _content(der, rfc5652.EnvelopedData())
    assert kind == str(rfc5652.id_envelopedData)
    assert int(enveloped["version"]) == 0  # RFC 5652 section 6.1: ktri v0 only
    serials = set()
    for info in enveloped["recipientInfos"]:
        ktri = info["ktri"]
        assert int(ktri["version"]) == 0
        assert str(ktri["keyEncryptionAlgorithm"]["algorithm"]) == "1.2.840.113549.1.1.1"
        serials.add(int(ktri["rid"]["issuerAndSerialNumber"]["serialNumber"]))
    assert serials == {PARTNER.certificate.serial_number,
                       PARTNER_NEXT.certificate.serial_number}
    encrypted = enveloped["encryptedContentInfo"]
    assert str(encrypted["contentEncryptionAlgorithm"]["algorithm"]) == CIPHERS[algorithm].oid
    ciphertext = bytes(encrypted["encryptedContent"])
    block = 8 if algorithm == "3des-cbc" else 16
    # PKCS #7 padding always adds 1 to block-size bytes (RFC 5652 section 6.3).
    assert len(ciphertext) == (len(CONTENT) // block + 1) * block
    assert b"UNB+UNOC" not in der


@pytest.mark.parametrize("algorithm", GCM)
def test_gcm_is_auth_enveloped_data_with_a_12_byte_nonce_and_16_byte_tag(
        algorithm: str) -> None:
    der = encrypt_enveloped(CONTENT, [PARTNER.certificate], algorithm)
    kind, enveloped = _content(der, rfc5083.AuthEnvelopedData())
    assert kind == str(rfc5083.id_ct_authEnvelopedData)
    assert int(enveloped["version"]) == 0
    encrypted = enveloped["authEncryptedContentInfo"]
    parameters, _ = decoder.decode(
        bytes(encrypted["contentEncryptionAlgorithm"]["parameters"]),
        asn1Spec=rfc5084.GCMParameters())
    assert len(bytes(parameters["aes-nonce"])) == 12
    assert int(parameters["aes-ICVlen"]) == 16
    assert len(bytes(enveloped["mac"])) == 16
    assert len(bytes(encrypted["encryptedContent"])) == len(CONTENT)


@pytest.mark.parametrize("algorithm", GCM)
def test_a_changed_gcm_ciphertext_byte_is_refused(algorithm: str) -> None:
    der = bytearray(encrypt_enveloped(CONTENT, [PARTNER.certificate], algorithm))
    der[-40] ^= 0x01  # inside the ciphertext, before the 16-byte mac and its header
    with pytest.raises(DecryptionFailed):
        decrypt_enveloped(bytes(der), [(PARTNER.certificate, PARTNER.private_key)])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_encryption_uses_a_fresh_key_and_iv(algorithm: str) -> None:
    first = encrypt_enveloped(CONTENT, [PARTNER.certificate], algorithm)
    second = encrypt_enveloped(CONTENT, [PARTNER.certificate], algorithm)
    assert first[-64:] != second[-64:]


def test_an_ec_recipient_is_refused_naming_its_certificate() -> None:
    ec_ca = create_ca("EC CA")
    ec_partner = issue_signing_certificate(ec_ca, "EC partner")
    with pytest.raises(ConfigError, match=r"CN=EC partner,O=Single Window Gateway.*RSA"):
        encrypt_enveloped(CONTENT, [PARTNER.certificate, ec_partner.certificate],
                          "aes256-cbc")


def test_an_unknown_algorithm_and_no_recipient_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"rc2-cbc.*aes128-cbc"):
        encrypt_enveloped(CONTENT, [PARTNER.certificate], "rc2-cbc")
    with pytest.raises(ConfigError, match=r"no recipient"):
        encrypt_enveloped(CONTENT, [], "aes256-cbc")


def test_the_ca_certificate_is_not_what_was_encrypted_to() -> None:
    der = encrypt_enveloped(CONTENT, [PARTNER.certificate], "aes128-cbc")
    with pytest.raises(DecryptionFailed):
        decrypt_enveloped(der, [(CA.certificate, CA.private_key)])


# -- the openssl binary as the partner -------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_openssl_decrypts_each_algorithm(tmp_path: Path, algorithm: str) -> None:
    """OpenSSL 3.0 reads AuthEnvelopedData too (``cms -decrypt``), so GCM is checked here."""
    files = OnDisk.write(tmp_path, PARTNER_NEXT)
    encrypted = tmp_path / "message.p7m"
    encrypted.write_bytes(encrypt_enveloped(CONTENT, [PARTNER.certificate,
                                                      PARTNER_NEXT.certificate], algorithm))
    out = tmp_path / "out"
    done = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", encrypted,
                   "-recip", files.certificate, "-inkey", files.key, "-out", out)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == CONTENT


# -- compression -----------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", CONTENT, bytes(range(256)) * 4000])
def test_compressed_data_inflates_to_the_content(content: bytes) -> None:
    der = compress_data(content)
    assert decompress(der, max_bytes=len(content)) == content
    kind, compressed = _content(der, rfc3274.CompressedData())
    assert kind == str(rfc3274.id_ct_compressedData)
    assert int(compressed["version"]) == 0
    assert compressed["compressionAlgorithm"]["algorithm"] == rfc3274.id_alg_zlibCompress
    assert not compressed["compressionAlgorithm"]["parameters"].isValue
    assert compressed["encapContentInfo"]["eContentType"] == rfc5652.id_data


def test_compressed_data_is_smaller_for_repetitive_content() -> None:
    content = CONTENT * 1000
    assert len(compress_data(content)) < len(content) // 20
