"""The signer's certificate and its chain, beside OpenSSL: key rotation and a CA roll-over
(two keys valid at once, two CAs in the CA file), intermediate CAs and their path length,
an issuer that is no CA, a signer key not for signing, critical extensions we do not
understand, several signers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from gateway.errors import SignatureInvalid
from gateway.security.keys import load_trust_anchors
from gateway.security.pki import Issued, create_ca, issue_signing_certificate
from gateway.security.signing import Signer, SigningKey
from gateway.security.verify import Verified, verify_detached
from tests.support.cms import (
    certificate,
    key_usage,
    openssl,
    openssl_verifies,
    sign_detached,
)

CONTENT = b"UNB+UNOC:3+SWGATEWAY+DEMOVAN+261203:1326+42'"


def both(tmp_path: Path, signature: bytes, anchors: list[Issued]) -> Verified:
    """Verify with OpenSSL and with ours (which must agree); ours' result, or its error."""
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(b"".join(a.certificate_pem for a in anchors))
    (tmp_path / "answer.edi").write_bytes(CONTENT)
    (tmp_path / "answer.edi.p7s").write_bytes(signature)
    by_openssl = openssl_verifies(tmp_path / "answer.edi", tmp_path / "answer.edi.p7s",
                                  ca_file)
    try:
        verified = verify_detached(CONTENT, signature, load_trust_anchors(ca_file))
    except SignatureInvalid:
        assert not by_openssl, "OpenSSL verifies what we refuse"
        raise
    assert by_openssl, "OpenSSL refuses what we verify"
    return verified


def test_rotation_signs_with_the_newer_key_and_both_verify_against_two_cas(
        tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    old_ca, new_ca = create_ca("old CA", now=now - dt.timedelta(days=300)), create_ca("new CA")
    old = issue_signing_certificate(old_ca, "gateway 2025", now=now - dt.timedelta(days=300))
    new = issue_signing_certificate(new_ca, "gateway 2026", now=now - dt.timedelta(hours=1))
    keys = [SigningKey(k.certificate, k.private_key) for k in (old, new)]
    signer = Signer(keys)

    assert signer.current(now) is keys[1]
    made = signer.sign(CONTENT)
    assert made.certificate_fingerprint == keys[1].fingerprint
    assert both(tmp_path, made.der, [old_ca, new_ca]).signer.subject.startswith(
        "CN=gateway 2026")
    # answers signed before the roll (by the old key) still verify against the same file
    before = Signer(keys[:1]).sign(CONTENT)
    assert both(tmp_path, before.der, [old_ca, new_ca]).signer.certificate_sha256 == \
        keys[0].fingerprint
    # and the new CA alone does not vouch for the old key
    with pytest.raises(SignatureInvalid, match=r"no chain to a trust anchor"):
        both(tmp_path, before.der, [new_ca])


def test_an_intermediate_ca_in_the_signature_links_the_signer_to_the_root(
        tmp_path: Path) -> None:
    root = certificate(None, "root CA", ca=True, usage=key_usage(key_cert_sign=True))
    intermediate = certificate(root, "issuing CA", ca=True, path_length=0,
                               usage=key_usage(key_cert_sign=True))
    signer = issue_signing_certificate(intermediate, "gateway")
    signature = sign_detached(CONTENT, signer, extra=(intermediate.certificate,))

    assert both(tmp_path, signature, [root]).signer.chain == (
        "CN=gateway,O=Single Window Gateway", "CN=issuing CA", "CN=root CA")
    with pytest.raises(SignatureInvalid, match=r"no chain to a trust anchor"):
        both(tmp_path, sign_detached(CONTENT, signer), [root])  # intermediate left out


def test_a_root_that_allows_no_intermediate_refuses_one(tmp_path: Path) -> None:
    root = create_ca("root CA")  # pathLenConstraint 0: it issues signing certificates only
    intermediate = certificate(root, "issuing CA", ca=True)
    signer = issue_signing_certificate(intermediate, "gateway")
    with pytest.raises(SignatureInvalid, match=r"allows 0 intermediate CA"):
        both(tmp_path, sign_detached(CONTENT, signer, extra=(intermediate.certificate,)),
             [root])


def test_a_certificate_issued_by_no_ca_is_refused(tmp_path: Path) -> None:
    not_a_ca = certificate(None, "not a CA", ca=False)
    signer = issue_signing_certificate(not_a_ca, "gateway")
    with pytest.raises(SignatureInvalid, match=r"is not a CA"):
        both(tmp_path, sign_detached(CONTENT, signer), [not_a_ca])


def test_an_issuer_whose_key_may_not_sign_certificates_is_refused(tmp_path: Path) -> None:
    ca = certificate(None, "CA", ca=True, usage=key_usage(crl_sign=True))
    signer = issue_signing_certificate(ca, "gateway")
    with pytest.raises(SignatureInvalid, match=r"may not sign certificates"):
        both(tmp_path, sign_detached(CONTENT, signer), [ca])


@pytest.mark.parametrize(("usage", "verifies"), [
    (key_usage(digital_signature=True), True), (key_usage(content_commitment=True), True),
    (key_usage(key_encipherment=True), False)])
def test_the_signer_key_must_be_for_signatures_when_it_says(tmp_path: Path,
                                                            usage: x509.KeyUsage,
                                                            verifies: bool) -> None:
    ca = create_ca("test CA")
    signer = certificate(ca, "gateway", usage=usage)
    signature = sign_detached(CONTENT, signer)
    if verifies:
        assert both(tmp_path, signature, [ca]).signer.subject == "CN=gateway"
    else:
        with pytest.raises(SignatureInvalid, match=r"may not sign documents"):
            verify_detached(CONTENT, signature, [ca.certificate])


def test_a_critical_extension_we_do_not_understand_is_refused() -> None:
    ca = create_ca("test CA")
    constrained = x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.org")],
                                       excluded_subtrees=None)
    signer = certificate(ca, "gateway", critical=constrained)
    with pytest.raises(SignatureInvalid, match=r"critical extension not supported here: "
                                               r"2.5.29.30"):
        verify_detached(CONTENT, sign_detached(CONTENT, signer), [ca.certificate])


