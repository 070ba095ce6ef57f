"""Decrypting a CMS EnvelopedData (RFC 5652 section 6) or AuthEnvelopedData (RFC 5083) sent
to us, with pyasn1's BER decoder (DER is BER; Mendelson writes indefinite lengths) and
cryptography's primitives: cryptography's own ``pkcs7_decrypt_*`` reads only DER AES-CBC with
PKCS#1 v1.5 (DESIGN.md), and AS2 partners also send 3DES, OAEP and GCM.

Key transport (RFC 5652 section 6.2.1): RSA PKCS#1 v1.5 (RFC 3370 section 4.2.1) and RSAES-OAEP
(RFC 3560, parameters RFC 4055 section 4.1).  Content encryption: AES-CBC (RFC 3565), DES-EDE3-CBC
(RFC 3370 section 5.1) and AES-GCM (RFC 5084) in AuthEnvelopedData, or in EnvelopedData with the
tag after the ciphertext, as some AS2 tools send it.

RFC 3218 section 2.3 (the Million Message Attack): once a private key is used, every failure
(padding of the content key, its length, the content's padding or tag) ends alike: a random
content key of the right length replaces a bad one, the content is decrypted with it all the
same, and one DecryptionFailed with one text is raised at the very end."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7
from pyasn1.codec.ber import decoder
from pyasn1.codec.der import encoder
from pyasn1.type import namedtype, tag, univ
from pyasn1_modules import rfc4055, rfc5083, rfc5084, rfc5280, rfc5652

from gateway.errors import DecryptionFailed
from gateway.security.cms import Algorithm, algorithm_of, decode_value

#: The largest ContentInfo decrypted unless the caller says otherwise.
MAX_ENCRYPTED_BYTES = 64 * 1024 * 1024
#: More recipients than any rotation needs; a message listing thousands is not for us.
MAX_RECIPIENTS = 64

_ENVELOPED = "1.2.840.113549.1.7.3"
_AUTH_ENVELOPED = str(rfc5083.id_ct_authEnvelopedData)
_RSA_PKCS1 = "1.2.840.113549.1.1.1"
_RSA_OAEP = str(rfc4055.id_RSAES_OAEP)
_MGF1 = "1.2.840.113549.1.1.8"
_P_SPECIFIED = "1.2.840.113549.1.1.9"
#: OAEP hashes (RFC 4055 section 2.1); SHA-1 is fine here: OAEP needs no collision resistance.
_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class ContentCipher:
    """A content-encryption algorithm, by its OID (RFC 3565 section 4.1, RFC 3370 section
    5.1, RFC 5084 section 3.2) and the name reported (and configured: envelope_write)."""

    oid: str
    name: str
    key_bytes: int
    gcm: bool


CONTENT_CIPHERS: tuple[ContentCipher, ...] = (
    ContentCipher("2.16.840.1.101.3.4.1.2", "aes128-cbc", 16, False),
    ContentCipher("2.16.840.1.101.3.4.1.22", "aes192-cbc", 24, False),
    ContentCipher("2.16.840.1.101.3.4.1.42", "aes256-cbc", 32, False),
    ContentCipher("1.2.840.113549.3.7", "3des-cbc", 24, False),
    ContentCipher(str(rfc5084.id_aes128_GCM), "aes128-gcm", 16, True),
    ContentCipher(str(rfc5084.id_aes192_GCM), "aes192-gcm", 24, True),
    ContentCipher(str(rfc5084.id_aes256_GCM), "aes256-gcm", 32, True),
)
_CIPHERS: dict[str, ContentCipher] = {c.oid: c for c in CONTENT_CIPHERS}


@dataclass(frozen=True)
class Decrypted:
    """The content of an enveloped message and how it was protected."""

    content: bytes
    #: The encrypted content's type, dotted (id-data 1.2.840.113549.1.7.1 for AS2).
    content_type: str
    #: "aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "aes128-gcm", ...
    algorithm: str
    #: "rsa-pkcs1v15" or "rsa-oaep".
    key_transport: str


def _context(number: int) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number)


# The ContentInfo's content read as its type directly, not as an ANY: pyasn1 drops the
# end-of-contents octets of an indefinite-length ANY (see security.cms).
_ENVELOPED_INFO = univ.Sequence(componentType=namedtype.NamedTypes(
    namedtype.NamedType("contentType", rfc5652.ContentType()),
    namedtype.NamedType("content", rfc5652.EnvelopedData().subtype(
        explicitTag=_context(0)))))
_AUTH_ENVELOPED_INFO = univ.Sequence(componentType=namedtype.NamedTypes(
    namedtype.NamedType("contentType", rfc5652.ContentType()),
    namedtype.NamedType("content", rfc5083.AuthEnvelopedData().subtype(
        explicitTag=_context(0)))))


@dataclass(frozen=True, slots=True)
class _Recipient:
    issuer: bytes | None
    serial: int | None
    key_identifier: bytes | None
    algorithm: Algorithm
    encrypted_key: bytes


@dataclass(frozen=True, slots=True)
class _Envelope:
    recipients: tuple[_Recipient, ...]
    content_type: str
    cipher: ContentCipher
    #: The IV (CBC) or nonce (GCM).
    iv: bytes
    ciphertext: bytes
    #: GCM only: the tag and the additional authenticated data.
    tag: bytes
    aad: bytes


def decrypt_enveloped(data: bytes,
                      keys: Sequence[tuple[x509.Certificate, PrivateKeyTypes]],
                      *, max_bytes: int = MAX_ENCRYPTED_BYTES) -> Decrypted:
    """The content of a ContentInfo holding EnvelopedData or AuthEnvelopedData addressed to
    one of ``keys`` (certificate and its private key; several during a rotation).

    Raises DecryptionFailed, always with the same text, whatever is wrong."""
    if len(data) > max_bytes:
        raise DecryptionFailed(f"the enveloped data is {len(data)} bytes; at most "
                               f"{max_bytes} are read")
    envelope = _read(data)
    recipient, key = _choose(envelope.recipients, keys)
    transport, scheme = _key_transport(recipient.algorithm)
    # From here on a private key is used: nothing may end early or say which step failed.
    content_key, key_ok = _unwrap(key, recipient.encrypted_key, scheme,
                                  envelope.cipher.key_bytes)
    content, content_ok = _open(envelope, content_key)
    if not (key_ok & content_ok):
        raise DecryptionFailed()
    return Decrypted(content=content, content_type=envelope.content_type,
                     algorithm=envelope.cipher.name, key_transport=transport)


def _read(data: bytes) -> _Envelope:
    kind = _content_type(data)
    if kind == _ENVELOPED:
        info = _decode(data, _ENVELOPED_INFO.clone(), "EnvelopedData (RFC 5652 section 6)")
        enveloped = info["content"]
        encrypted = enveloped["encryptedContentInfo"]
        mac, aad = None, b""
    elif kind == _AUTH_ENVELOPED:
        info = _decode(data, _AUTH_ENVELOPED_INFO.clone(), "AuthEnvelopedData (RFC 5083)")
        enveloped = info["content"]
        encrypted = enveloped["authEncryptedContentInfo"]
        mac = bytes(enveloped["mac"])
        attributes = enveloped["authAttrs"]
        # RFC 5083 section 2.2: the authenticated attributes are authenticated as their DER
        # with the EXPLICIT SET OF tag in place of the IMPLICIT [1].
        aad = (b"\x31" + bytes(encoder.encode(attributes))[1:]) if attributes.isValue else b""
    else:
        raise DecryptionFailed(f"not enveloped data: the ContentInfo holds {kind}")
    recipients = _recipients(enveloped["recipientInfos"])
    algorithm = algorithm_of(encrypted["contentEncryptionAlgorithm"])
    cipher = _CIPHERS.get(algorithm.oid)
    if cipher is None:
        raise DecryptionFailed(f"unsupported content encryption algorithm {algorithm.oid}")
    if not encrypted["encryptedContent"].isValue:
        raise DecryptionFailed("the encrypted content is absent (detached)")
    ciphertext = bytes(encrypted["encryptedContent"])
    if cipher.gcm:
        iv, tag_length = _gcm_parameters(algorithm)
        if mac is None:
            # EnvelopedData has no place for the tag: the tools that send GCM in it append
            # the tag to the ciphertext.
            if len(ciphertext) < tag_length:
                raise DecryptionFailed("the GCM ciphertext is shorter than its tag")
            ciphertext, mac = ciphertext[:-tag_length], ciphertext[-tag_length:]
        if len(mac) != tag_length:
            raise DecryptionFailed(f"the GCM tag has {len(mac)} bytes, its parameters say "
                                   f"{tag_length}")
        return _Envelope(recipients, str(encrypted["contentType"]), cipher, iv, ciphertext,
                         mac, aad)
    if mac is not None:
        raise DecryptionFailed(f"AuthEnvelopedData with {cipher.name}, which authenticates "
                               "nothing (RFC 5083 section 1 wants an authenticated cipher)")
    iv = _cbc_iv(algorithm, 8 if cipher.name == "3des-cbc" else 16)
    block = len(iv)
    if not ciphertext or len(ciphertext) % block:
        raise DecryptionFailed(f"the ciphertext has {len(ciphertext)} bytes, not a whole "
                               f"number of {block}-byte blocks")
    return _Envelope(recipients, str(encrypted["contentType"]), cipher, iv, ciphertext,
                     b"", b"")


def _content_type(data: bytes) -> str:
    """The ContentInfo's contentType, read from its first bytes only: the content may be
    tens of megabytes and is decoded once, with its own structure."""
    try:
        position = _header_end(data, 0, 0x30)
        oid, _ = decoder.decode(data[position:position + 2 + 127],
                                asn1Spec=univ.ObjectIdentifier())
        return str(oid)
    except Exception as exc:
        raise DecryptionFailed("cannot read the CMS ContentInfo (RFC 5652 section 3): "
                               f"{type(exc).__name__}") from exc


def _header_end(data: bytes, position: int, expected_tag: int) -> int:
    """Where the contents of the tag-length header at ``position`` begin (X.690 8.1)."""
    if data[position] != expected_tag:
        raise ValueError(f"tag {data[position]:#x}, {expected_tag:#x} expected")
    first = data[position + 1]
    if first < 0x80 or first == 0x80:  # short form, or indefinite
        return position + 2
    return position + 2 + (first & 0x7F)


def _decode(data: bytes, spec: Any, what: str) -> Any:
    return decode_value(data, spec, what, DecryptionFailed)


def _recipients(infos: Any) -> tuple[_Recipient, ...]:
    if len(infos) > MAX_RECIPIENTS:
        raise DecryptionFailed(f"{len(infos)} recipients; at most {MAX_RECIPIENTS} are read")
    found = []
    for info in infos:
        if info.getName() != "ktri":
            continue  # key agreement, KEK, password: not for an RSA key
        ktri = info["ktri"]
        rid = ktri["rid"]
        by_name = rid.getName() == "issuerAndSerialNumber"
        issuer_serial = rid["issuerAndSerialNumber"] if by_name else None
        found.append(_Recipient(
            issuer=None if issuer_serial is None else _der(issuer_serial["issuer"]),
            serial=None if issuer_serial is None else int(issuer_serial["serialNumber"]),
            key_identifier=None if by_name else bytes(rid["subjectKeyIdentifier"]),
            algorithm=algorithm_of(ktri["keyEncryptionAlgorithm"]),
            encrypted_key=bytes(ktri["encryptedKey"])))
    return tuple(found)


def _der(value: Any) -> bytes:
    return bytes(encoder.encode(value))


def _choose(recipients: tuple[_Recipient, ...],
            keys: Sequence[tuple[x509.Certificate, PrivateKeyTypes]]
            ) -> tuple[_Recipient, rsa.RSAPrivateKey]:
    """The first RecipientInfo naming one of our certificates (RFC 5652 section 6.2.1) by
    issuer and serial number or by subject key identifier."""
    ours = [(_identity(certificate), key) for certificate, key in keys
            if isinstance(key, rsa.RSAPrivateKey)]
    for recipient in recipients:
        for (issuer, serial, identifiers), key in ours:
            if recipient.issuer is not None:
                if recipient.serial == serial and recipient.issuer == issuer:
                    return recipient, key
            elif recipient.key_identifier in identifiers:
                return recipient, key
    raise DecryptionFailed("no RecipientInfo names one of our RSA certificates")


@functools.lru_cache(maxsize=64)
def _identity(certificate: x509.Certificate) -> tuple[bytes, int, tuple[bytes, ...]]:
    """The certificate's issuer (DER as pyasn1 writes it, so it compares with the message's),
    serial, and key identifiers: the extension's and RFC 5280 section 4.2.1.2 method 1's.
    Worked out once per certificate of ours: it was a quarter of each decryption's time."""
    issuer, _ = decoder.decode(certificate.issuer.public_bytes(), asn1Spec=rfc5280.Name())
    identifiers = [x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest]
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        identifiers.insert(0, extension.value.digest)
    except x509.ExtensionNotFound:
        pass
    return _der(issuer), certificate.serial_number, tuple(identifiers)


