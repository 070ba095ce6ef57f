"""security.envelope against two independent peers: Mendelson AS2's recorded messages (3DES,
BER with indefinite lengths) and the ``openssl cms -encrypt`` binary (AES-CBC, 3DES, AES-GCM;
PKCS#1 v1.5 and OAEP); RFC 3218: every failure once a private key is used reads alike; and
hostile bytes end in DecryptionFailed and nothing else."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import tag, univ
from pyasn1_modules import rfc5083, rfc5652

from gateway.errors import DecryptionFailed, InboundRejected
from gateway.security.compressed import decompress
from gateway.security.envelope import Decrypted, decrypt_enveloped
from tests.support.as2_corpus import (
    AS2_FIXTURES,
    first_part,
    payload,
    pkcs7_mime,
    receiver_keys,
    request,
)
from tests.support.cms import openssl
from tests.support.mutation import mutated
from tests.support.signing import signer_for_tests

CONTENT = b"UNA:+.? 'UNB+UNOC:3+DEMOVAN+SWGATEWAY+261203:1326+42'UNZ+0+42'\r\n\x00\xff" * 7
TEXT = "the message could not be decrypted"
Keys = list[tuple[x509.Certificate, Any]]


class Recipient:
    """An RSA key and a certificate for it, with both on disk for OpenSSL."""

    def __init__(self, name: str, *, with_key_identifier: bool = True) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(self.key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(start + dt.timedelta(days=30))
                   .add_extension(x509.KeyUsage(
                       digital_signature=False, content_commitment=False,
                       key_encipherment=True, data_encipherment=False, key_agreement=False,
                       key_cert_sign=False, crl_sign=False, encipher_only=False,
                       decipher_only=False), critical=True))
        if with_key_identifier:
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                critical=False)
        self.certificate = builder.sign(self.key, hashes.SHA256())

    @property
    def keys(self) -> Keys:
        return [(self.certificate, self.key)]

    def encrypt(self, root: Path, *options: str, content: bytes = CONTENT) -> bytes:
        """``openssl cms -encrypt`` to this recipient (``options`` after -recip: -keyopt applies
        to the recipient before it), DER unless ``options`` say -stream."""
        certificate = root / "recipient.crt"
        certificate.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        plain, out = root / "content.bin", root / "message.p7m"
        plain.write_bytes(content)
        done = openssl("cms", "-encrypt", "-binary", "-outform", "DER", "-in", plain,
                       "-out", out, "-recip", certificate, *options)
        assert done.returncode == 0, done.stderr
        return out.read_bytes()


@functools.cache
def recipient() -> Recipient:
    return Recipient("test AS2 receiver")


@functools.cache
def other_recipient() -> Recipient:
    return Recipient("another receiver", with_key_identifier=False)


# Mendelson AS2, recorded (tests/support/as2_corpus.py) --------------------------------------

def test_mendelsons_3des_ber_message_decrypts_to_the_payload() -> None:
    decrypted = decrypt_enveloped(pkcs7_mime(request("mecas2_encrypted.as2")), receiver_keys())
    assert decrypted == Decrypted(content=payload(), content_type="1.2.840.113549.1.7.1",
                                  algorithm="3des-cbc", key_transport="rsa-pkcs1v15")


def test_mendelsons_signed_encrypted_message_decrypts_to_the_signed_payload() -> None:
    decrypted = decrypt_enveloped(pkcs7_mime(request("mecas2_signed_encrypted.as2")),
                                  receiver_keys())
    assert decrypted.algorithm == "3des-cbc"
    assert first_part(decrypted.content).get_payload(decode=True) == payload()


def test_mendelsons_compressed_signed_encrypted_message_decrypts_and_decompresses() -> None:
    decrypted = decrypt_enveloped(
        pkcs7_mime(request("mecas2_compressed_signed_encrypted.as2")), receiver_keys())
    inner = decompress(pkcs7_mime(first_part(decrypted.content)), 1024 * 1024)
    entity = email.message_from_bytes(inner, policy=email.policy.compat32)
    assert entity.get_payload(decode=True) == payload()


def test_a_mendelson_message_for_someone_else_is_refused() -> None:
    with pytest.raises(DecryptionFailed) as refused:
        decrypt_enveloped(pkcs7_mime(request("mecas2_encrypted.as2")), recipient().keys)
    assert str(refused.value) == TEXT
    assert "no RecipientInfo" in refused.value.reason


# OpenSSL as the sender ----------------------------------------------------------------------

CIPHERS = [("-aes128", "aes128-cbc"), ("-aes192", "aes192-cbc"), ("-aes256", "aes256-cbc"),
           ("-des3", "3des-cbc"), ("-aes-128-gcm", "aes128-gcm"),
           ("-aes-256-gcm", "aes256-gcm")]
TRANSPORTS = [((), "rsa-pkcs1v15"),
              (("-keyopt", "rsa_padding_mode:oaep"), "rsa-oaep"),
              (("-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"),
               "rsa-oaep")]


@pytest.mark.parametrize(("option", "algorithm"), CIPHERS)
@pytest.mark.parametrize(("transport", "transport_name"), TRANSPORTS)
def test_what_openssl_encrypts_decrypts(tmp_path: Path, option: str, algorithm: str,
                                        transport: tuple[str, ...],
                                        transport_name: str) -> None:
    message = recipient().encrypt(tmp_path, option, *transport)
    decrypted = decrypt_enveloped(message, recipient().keys)
    assert decrypted == Decrypted(content=CONTENT, content_type="1.2.840.113549.1.7.1",
                                  algorithm=algorithm, key_transport=transport_name)


def test_gcm_in_enveloped_data_with_the_tag_after_the_ciphertext(tmp_path: Path) -> None:
    """Some AS2 tools send AES-GCM in an EnvelopedData, which has no field for the tag, and
    append it to the ciphertext: OpenSSL's AuthEnvelopedData (RFC 5083) rewritten so."""
    message = recipient().encrypt(tmp_path, "-aes-256-gcm")
    info, _ = decoder.decode(message, asn1Spec=rfc5652.ContentInfo())
    auth, _ = decoder.decode(bytes(info["content"]), asn1Spec=rfc5083.AuthEnvelopedData())
    encrypted = auth["authEncryptedContentInfo"]
    encrypted["encryptedContent"] = encrypted["encryptedContent"].clone(
        bytes(encrypted["encryptedContent"]) + bytes(auth["mac"]))
    body = (encoder.encode(univ.Integer(0)) + encoder.encode(auth["recipientInfos"])
            + encoder.encode(encrypted))
    enveloped = b"\x30\x82" + len(body).to_bytes(2, "big") + body  # SEQUENCE (X.690 8.1.3.5)
    info["contentType"] = rfc5652.id_envelopedData
    info["content"] = univ.Any(enveloped).subtype(
        explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0))
    rewritten = bytes(encoder.encode(info))
    decrypted = decrypt_enveloped(rewritten, recipient().keys)
    assert (decrypted.content, decrypted.algorithm) == (CONTENT, "aes256-gcm")
    changed = bytearray(rewritten)
    changed[-1] ^= 1  # the tag's last byte
    with pytest.raises(DecryptionFailed):
        decrypt_enveloped(bytes(changed), recipient().keys)


