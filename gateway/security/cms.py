"""Reading a CMS SignedData (RFC 5652 section 5) into plain values, with pyasn1-modules'
structures and pyasn1's BER decoder (DER is BER; other tools' streaming output is BER with
indefinite lengths).  Nothing is verified here: ``security.verify`` does that.

Two structures are our own, each differing from RFC 5652's in one place, both because
pyasn1 keeps an ``ANY`` as bytes and drops the end-of-contents octets of an indefinite-length
one: the ContentInfo's content is read as SignedData directly (section 3), and each
certificate is kept as its own bytes (a DER certificate, read by cryptography and
fingerprinted as sent, never re-encoded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import decoder
from pyasn1.codec.der import encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, tag, univ
from pyasn1_modules import rfc5652

from gateway.errors import SignatureInvalid

#: The largest signature read: ours is ~1 KiB, one with a long chain a few KiB.
MAX_SIGNATURE_BYTES = 1024 * 1024
#: Bounds on what one signature may make us do (DESIGN rule 6).
MAX_CERTIFICATES = 32
MAX_SIGNERS = 16
MAX_ATTRIBUTES = 64
#: The BER elements (tag-length headers) one value may have before pyasn1 reads it: a few
#: thousand, and one more per 128 bytes for the chunks of a streamed (indefinite-length)
#: content, which BER writers cut into pieces of 512 bytes or more.  pyasn1 spends ~20 us
#: and ~2 KiB per element it builds: a 3.7 MiB EnvelopedData of 100,000 tiny RecipientInfos
#: took 19.5 s and 707 MiB before MAX_RECIPIENTS could be checked (64 MiB, a partner's
#: default max_bytes, would take minutes and ~12 GB), and it is read before the sender is
#: authenticated (DESIGN rule 6).
MAX_ELEMENTS_BASE = 4096
BYTES_PER_ELEMENT = 128
#: What pyasn1 raises on malformed input besides its own errors: built-in ones it lets
#: through from deep inside (an IndexError for a SEQUENCE with a component too many, an
#: AttributeError for a mistagged one: found by tests/unit/test_cms_hostile.py), or a
#: recursion too deep for Python.
DECODE_FAILURES = (PyAsn1Error, ValueError, TypeError, IndexError, KeyError, AttributeError,
                   OverflowError, RecursionError)


def _context(number: int) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number)


#: CertificateSet with each choice kept as its whole encoding (an untagged ANY).
_CERTIFICATE_BYTES = univ.SetOf(componentType=univ.Any()).subtype(implicitTag=_context(0))

_SIGNED_DATA = univ.Sequence(componentType=namedtype.NamedTypes(
    namedtype.NamedType("version", rfc5652.CMSVersion()),
    namedtype.NamedType("digestAlgorithms", rfc5652.DigestAlgorithmIdentifiers()),
    namedtype.NamedType("encapContentInfo", rfc5652.EncapsulatedContentInfo()),
    namedtype.OptionalNamedType("certificates", _CERTIFICATE_BYTES),
    namedtype.OptionalNamedType("crls", rfc5652.RevocationInfoChoices().subtype(
        implicitTag=_context(1))),
    namedtype.NamedType("signerInfos", rfc5652.SignerInfos())))

_SIGNED_CONTENT_INFO = univ.Sequence(componentType=namedtype.NamedTypes(
    namedtype.NamedType("contentType", rfc5652.ContentType()),
    namedtype.NamedType("content", _SIGNED_DATA.subtype(explicitTag=_context(0)))))


@dataclass(frozen=True, slots=True)
class Algorithm:
    oid: str
    #: The parameters' encoding, None when absent.
    parameters: bytes | None


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """One SignerInfo (RFC 5652 section 5.3) as values."""

    #: issuerAndSerialNumber: the issuer Name's DER and the serial; or subjectKeyIdentifier.
    issuer: bytes | None
    serial: int | None
    key_identifier: bytes | None
    digest: Algorithm
    signature_algorithm: Algorithm
    signature: bytes
    #: The signed attributes re-encoded as DER with the SET OF tag: what was signed (5.4).
    signed_attributes: bytes | None
    #: attribute type -> its values' encodings, each type once.
    attributes: dict[str, tuple[bytes, ...]]


@dataclass(frozen=True, slots=True)
class SignedData:
    content_type: str
    detached: bool
    certificates: tuple[bytes, ...]
    signers: tuple[SignerInfo, ...]


def read_signed_data(data: bytes) -> SignedData:
    """The SignedData of a ContentInfo; SignatureInvalid saying what is not one."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SignatureInvalid(f"the signature is {len(data)} bytes; at most "
                               f"{MAX_SIGNATURE_BYTES} are read")
    content_type = _content_type(data)
    if content_type != str(rfc5652.id_signedData):
        raise SignatureInvalid(f"not a CMS SignedData: the ContentInfo holds {content_type} "
                               f"(SignedData is {rfc5652.id_signedData})")
    info = _decode(data, _SIGNED_CONTENT_INFO.clone(), "CMS SignedData (RFC 5652 section 5)")
    return _signed_data(info["content"])


def decode_value(data: bytes, spec: Any, what: str,
                 failure: Callable[[str], Exception] = SignatureInvalid) -> Any:
    """One encoded value (e.g. an attribute's) read as ``spec``, all of ``data``; anything
    else raises ``failure`` with the reason (decryption raises its own, RFC 3218)."""
    return _decode(data, spec, what, failure)


def _content_type(data: bytes) -> str:
    info = _decode(data, rfc5652.ContentInfo(), "CMS ContentInfo (RFC 5652 section 3)")
    return str(info["contentType"])