def test_every_signer_of_a_signature_must_verify(tmp_path: Path) -> None:
    ca, stranger_ca = create_ca("test CA"), create_ca("stranger CA")
    first, second = (issue_signing_certificate(ca, n) for n in ("gateway a", "gateway b"))
    stranger = issue_signing_certificate(stranger_ca, "stranger")
    verified = both(tmp_path, _two_signers(tmp_path, first, second), [ca])
    assert sorted(s.subject for s in verified.signers) == [  # a SET OF: in DER order
        "CN=gateway a,O=Single Window Gateway", "CN=gateway b,O=Single Window Gateway"]
    with pytest.raises(SignatureInvalid, match=r"no chain to a trust anchor"):
        both(tmp_path, _two_signers(tmp_path, first, stranger), [ca])


def _two_signers(tmp_path: Path, first: Issued, second: Issued) -> bytes:
    (tmp_path / "content").write_bytes(CONTENT)
    options: list[str | Path] = []
    for number, issued in enumerate((first, second)):
        (tmp_path / f"s{number}.crt").write_bytes(issued.certificate_pem)
        (tmp_path / f"s{number}.key").write_bytes(issued.key_pem)
        options += ["-signer", tmp_path / f"s{number}.crt", "-inkey", tmp_path / f"s{number}.key"]
    out = tmp_path / "two.p7s"
    done = openssl("cms", "-sign", "-binary", "-outform", "DER", "-md", "sha256",
                   "-in", tmp_path / "content", "-out", out, *options)
    assert done.returncode == 0, done.stderr
    return out.read_bytes()