def test_openssl_oaep_sha256_names_its_hash(tmp_path: Path) -> None:
    """RFC 4055 section 4.1: explicit parameters, SHA-256 and MGF1 with SHA-256."""
    message = recipient().encrypt(tmp_path, "-aes256", "-keyopt", "rsa_padding_mode:oaep",
                                  "-keyopt", "rsa_oaep_md:sha256")
    assert b"\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01" in message  # id-sha256
    assert decrypt_enveloped(message, recipient().keys).content == CONTENT


@pytest.mark.parametrize("option", ["-aes256", "-des3", "-aes-256-gcm"])
def test_openssl_streaming_ber_decrypts(tmp_path: Path, option: str) -> None:
    """-stream writes indefinite lengths and the ciphertext in chunks (BER), as Mendelson."""
    content = os.urandom(50_000)
    message = recipient().encrypt(tmp_path, option, "-stream", content=content)
    assert message[1] == 0x80  # indefinite length
    assert decrypt_enveloped(message, recipient().keys).content == content


def test_a_recipient_named_by_subject_key_identifier_is_found(tmp_path: Path) -> None:
    message = recipient().encrypt(tmp_path, "-aes128", "-keyid")
    assert decrypt_enveloped(message, recipient().keys).content == CONTENT


def test_a_key_identifier_is_computed_when_the_certificate_has_none(tmp_path: Path) -> None:
    """A sender may name our key by RFC 5280 section 4.2.1.2 method 1 when our certificate
    carries no subjectKeyIdentifier (OpenSSL refuses -keyid then: the rid is rewritten)."""
    identifier = x509.SubjectKeyIdentifier.from_public_key(
        other_recipient().key.public_key()).digest

    def by_key_identifier(enveloped: Any) -> None:
        ktri = enveloped["recipientInfos"][0]["ktri"]
        ktri["version"] = 2  # RFC 5652 section 6.2.1: 2 with a subjectKeyIdentifier
        ktri["rid"]["subjectKeyIdentifier"] = identifier

    message = _rebuild(other_recipient().encrypt(tmp_path, "-aes128"), by_key_identifier)
    assert decrypt_enveloped(message, other_recipient().keys).content == CONTENT