def check_elements(data: bytes, what: str, failure: Callable[[str], Exception]) -> None:
    """``failure`` when ``data`` has more BER elements than its size warrants (see
    MAX_ELEMENTS_BASE), counted from their headers alone, before anything is built."""
    allowed = MAX_ELEMENTS_BASE + len(data) // BYTES_PER_ELEMENT
    if count_elements(data, allowed + 1) > allowed:
        raise failure(f"cannot read {what}: more than {allowed} BER elements in "
                      f"{len(data)} bytes")


def count_elements(data: bytes, stop: int) -> int:
    """The tag-length headers in ``data`` (X.690 section 8.1), up to ``stop``: a constructed
    element's contents are elements in turn, a primitive one's are skipped.  What is
    malformed ends the count: the decoder says what is wrong with it."""
    count, position, end = 0, 0, len(data)
    while position < end and count < stop:
        first = data[position]
        position += 1
        if first & 0x1F == 0x1F:  # high tag number: base-128 octets, the last below 0x80
            while position < end and data[position] & 0x80:
                position += 1
            position += 1
        if position >= end:
            break
        length = data[position]
        position += 1
        if length & 0x80:
            octets = length & 0x7F
            length = int.from_bytes(data[position:position + octets], "big") if octets else -1
            position += octets
        count += 1
        if not first & 0x20 and length > 0:  # primitive (end-of-contents has none)
            position += length
        elif not first & 0x20 and length < 0:
            break  # a primitive with an indefinite length: malformed
    return count


def _decode(data: bytes, spec: Any, what: str,
            failure: Callable[[str], Exception] = SignatureInvalid) -> Any:
    check_elements(data, f"the {what}", failure)
    try:
        value, rest = decoder.decode(data, asn1Spec=spec)
    except Exception as exc:
        # pyasn1 on hostile bytes raises DECODE_FAILURES and whatever else it lets through:
        # the sender's fault, never a crash of ours.
        raise failure(f"cannot read the {what}: {_reason(exc)}") from exc
    if rest:
        raise failure(f"{len(rest)} bytes after the {what}")
    return value


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _signed_data(signed: Any) -> SignedData:
    encap = signed["encapContentInfo"]
    certificates = tuple(bytes(c) for c in _present(signed["certificates"]))
    signers = tuple(signed["signerInfos"])
    if len(certificates) > MAX_CERTIFICATES:
        raise SignatureInvalid(f"{len(certificates)} certificates; at most "
                               f"{MAX_CERTIFICATES} are read")
    if not signers:
        raise SignatureInvalid("the SignedData has no SignerInfo: nobody signed it")
    if len(signers) > MAX_SIGNERS:
        raise SignatureInvalid(f"{len(signers)} signers; at most {MAX_SIGNERS} are read")
    return SignedData(content_type=str(encap["eContentType"]),
                      detached=not encap["eContent"].isValue,
                      certificates=certificates,
                      signers=tuple(_signer(s) for s in signers))


def _present(value: Any) -> list[Any]:
    return list(value) if value.isValue else []


def _signer(info: Any) -> SignerInfo:
    sid = info["sid"]
    by_name = sid.getName() == "issuerAndSerialNumber"
    issuer_serial = sid["issuerAndSerialNumber"] if by_name else None
    attributes = info["signedAttrs"]
    return SignerInfo(
        issuer=None if issuer_serial is None else encoder.encode(issuer_serial["issuer"]),
        serial=None if issuer_serial is None else int(issuer_serial["serialNumber"]),
        key_identifier=None if by_name else bytes(sid["subjectKeyIdentifier"]),
        digest=algorithm_of(info["digestAlgorithm"]),
        signature_algorithm=algorithm_of(info["signatureAlgorithm"]),
        signature=bytes(info["signature"]),
        signed_attributes=_as_set_of(attributes) if attributes.isValue else None,
        attributes=_attributes(attributes) if attributes.isValue else {})


def algorithm_of(identifier: Any) -> Algorithm:
    """An AlgorithmIdentifier (RFC 5280 section 4.1.1.2) as values."""
    parameters = identifier["parameters"]
    return Algorithm(str(identifier["algorithm"]),
                     bytes(parameters) if parameters.isValue else None)


def _as_set_of(attributes: Any) -> bytes:
    """RFC 5652 section 5.4: the message digest is calculated over "the DER encoding of the
    SignedAttributes value" with "an EXPLICIT SET OF tag" instead of the IMPLICIT [0]: DER
    (sorted SET OF) with the [0] constructed tag (0xA0) changed to SET (0x31)."""
    try:
        encoded = encoder.encode(attributes)
    except DECODE_FAILURES as exc:
        raise SignatureInvalid(f"the signed attributes cannot be DER-encoded: "
                               f"{_reason(exc)}") from exc
    return b"\x31" + bytes(encoded[1:])


def _attributes(attributes: Any) -> dict[str, tuple[bytes, ...]]:
    """RFC 5652 section 5.3: each attribute type at most once in signedAttrs."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise SignatureInvalid(f"{len(attributes)} signed attributes; at most "
                               f"{MAX_ATTRIBUTES} are read")
    found: dict[str, tuple[bytes, ...]] = {}
    for attribute in attributes:
        kind = str(attribute["attrType"])
        if kind in found:
            raise SignatureInvalid(f"the signed attribute {kind} appears twice "
                                   "(RFC 5652 section 5.3)")
        found[kind] = tuple(bytes(v) for v in attribute["attrValues"])
    return found