def _key_transport(algorithm: Algorithm) -> tuple[str, padding.AsymmetricPadding]:
    if algorithm.oid == _RSA_PKCS1:
        return "rsa-pkcs1v15", padding.PKCS1v15()
    if algorithm.oid == _RSA_OAEP:
        return "rsa-oaep", _oaep(algorithm.parameters)
    raise DecryptionFailed(f"unsupported key transport algorithm {algorithm.oid}")


def _oaep(parameters: bytes | None) -> padding.OAEP:
    """RSAES-OAEP parameters (RFC 4055 section 4.1); absent or empty means SHA-1, MGF1 with
    SHA-1 and an empty label."""
    if parameters is None or parameters == b"\x05\x00":
        return padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)
    params = _decode(parameters, rfc4055.RSAES_OAEP_params(), "RSAES-OAEP parameters")
    digest = _oaep_hash(params["hashFunc"])
    mgf_hash: hashes.HashAlgorithm = hashes.SHA1()
    if params["maskGenFunc"].isValue:
        mgf = algorithm_of(params["maskGenFunc"])
        if mgf.oid != _MGF1 or mgf.parameters is None:
            raise DecryptionFailed(f"RSAES-OAEP mask generation {mgf.oid}: only MGF1 is read")
        mgf_hash = _oaep_hash(_decode(mgf.parameters, rfc5280.AlgorithmIdentifier(),
                                      "MGF1 hash (RFC 4055 section 2.2)"))
    label = None
    if params["pSourceFunc"].isValue:
        source = algorithm_of(params["pSourceFunc"])
        if source.oid != _P_SPECIFIED:
            raise DecryptionFailed(f"RSAES-OAEP label source {source.oid}")
        if source.parameters is not None:
            label = bytes(_decode(source.parameters, univ.OctetString(), "OAEP label")) or None
    return padding.OAEP(padding.MGF1(mgf_hash), digest, label)