def test_during_a_rotation_either_key_decrypts(tmp_path: Path) -> None:
    both = other_recipient().keys + recipient().keys
    for sender in (recipient(), other_recipient()):
        assert decrypt_enveloped(sender.encrypt(tmp_path, "-aes256"), both).content == CONTENT


def test_a_message_to_several_recipients_decrypts_with_ours(tmp_path: Path) -> None:
    theirs = tmp_path / "other.crt"
    theirs.write_bytes(other_recipient().certificate.public_bytes(serialization.Encoding.PEM))
    message = recipient().encrypt(tmp_path, "-aes256", "-recip", str(theirs))
    assert decrypt_enveloped(message, recipient().keys).content == CONTENT
    assert decrypt_enveloped(message, other_recipient().keys).content == CONTENT


# RFC 3218: failures after the private key is used read alike --------------------------------

def _rebuild(message: bytes, change: Callable[[Any], None]) -> bytes:
    """A DER EnvelopedData with its first KeyTransRecipientInfo or content changed."""
    info, _ = decoder.decode(message, asn1Spec=rfc5652.ContentInfo())
    enveloped, _ = decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.EnvelopedData())
    change(enveloped)
    info["content"] = univ.Any(encoder.encode(enveloped)).subtype(
        explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0))
    return bytes(encoder.encode(info))


def _with_encrypted_key(message: bytes, encrypted_key: bytes) -> bytes:
    def change(enveloped: Any) -> None:
        ktri = enveloped["recipientInfos"][0]["ktri"]
        ktri["encryptedKey"] = ktri["encryptedKey"].clone(encrypted_key)
    return _rebuild(message, change)


def _parts(message: bytes) -> tuple[bytes, bytes]:
    """The AES-256-CBC IV and ciphertext of a DER EnvelopedData."""
    info, _ = decoder.decode(message, asn1Spec=rfc5652.ContentInfo())
    enveloped, _ = decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.EnvelopedData())
    encrypted = enveloped["encryptedContentInfo"]
    iv, _ = decoder.decode(bytes(encrypted["contentEncryptionAlgorithm"]["parameters"]),
                           asn1Spec=univ.OctetString())
    return bytes(iv), bytes(encrypted["encryptedContent"])


def _pads_badly(key: bytes, iv: bytes, ciphertext: bytes) -> bool:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = PKCS7(128).unpadder()
    try:
        unpadder.update(decryptor.update(ciphertext) + decryptor.finalize())
        unpadder.finalize()
    except ValueError:
        return True
    return False


def _failures(tmp_path: Path) -> dict[str, bytes]:
    message = recipient().encrypt(tmp_path, "-aes256")
    public = recipient().key.public_key()
    iv, ciphertext = _parts(message)
    # A well-padded key that is not the content key, chosen so the content's padding fails
    # (a random key pads well once in ~256 tries: that one would decrypt to garbage, which
    # is CBC's lot and the signature's job to catch).
    wrong = os.urandom(32)
    while not _pads_badly(wrong, iv, ciphertext):
        wrong = os.urandom(32)
    # The last byte of the block before the last, changed so the last padding byte is 0.
    pad = 16 - len(CONTENT) % 16
    corrupted = bytearray(ciphertext)
    corrupted[-17] ^= pad

    def with_content(enveloped: Any) -> None:
        encrypted = enveloped["encryptedContentInfo"]
        encrypted["encryptedContent"] = encrypted["encryptedContent"].clone(bytes(corrupted))

    return {
        # Random bytes below the modulus: PKCS#1 v1.5 padding fails (or, with OpenSSL's
        # implicit rejection, yields a random message of a random length).
        "bad padding": _with_encrypted_key(message, b"\x00" + os.urandom(255)),
        "wrong key": _with_encrypted_key(message, public.encrypt(wrong, padding.PKCS1v15())),
        "key of the wrong length": _with_encrypted_key(
            message, public.encrypt(os.urandom(16), padding.PKCS1v15())),
        "corrupted ciphertext": _rebuild(message, with_content),
    }


