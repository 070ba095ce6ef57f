"""A small certificate authority for the demo and for tests: a CA certificate and a gateway
certificate it issued (RFC 5280 profile: the CA has basicConstraints cA and keyCertSign, the
gateway's certificate digitalSignature and nonRepudiation, so OpenSSL's ``cms -verify``
accepts it with the default purpose)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.security.signing import SigningPrivateKey

KeyType = Literal["ec-p256", "rsa-2048"]


@dataclass(frozen=True, slots=True)
class Issued:
    certificate: x509.Certificate
    private_key: SigningPrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())


def new_key(kind: KeyType = "ec-p256") -> SigningPrivateKey:
    if kind == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def create_ca(name: str, *, days: int = 3650, kind: KeyType = "ec-p256",
              now: dt.datetime | None = None) -> Issued:
    key = new_key(kind)
    subject = _name(name)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    certificate = (
        _builder(subject, subject, key.public_key(), start, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256()))
    return Issued(certificate, key)


def issue_signing_certificate(ca: Issued, name: str, *, days: int = 825,
                              kind: KeyType = "ec-p256",
                              now: dt.datetime | None = None) -> Issued:
    """A certificate for signing answers, valid from ``now`` (minus a few minutes of clock
    skew) for ``days``.  An RSA one may also be encrypted to (keyEncipherment, RFC 5280
    section 4.2.1.3): AS2 partners encrypt to the certificate we sign with (CMS key
    transport, RFC 5652 section 6.2.1, is RSA)."""
    key = new_key(kind)
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    certificate = (
        _builder(_name(name), ca.certificate.subject, key.public_key(), start, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True, content_commitment=True,
                              key_encipherment=rsa_key), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.private_key.public_key()), critical=False)
        .sign(ca.private_key, hashes.SHA256()))
    return Issued(certificate, key)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Single Window Gateway"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object, start: dt.datetime,
             days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days)))


def _usage(*, digital_signature: bool = False, content_commitment: bool = False,
           key_cert_sign: bool = False, key_encipherment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature,
                         content_commitment=content_commitment,
                         key_encipherment=key_encipherment,
                         data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=key_cert_sign,
                         encipher_only=False, decipher_only=False)
