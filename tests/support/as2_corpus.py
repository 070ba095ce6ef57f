"""The recorded Mendelson AS2 requests of ../shared/corpus/as2/pyas2lib-fixtures (SOURCE.txt
there): the receiver's key, the payload, and the CMS blob out of a recorded HTTP request."""

from __future__ import annotations

import email
import email.message
import email.policy
import functools
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.support.edifact import CORPUS

AS2_FIXTURES = CORPUS / "as2" / "pyas2lib-fixtures"


def needs_as2_corpus() -> Path:
    if not (AS2_FIXTURES / "cert_test.p12").is_file():
        pytest.skip(f"the recorded AS2 messages are not at {AS2_FIXTURES} (the shared corpus "
                    "beside the checkout)")
    return AS2_FIXTURES


@functools.cache
def receiver_keys() -> tuple[tuple[x509.Certificate, PrivateKeyTypes], ...]:
    """The pyas2lib receiver's certificate and key (cert_test.p12, password "test")."""
    key, certificate, _ = pkcs12.load_key_and_certificates(
        (needs_as2_corpus() / "cert_test.p12").read_bytes(), b"test")
    assert key is not None and certificate is not None
    return ((certificate, key),)


def payload() -> bytes:
    return (needs_as2_corpus() / "payload.txt").read_bytes()


def request(name: str) -> email.message.Message:
    """A recorded request (headers, blank line, body) as a MIME message."""
    return email.message_from_bytes((needs_as2_corpus() / name).read_bytes(),
                                    policy=email.policy.compat32)


def pkcs7_mime(message: email.message.Message) -> bytes:
    """The first application/pkcs7-mime entity's body, transfer encoding undone (binary as
    Mendelson sends it, or base64)."""
    for part in message.walk():
        if part.get_content_type() == "application/pkcs7-mime":
            body = part.get_payload(decode=True)
            assert isinstance(body, bytes)
            return body
    raise AssertionError("no application/pkcs7-mime entity")


def first_part(entity: bytes) -> email.message.Message:
    """The signed part of a multipart/signed MIME entity (a decrypted AS2 content)."""
    message = email.message_from_bytes(entity, policy=email.policy.compat32)
    assert message.get_content_type() == "multipart/signed", message.get_content_type()
    parts = message.get_payload()
    assert isinstance(parts, list)
    first = parts[0]
    assert isinstance(first, email.message.Message)
    return first
