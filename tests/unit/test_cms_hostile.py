"""Hostile signatures: whatever the bytes (random, or a good signature with bytes changed,
cut, inserted; DER and BER), verification ends in SignatureInvalid, never in an exception
of pyasn1 or cryptography, and never in a success when the bytes were changed and the
result is no longer a valid signature (DESIGN rule 6: every value a partner sends is
hostile until checked)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import SignatureInvalid
from gateway.security.pki import create_ca, issue_signing_certificate
from gateway.security.signing import Signer, SigningKey
from gateway.security.verify import verify_detached
from tests.support.cms import indefinite
from tests.support.mutation import mutated

CONTENT = b"UNB+UNOC:3+SWGATEWAY+DEMOVAN+261203:1326+42'"
CA = create_ca("test CA")
RSA_CA = create_ca("test RSA CA", kind="rsa-2048")
ANCHORS = [CA.certificate, RSA_CA.certificate]


def _signature(ca_kind: str) -> bytes:
    ca = CA if ca_kind == "ec-p256" else RSA_CA
    issued = issue_signing_certificate(ca, "test gateway", kind=ca_kind)  # type: ignore[arg-type]
    return Signer([SigningKey(issued.certificate, issued.private_key)]).sign(CONTENT).der


EC_SIGNATURE, RSA_SIGNATURE = _signature("ec-p256"), _signature("rsa-2048")
#: DER and BER (indefinite lengths down to the certificates, which stay DER).
SEEDS = (EC_SIGNATURE, RSA_SIGNATURE, indefinite(EC_SIGNATURE, 4),
         indefinite(RSA_SIGNATURE, 4))
EXAMPLES = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
#: cryptography warns (and will refuse) on a certificate with a negative serial number.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


def test_the_seeds_verify() -> None:
    for seed in SEEDS:
        assert verify_detached(CONTENT, seed, ANCHORS).signer.digest_algorithm == "sha256"


@EXAMPLES
@given(st.binary(max_size=4096))
def test_random_bytes_raise_only_signature_invalid(data: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        verify_detached(CONTENT, data, ANCHORS)


@EXAMPLES
@given(mutated(SEEDS))
def test_changed_signatures_raise_only_signature_invalid(data: bytes) -> None:
    """A change may leave a valid signature (a BER length written another way, a byte
    of an unsigned field); then it must verify as the original did, over the same content,
    by the same certificate."""
    try:
        verified = verify_detached(CONTENT, data, ANCHORS)
    except SignatureInvalid:
        return
    original = {verify_detached(CONTENT, s, ANCHORS).signer.certificate_sha256 for s in SEEDS}
    assert verified.signer.certificate_sha256 in original


@EXAMPLES
@given(st.sampled_from(SEEDS), st.binary(max_size=256))
def test_any_other_content_fails(signature: bytes, content: bytes) -> None:
    if content == CONTENT:
        return
    with pytest.raises(SignatureInvalid):
        verify_detached(content, signature, ANCHORS)


@pytest.mark.parametrize("depth", [200, 5000, 200_000])
def test_deep_nesting_is_refused_not_a_crash(depth: int) -> None:
    """Indefinite-length values nested deeper than Python recurses."""
    with pytest.raises(SignatureInvalid):
        verify_detached(CONTENT, b"\x30\x80" * depth, ANCHORS)
