"""Demo set-up: the demo partner's SSH key and the demo PKI (a CA, the gateway's certificate
for answer signatures and AS2, and the demo partner's AS2 certificate), made on the first
``make run`` and never committed."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.security.pki import Issued, create_ca, issue_signing_certificate
from gateway.security.signing import SigningPrivateKey
from gateway.transports.durable import make_folder, write_file
from gateway.transports.sftp import create_key_pair


def ensure_key(path: Path) -> bool:
    """Create an Ed25519 key pair at ``path`` / ``path.pub`` unless it exists."""
    return create_key_pair(path, Path(f"{path}.pub"),
                           comment="demo-van@single-window-gateway") is not None


#: The demo's certificates issued by its CA: (file stem, subject common name).  RSA keys:
#: AS2 partners encrypt to them (CMS key transport is RSA), and they sign too.
DEMO_CERTIFICATES = (("gateway", "SWGATEWAY"), ("demo-van-as2", "DEMOVAN"))


def ensure_pki(folder: Path) -> list[Path]:
    """The demo CA (``ca.crt``, ``ca.key``), the gateway's certificate for answer signatures
    and AS2 (``gateway.crt``, ``gateway.key``) and the demo partner's AS2 certificate
    (``demo-van-as2.crt``, ``.key``), keys 0600, unless they exist; returns what was created.
    Never committed (``var/`` is ignored).  A gateway key of an older demo that is not RSA
    is replaced: AS2 partners could not encrypt to it."""
    ca_crt, ca_key = folder / "ca.crt", folder / "ca.key"
    make_folder(folder)
    created: list[Path] = []
    fresh_ca = not (ca_crt.exists() and ca_key.exists())
    if fresh_ca:
        ca = create_ca("Single Window Gateway demo CA")
        write_file(ca_key, ca.key_pem, mode=0o600)
        write_file(ca_crt, ca.certificate_pem)
        created += [ca_crt, ca_key]
    ca = Issued(x509.load_pem_x509_certificate(ca_crt.read_bytes()),
                _private_key(ca_key.read_bytes()))
    for stem, name in DEMO_CERTIFICATES:
        crt, key = folder / f"{stem}.crt", folder / f"{stem}.key"
        if fresh_ca or not (crt.exists() and key.exists()) or not _is_rsa(key):
            issued = issue_signing_certificate(ca, name, kind="rsa-2048")
            write_file(key, issued.key_pem, mode=0o600)
            write_file(crt, issued.certificate_pem)
            created += [crt, key]
    return created


def _is_rsa(key: Path) -> bool:
    return isinstance(_private_key(key.read_bytes()), rsa.RSAPrivateKey)


def _private_key(pem: bytes) -> SigningPrivateKey:
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key
