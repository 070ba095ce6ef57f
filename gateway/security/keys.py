"""The gateway's signing keys and trust anchors, read from the files gateway.yaml names."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError
from gateway.security.signing import Signer, signing_key


def load_signer(config: GatewayConfig) -> Signer:
    """Every configured key; ConfigError naming the file that is missing or wrong."""
    keys = []
    for certificate, key, password in config.signing_key_paths:
        secret = None if password is None else _read(password).strip()
        keys.append(signing_key(_read(certificate), _read(key), secret, name=str(certificate)))
    return Signer(keys)


def load_trust_anchors(path: Path) -> tuple[x509.Certificate, ...]:
    """The CA certificates in a PEM file (one or more: two during a CA roll-over)."""
    try:
        anchors = tuple(x509.load_pem_x509_certificates(_read(path)))
    except ValueError as exc:
        raise ConfigError(f"{path}: not PEM certificates: {exc}") from exc
    return anchors


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror} (signing; `make run` creates "
                          "the demo keys, `gateway demo pki`)") from exc