def _oaep_hash(identifier: Any) -> hashes.HashAlgorithm:
    if not identifier.isValue:
        return hashes.SHA1()
    oid = str(identifier["algorithm"])
    if oid not in _OAEP_HASHES:
        raise DecryptionFailed(f"unsupported RSAES-OAEP hash {oid}")
    return _OAEP_HASHES[oid]()


def _gcm_parameters(algorithm: Algorithm) -> tuple[bytes, int]:
    """GCMParameters (RFC 5084 section 3.2): the nonce and the tag length, 12 by default."""
    if algorithm.parameters is None:
        raise DecryptionFailed("AES-GCM without parameters: the nonce is missing")
    params = _decode(algorithm.parameters, rfc5084.GCMParameters(), "GCM parameters")
    nonce = bytes(params["aes-nonce"])
    tag_length = int(params["aes-ICVlen"]) if params["aes-ICVlen"].isValue else 12
    if not 8 <= len(nonce) <= 64:
        raise DecryptionFailed(f"a GCM nonce of {len(nonce)} bytes (12 per RFC 5084)")
    if not 12 <= tag_length <= 16:
        raise DecryptionFailed(f"a GCM tag of {tag_length} bytes (RFC 5084: 12 to 16)")
    return nonce, tag_length


def _cbc_iv(algorithm: Algorithm, length: int) -> bytes:
    """A CBC cipher's parameters are its IV as an OCTET STRING (RFC 3565 section 4.1,
    RFC 3370 section 5.1)."""
    if algorithm.parameters is None:
        raise DecryptionFailed("a CBC cipher without its IV")
    iv = bytes(_decode(algorithm.parameters, univ.OctetString(), "CBC IV"))
    if len(iv) != length:
        raise DecryptionFailed(f"an IV of {len(iv)} bytes, {length} expected")
    return iv