def test_padding_key_and_ciphertext_failures_cannot_be_told_apart(tmp_path: Path) -> None:
    seen = set()
    for name, message in _failures(tmp_path).items():
        with pytest.raises(DecryptionFailed) as refused:
            decrypt_enveloped(message, recipient().keys)
        error = refused.value
        seen.add((type(error), str(error), error.reason, error.code, repr(error.args)))
        assert str(error) == TEXT, name
    assert len(seen) == 1
    assert seen.pop()[2] == ""  # nothing for the log either


def test_oaep_and_gcm_failures_read_the_same(tmp_path: Path) -> None:
    """AuthEnvelopedData (RFC 5083) with OAEP: a changed encrypted key (OAEP fails) and a
    changed tag (GCM fails) end alike."""
    message = recipient().encrypt(tmp_path, "-aes-256-gcm", "-keyopt",
                                  "rsa_padding_mode:oaep")
    info, _ = decoder.decode(message, asn1Spec=rfc5652.ContentInfo())
    enveloped, _ = decoder.decode(bytes(info["content"]),
                                  asn1Spec=rfc5083.AuthEnvelopedData())
    encrypted_key = bytes(enveloped["recipientInfos"][0]["ktri"]["encryptedKey"])
    mac = bytes(enveloped["mac"])
    for field in (encrypted_key, mac):
        changed = bytearray(message)
        changed[message.index(field) + len(field) // 2] ^= 1
        with pytest.raises(DecryptionFailed) as refused:
            decrypt_enveloped(bytes(changed), recipient().keys)
        assert (type(refused.value), str(refused.value), refused.value.reason) == (
            DecryptionFailed, TEXT, "")


def test_decryption_failed_is_an_inbound_rejection() -> None:
    assert issubclass(DecryptionFailed, InboundRejected)
    assert not DecryptionFailed.retryable


# Refused before any work ----------------------------------------------------------------------

def test_an_absurd_size_is_refused_before_reading(tmp_path: Path) -> None:
    message = recipient().encrypt(tmp_path, "-aes256")
    with pytest.raises(DecryptionFailed) as refused:
        decrypt_enveloped(message, recipient().keys, max_bytes=len(message) - 1)
    assert str(refused.value) == TEXT
    assert "at most" in refused.value.reason
    assert decrypt_enveloped(message, recipient().keys, max_bytes=len(message)).content


def test_a_signed_data_is_not_enveloped_data() -> None:
    signature = signer_for_tests().sign(CONTENT).der
    with pytest.raises(DecryptionFailed) as refused:
        decrypt_enveloped(signature, recipient().keys)
    assert str(refused.value) == TEXT
    assert "1.2.840.113549.1.7.2" in refused.value.reason


@pytest.mark.parametrize("depth", [200, 5000, 200_000])
def test_deep_nesting_is_refused_not_a_crash(depth: int) -> None:
    data = b"\x30\x80" * depth + b"\x00\x00" * depth
    with pytest.raises(DecryptionFailed):
        decrypt_enveloped(data, recipient().keys)


# Hostile bytes ----------------------------------------------------------------------------------

EXAMPLES = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """The Mendelson 3DES BER message, when the corpus is there."""
    if not (AS2_FIXTURES / "mecas2_encrypted.as2").is_file():
        return ()
    return (pkcs7_mime(request("mecas2_encrypted.as2")),)


def _keys() -> Keys:
    if not (AS2_FIXTURES / "cert_test.p12").is_file():
        return recipient().keys
    return list(receiver_keys()) + recipient().keys


@EXAMPLES
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_decryption_failed(data: bytes) -> None:
    with pytest.raises(DecryptionFailed) as refused:
        decrypt_enveloped(data, recipient().keys)
    assert str(refused.value) == TEXT


@functools.cache
def openssl_seeds() -> tuple[bytes, ...]:
    with tempfile.TemporaryDirectory() as root:
        return (recipient().encrypt(Path(root), "-aes-256-gcm", "-stream"),
                recipient().encrypt(Path(root), "-aes128", "-keyopt", "rsa_padding_mode:oaep"))


@EXAMPLES
@given(st.data())
def test_changed_messages_raise_only_decryption_failed(data: st.DataObject) -> None:
    """A change may leave a message that still decrypts (a BER length written another way,
    a byte of the recipient's issuer we do not match on, a CBC block whose padding still
    holds): then it decrypts to something; otherwise it is DecryptionFailed, never another
    exception."""
    seed = data.draw(st.sampled_from(seeds() + openssl_seeds()))
    changed = data.draw(mutated([seed]))
    try:
        decrypted = decrypt_enveloped(changed, _keys())
    except DecryptionFailed as refused:
        assert str(refused) == TEXT
        return
    assert isinstance(decrypted.content, bytes)
