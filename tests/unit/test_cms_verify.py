"""Each check of security.verify on its own: a signature of ours with one thing changed and
its signed attributes signed again by the same key, so that only that thing is wrong, and
the reason names it."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from pyasn1.type import tag, univ, useful
from pyasn1_modules import rfc5652

from gateway.errors import AgreementError, SignatureInvalid
from gateway.security.pki import Issued, create_ca, issue_signing_certificate
from gateway.security.verify import Verified, verify_detached
from tests.support.cms import (
    CONTENT_TYPE,
    MESSAGE_DIGEST,
    SHA1,
    SHA384,
    SIGNING_TIME,
    algorithm,
    encoded,
    rebuild,
    sign_detached,
)

CONTENT = b"UNB+UNOC:3+SWGATEWAY+DEMOVAN+261203:1326+42'"
CA = create_ca("test CA")
ISSUED = issue_signing_certificate(CA, "test gateway")
SIGNATURE = sign_detached(CONTENT, ISSUED)


def verify(signature: bytes, content: bytes = CONTENT, **options: Any) -> Verified:
    return verify_detached(content, signature, [CA.certificate], **options)


def changed(*, issued: Issued = ISSUED, base: bytes = SIGNATURE, **edits: Any) -> bytes:
    return rebuild(base, issued.private_key, **edits)


def without(kind: str) -> Any:
    return lambda found: [(k, v) for k, v in found if k != kind]


def replaced(kind: str, *values: bytes) -> Any:
    return lambda found: [(k, list(values) if k == kind else v) for k, v in found]


def test_the_signature_as_made_verifies_and_so_does_a_rebuilt_one() -> None:
    """The rebuilding itself breaks nothing (so each refusal below is the change's)."""
    assert verify(SIGNATURE).signer.subject == "CN=test gateway,O=Single Window Gateway"
    assert verify(changed(attributes=lambda found: found)).signer.digest_algorithm == "sha256"


def test_the_error_is_an_agreement_error_with_a_code_of_its_own() -> None:
    with pytest.raises(AgreementError) as caught:
        verify(SIGNATURE, CONTENT + b" ")
    assert isinstance(caught.value, SignatureInvalid)
    assert caught.value.code == "signature_invalid" and not caught.value.retryable


@pytest.mark.parametrize(("kind", "name"), [(CONTENT_TYPE, "content-type"),
                                            (MESSAGE_DIGEST, "message-digest")])
def test_a_missing_required_attribute_is_named(kind: str, name: str) -> None:
    with pytest.raises(SignatureInvalid, match=f"signed attribute {name} .* is missing"):
        verify(changed(attributes=without(kind)))


def test_a_signature_without_signing_time_verifies_with_no_time() -> None:
    verified = verify(changed(attributes=without(SIGNING_TIME)))
    assert verified.signer.signed_at is None


def test_an_attribute_twice_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match=r"appears twice"):
        verify(changed(attributes=lambda found: [*found, found[0]]))


def test_a_digest_attribute_with_two_values_is_refused() -> None:
    digest = encoded(univ.OctetString(b"\x00" * 32))
    with pytest.raises(SignatureInvalid, match=r"message-digest has 2 values"):
        verify(changed(attributes=lambda found: [
            (k, [*v, digest] if k == MESSAGE_DIGEST else v) for k, v in found]))


def test_a_content_type_attribute_other_than_data_is_refused() -> None:
    signed_data = encoded(rfc5652.id_signedData)
    with pytest.raises(SignatureInvalid, match=r"content-type attribute is 1.2.840.113549.1.7.2"):
        verify(changed(attributes=replaced(CONTENT_TYPE, signed_data)))


def test_an_encapsulated_content_type_other_than_data_is_refused() -> None:
    def other_type(data: Any) -> None:
        data["encapContentInfo"]["eContentType"] = rfc5652.id_signedData

    with pytest.raises(SignatureInvalid, match=r"signed content type is 1.2.840.113549.1.7.2"):
        verify(changed(signed_data=other_type))


def test_an_attached_signature_is_refused() -> None:
    def attach(data: Any) -> None:
        data["encapContentInfo"]["eContent"] = CONTENT

    with pytest.raises(SignatureInvalid, match=r"carries its content"):
        verify(changed(signed_data=attach))