def _unwrap(key: rsa.RSAPrivateKey, encrypted_key: bytes,
            scheme: padding.AsymmetricPadding, length: int) -> tuple[bytes, bool]:
    """The content key, or a random one of the right length when the RSA decryption fails
    or gives a key of another length (RFC 3218 section 2.3.2): the caller carries on alike."""
    substitute = os.urandom(length)
    try:
        candidate = key.decrypt(encrypted_key, scheme)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # padding, length: told apart nowhere
        candidate = substitute
        decrypted = False
    else:
        decrypted = True
    right_length = len(candidate) == length
    usable = decrypted & right_length
    return (candidate if usable else substitute), usable


def _open(envelope: _Envelope, content_key: bytes) -> tuple[bytes, bool]:
    """The plaintext and whether it is genuine (padding or tag); never raises on bad data."""
    spec = envelope.cipher
    if spec.gcm:
        return _attempt(lambda: _gcm(envelope, content_key))
    return _attempt(lambda: _cbc(envelope, content_key))


def _attempt(step: Callable[[], bytes]) -> tuple[bytes, bool]:
    try:
        return step(), True
    except (ValueError, InvalidTag):
        return b"", False


def _gcm(envelope: _Envelope, content_key: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(content_key),
                       modes.GCM(envelope.iv, envelope.tag,
                                 min_tag_length=len(envelope.tag))).decryptor()
    if envelope.aad:
        decryptor.authenticate_additional_data(envelope.aad)
    return decryptor.update(envelope.ciphertext) + decryptor.finalize()


def _cbc(envelope: _Envelope, content_key: bytes) -> bytes:
    algorithm: algorithms.AES | TripleDES
    if envelope.cipher.name == "3des-cbc":
        algorithm = TripleDES(content_key)
    else:
        algorithm = algorithms.AES(content_key)
    decryptor = Cipher(algorithm, modes.CBC(envelope.iv)).decryptor()
    padded = decryptor.update(envelope.ciphertext) + decryptor.finalize()
    # RFC 5652 section 6.3: PKCS #7 padding of 1 to block-size octets.
    unpadder = PKCS7(algorithm.block_size).unpadder()
    return unpadder.update(padded) + unpadder.finalize()
