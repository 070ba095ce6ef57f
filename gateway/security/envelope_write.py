"""Encrypting for a partner: a CMS EnvelopedData (RFC 5652 section 6) with a CBC cipher, or an
AuthEnvelopedData (RFC 5083) with AES-GCM (RFC 5084), DER, written with pyasn1 and
cryptography's primitives.  The reading side is security.envelope; the algorithm names here
are the ones its ``Decrypted.algorithm`` reports, so that a round trip is checked by name.

cryptography's own PKCS7EnvelopeBuilder writes AES-CBC only; AS2 partners also ask for 3DES
(RFC 4130's own example) and AES-GCM, so the structure is built by hand.

Key transport: RSA PKCS#1 v1.5 (RFC 3370 section 4.2.1), the one every AS2 product reads;
each recipient named by issuer and serial number (RFC 5652 section 6.2.1), one RecipientInfo
per certificate so that a partner rotating its key can decrypt with the old or the new."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import tag, univ
from pyasn1_modules import rfc5083, rfc5084, rfc5280, rfc5652

from gateway.errors import ConfigError
from gateway.security.envelope import CONTENT_CIPHERS, ContentCipher

_RSA_ENCRYPTION = univ.ObjectIdentifier("1.2.840.113549.1.1.1")
#: GCM nonce and tag lengths: RFC 5084 section 3.2 recommends a 12-octet nonce; the full
#: 16-octet tag is what OpenSSL and the AS2 products write.
_GCM_NONCE = 12
_GCM_TAG = 16


#: What we encrypt with, by the name security.envelope reports.
CIPHERS: dict[str, ContentCipher] = {c.name: c for c in CONTENT_CIPHERS}


def encrypt_enveloped(content: bytes, recipients: Sequence[x509.Certificate],
                      algorithm: str) -> bytes:
    """A DER ContentInfo holding ``content`` (as id-data) encrypted for each of
    ``recipients`` with ``algorithm`` (a key of CIPHERS).  ConfigError when the algorithm
    is unknown, no recipient is given, or a recipient's key is not RSA."""
    cipher = CIPHERS.get(algorithm)
    if cipher is None:
        raise ConfigError(f"encryption algorithm {algorithm!r}: one of "
                          f"{', '.join(sorted(CIPHERS))} is supported")
    if not recipients:
        raise ConfigError("encryption: no recipient certificate is configured")
    keys = [_rsa_key(certificate) for certificate in recipients]
    content_key = _content_key(cipher)
    infos = rfc5652.RecipientInfos()
    for position, (certificate, key) in enumerate(zip(recipients, keys, strict=True)):
        infos[position] = _recipient_info(certificate, key, content_key)
    if cipher.gcm:
        return _auth_enveloped(content, content_key, cipher, infos)
    return _enveloped(content, content_key, cipher, infos)


def _rsa_key(certificate: x509.Certificate) -> rsa.RSAPublicKey:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError(f"encryption: the certificate of {certificate.subject.rfc4514_string()}"
                          f" has a {type(key).__name__.removeprefix('_')} key; AS2 encryption "
                          "needs RSA (key transport, RFC 3370 section 4.2)")
    return key


def _content_key(cipher: ContentCipher) -> bytes:
    key = os.urandom(cipher.key_bytes)
    if cipher.oid == CIPHERS["3des-cbc"].oid:
        # DES keys carry odd parity in each byte's low bit (FIPS 46-3); OpenSSL ignores it
        # on decryption, but some tools check it.
        key = bytes((b & 0xFE) | (bin(b >> 1).count("1") + 1) % 2 for b in key)
    return key


