"""A signer for tests: a CA and a signing certificate made in memory (security.pki)."""

from __future__ import annotations

import functools

from gateway.security.pki import Issued, create_ca, issue_signing_certificate
from gateway.security.signing import Signer, SigningKey


@functools.cache
def ca_for_tests() -> Issued:
    return create_ca("test CA")


@functools.cache
def signer_for_tests() -> Signer:
    issued = issue_signing_certificate(ca_for_tests(), "test gateway")
    return Signer([SigningKey(issued.certificate, issued.private_key)])
