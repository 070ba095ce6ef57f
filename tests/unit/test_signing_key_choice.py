"""The signing key is chosen from what each certificate says, read once when the key is
loaded (issue 10, Speed): the same choice as reading the certificate on every signature."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes

from gateway.errors import ConfigError
from gateway.security.pki import create_ca, issue_signing_certificate
from gateway.security.signing import Signer, SigningKey

NOW = dt.datetime.now(dt.UTC)
CA = create_ca("key choice CA")


def key(start: dt.datetime, days: int, name: str = "gateway") -> SigningKey:
    issued = issue_signing_certificate(CA, name, days=days, now=start)
    return SigningKey(issued.certificate, issued.private_key)


def test_what_is_read_once_is_what_the_certificate_says() -> None:
    made = key(NOW, 30)
    assert made.fingerprint == made.certificate.fingerprint(hashes.SHA256()).hex()
    assert made.not_before == made.certificate.not_valid_before_utc
    assert made.not_after == made.certificate.not_valid_after_utc
    assert made.valid_at(NOW) and not made.valid_at(made.not_after + dt.timedelta(seconds=1))


def test_the_key_valid_now_that_became_valid_last_signs() -> None:
    older, newer = key(NOW - dt.timedelta(days=10), 30), key(NOW - dt.timedelta(days=1), 30)
    expired = key(NOW - dt.timedelta(days=100), 30)
    future = key(NOW + dt.timedelta(days=5), 30)
    signer = Signer([older, expired, newer, future])
    assert signer.current(NOW) is newer
    assert signer.current(NOW + dt.timedelta(days=6)) is future
    assert signer.current(NOW - dt.timedelta(days=5)) is older
    assert signer.sign(b"x").certificate_fingerprint == newer.fingerprint


def test_of_two_keys_valid_from_the_same_moment_the_first_listed_signs() -> None:
    first, second = key(NOW, 30, "first"), key(NOW, 30, "second")
    assert Signer([first, second]).current(NOW) is first
    assert Signer([second, first]).current(NOW) is second


def test_no_key_valid_says_which_are_configured_and_when_they_hold() -> None:
    signer = Signer([key(NOW, 30)])
    with pytest.raises(ConfigError, match=r"no certificate is valid at .*CN=gateway.*: "
                       r"\d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d\); add a current one"):
        signer.current(NOW + dt.timedelta(days=40))