def _recipient_info(certificate: x509.Certificate, key: rsa.RSAPublicKey,
                    content_key: bytes) -> Any:
    """KeyTransRecipientInfo, version 0 as the recipient is named by issuer and serial
    number (RFC 5652 section 6.2.1); rsaEncryption with NULL parameters (RFC 3370 4.2.1)."""
    ktri = rfc5652.KeyTransRecipientInfo()
    ktri["version"] = 0
    issuer, _ = decoder.decode(certificate.issuer.public_bytes(), asn1Spec=rfc5280.Name())
    ktri["rid"]["issuerAndSerialNumber"]["issuer"] = issuer
    ktri["rid"]["issuerAndSerialNumber"]["serialNumber"] = certificate.serial_number
    ktri["keyEncryptionAlgorithm"]["algorithm"] = _RSA_ENCRYPTION
    ktri["keyEncryptionAlgorithm"]["parameters"] = univ.Any(encoder.encode(univ.Null("")))
    ktri["encryptedKey"] = key.encrypt(content_key, padding.PKCS1v15())
    info = rfc5652.RecipientInfo()
    info["ktri"] = ktri
    return info


def _encrypted_content_info(cipher: ContentCipher, parameters: bytes, ciphertext: bytes) -> Any:
    """EncryptedContentInfo with id-data inside (AS2 encrypts a MIME entity as data)."""
    info = rfc5652.EncryptedContentInfo()
    info["contentType"] = rfc5652.id_data
    info["contentEncryptionAlgorithm"]["algorithm"] = univ.ObjectIdentifier(cipher.oid)
    info["contentEncryptionAlgorithm"]["parameters"] = univ.Any(parameters)
    info["encryptedContent"] = rfc5652.EncryptedContent(ciphertext).subtype(
        implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 0))
    return info


def _enveloped(content: bytes, content_key: bytes, cipher: ContentCipher, infos: Any) -> bytes:
    """EnvelopedData, version 0: no originator info, only version-0 KeyTransRecipientInfos,
    no unprotected attributes (RFC 5652 section 6.1)."""
    algorithm: algorithms.AES | TripleDES
    if cipher.oid == CIPHERS["3des-cbc"].oid:
        algorithm = TripleDES(content_key)
    else:
        algorithm = algorithms.AES(content_key)
    iv = os.urandom(algorithm.block_size // 8)
    # RFC 5652 section 6.3: PKCS #7 padding, 1 to block-size octets, always present.
    padder = PKCS7(algorithm.block_size).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    enveloped = rfc5652.EnvelopedData()
    enveloped["version"] = 0
    enveloped["recipientInfos"] = infos
    # RFC 3565 section 4.1 / RFC 3370 section 5.1: the parameters are the IV.
    parameters = encoder.encode(univ.OctetString(iv))
    enveloped["encryptedContentInfo"] = _encrypted_content_info(cipher, parameters, ciphertext)
    return _content_info(rfc5652.id_envelopedData, enveloped)


def _auth_enveloped(content: bytes, content_key: bytes, cipher: ContentCipher, infos: Any) -> bytes:
    """AuthEnvelopedData, version 0, no authenticated attributes (RFC 5083 section 2.1:
    they are needed only for a content type other than id-data), the tag as ``mac``."""
    nonce = os.urandom(_GCM_NONCE)
    encryptor = Cipher(algorithms.AES(content_key), modes.GCM(nonce)).encryptor()
    ciphertext = encryptor.update(content) + encryptor.finalize()
    parameters = rfc5084.GCMParameters()
    parameters["aes-nonce"] = nonce
    parameters["aes-ICVlen"] = _GCM_TAG
    enveloped = rfc5083.AuthEnvelopedData()
    enveloped["version"] = 0
    enveloped["recipientInfos"] = infos
    enveloped["authEncryptedContentInfo"] = _encrypted_content_info(
        cipher, encoder.encode(parameters), ciphertext)
    enveloped["mac"] = encryptor.tag[:_GCM_TAG]
    return _content_info(rfc5083.id_ct_authEnvelopedData, enveloped)


def _content_info(content_type: Any, content: Any) -> bytes:
    info = rfc5652.ContentInfo()
    info["contentType"] = content_type
    info["content"] = encoder.encode(content)
    return bytes(encoder.encode(info))