@pytest.mark.parametrize(("oid", "reason"), [
    (SHA1, "SHA-1 .* is refused"), ("1.2.840.113549.2.5", "MD5 .* is refused"),
    ("2.16.840.1.101.3.4.2.4", "unsupported digest algorithm 2.16.840.1.101.3.4.2.4")])
def test_weak_or_unknown_digests_are_refused_by_name(oid: str, reason: str) -> None:
    def digest(signer: Any) -> None:
        signer["digestAlgorithm"] = algorithm(oid)

    with pytest.raises(SignatureInvalid, match=reason):
        verify(changed(signer=digest))


def test_a_signature_algorithm_hashing_otherwise_than_the_digest_is_refused() -> None:
    def sha384(signer: Any) -> None:
        signer["digestAlgorithm"] = algorithm(SHA384)

    digest = encoded(univ.OctetString(hashlib.sha384(CONTENT).digest()))
    with pytest.raises(SignatureInvalid, match=r"hashes with sha256, the digest algorithm is "
                                               r"sha384"):
        verify(changed(signer=sha384, attributes=replaced(MESSAGE_DIGEST, digest)))


def test_a_signature_by_another_key_does_not_verify() -> None:
    other = issue_signing_certificate(CA, "test gateway")
    with pytest.raises(SignatureInvalid, match=r"signature value does not verify"):
        verify(changed(issued=other))


def test_a_signing_time_in_the_future_is_refused() -> None:
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with pytest.raises(SignatureInvalid, match=r"signing time .* is in the future"):
        verify(SIGNATURE, now=hour_ago)


def test_a_signing_time_that_is_no_time_is_refused() -> None:
    not_a_time = encoded(_utc_time_text("261399999999Z"))
    with pytest.raises(SignatureInvalid, match=r"signing time .* is not a time"):
        verify(changed(attributes=replaced(SIGNING_TIME, not_a_time)))


def test_validity_is_checked_at_the_signing_time_or_when_asked() -> None:
    """An answer verifies after its certificate expired (the record outlives the key); a
    check at another time (``at``) sees the certificate as it was then."""
    made = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    ca = create_ca("test CA", now=made - dt.timedelta(days=1))
    short = issue_signing_certificate(ca, "short-lived", days=1, now=made)
    signature = changed(issued=short, base=sign_detached(CONTENT, short), attributes=replaced(
        SIGNING_TIME, encoded(_utc_time(made + dt.timedelta(hours=1)))))
    verified = verify_detached(CONTENT, signature, [ca.certificate])
    assert verified.signer.signed_at == (made + dt.timedelta(hours=1)).replace(microsecond=0)
    with pytest.raises(SignatureInvalid, match=r"short-lived.* is valid from"):
        verify_detached(CONTENT, signature, [ca.certificate], at=dt.datetime.now(dt.UTC))


def _utc_time(when: dt.datetime) -> Any:
    return _utc_time_text(when.strftime("%y%m%d%H%M%SZ"))


def _utc_time_text(text: str) -> Any:
    time = rfc5652.SigningTime()
    time["utcTime"] = useful.UTCTime(text)
    return time


def test_a_signature_too_large_is_refused_before_it_is_read() -> None:
    with pytest.raises(SignatureInvalid, match=r"at most 1048576 are read"):
        verify(b"\x30" * (1024 * 1024 + 1))


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "cannot read the CMS ContentInfo"),
    (SIGNATURE + b"\x00", "1 bytes after the CMS ContentInfo"),
    (encoded(univ.Sequence()), "cannot read the CMS ContentInfo"),
])
def test_what_is_no_signed_data_says_so(data: bytes, reason: str) -> None:
    with pytest.raises(SignatureInvalid, match=reason):
        verify(data)


def test_a_content_info_of_another_type_is_named() -> None:
    info = rfc5652.ContentInfo()
    info["contentType"] = rfc5652.id_data
    info["content"] = univ.Any(encoded(univ.OctetString(b"x"))).subtype(
        explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, 0))
    with pytest.raises(SignatureInvalid, match=r"not a CMS SignedData: the ContentInfo holds "
                                               r"1.2.840.113549.1.7.1"):
        verify(encoded(info))
