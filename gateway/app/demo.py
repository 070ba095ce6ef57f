"""Demo set-up: the demo partner's SSH key and the demo PKI (a CA and the gateway's signing
certificate), made on the first ``make run`` and never committed."""

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


def ensure_pki(folder: Path) -> list[Path]:
    """The demo CA and the gateway's signing certificate and key, at ``folder``/ca.crt,
    ca.key, gateway.crt and gateway.key (keys 0600), unless they exist; returns what was
    created.  Never committed (``var/`` is ignored)."""
    ca_crt, ca_key = folder / "ca.crt", folder / "ca.key"
    crt, key = folder / "gateway.crt", folder / "gateway.key"
    make_folder(folder)
    created: list[Path] = []
    if not (ca_crt.exists() and ca_key.exists()):
        ca = create_ca("Single Window Gateway demo CA")
        write_file(ca_key, ca.key_pem, mode=0o600)
        write_file(ca_crt, ca.certificate_pem)
        created += [ca_crt, ca_key]
        crt.unlink(missing_ok=True)  # issued by the CA that is gone
    if not (crt.exists() and key.exists()):
        ca = Issued(x509.load_pem_x509_certificate(ca_crt.read_bytes()),
                    _private_key(ca_key.read_bytes()))
        issued = issue_signing_certificate(ca, "SWGATEWAY answers")
        write_file(key, issued.key_pem, mode=0o600)
        write_file(crt, issued.certificate_pem)
        created += [crt, key]
    return created


def _private_key(pem: bytes) -> SigningPrivateKey:
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key
