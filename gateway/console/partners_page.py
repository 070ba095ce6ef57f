"""The Partners page (issue 14): each partner of partners.yaml with its identities, transports
and keys - SFTP login and the SHA-256 fingerprints of its public keys, its AS2 name and url,
the algorithms it may use - and its certificates with subject, issuer, serial, not-after and
days left, expired and expiring ones marked with certificate_watch's thresholds (30 days).
Public material only: partners.yaml holds no private key (the loaders refuse one), and the
page shows fingerprints, not keys."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from cryptography.hazmat.primitives import hashes

from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError
from gateway.security.partner_certificates import (
    WARN_BEFORE,
    PartnerCertificate,
    load_partner_certificates,
)

Render = Callable[..., web.Response]


@dataclass(frozen=True, slots=True)
class CertificateView:
    subject: str
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    days_left: int
    #: 'expired', 'expiring' (within WARN_BEFORE) or 'valid'.
    state: str
    sha256: str
    file: str


def ssh_fingerprint(line: str) -> str | None:
    """OpenSSH's ``SHA256:...`` fingerprint of an authorized_keys line (options before the
    key type allowed; RFC 4253 section 6.6 key blob), or None when the line holds no key."""
    fields = line.split()
    for index, field in enumerate(fields[:-1]):
        if field.startswith(("ssh-", "ecdsa-", "sk-")):
            try:
                blob = base64.b64decode(fields[index + 1], validate=True)
            except (binascii.Error, ValueError):
                return None
            digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
            return f"{field} SHA256:{digest}"
    return None


def certificate_view(certificate: PartnerCertificate, now: dt.datetime) -> CertificateView:
    x509 = certificate.certificate
    left = certificate.expires - now
    state = "expired" if left.total_seconds() <= 0 else \
        "expiring" if left <= WARN_BEFORE else "valid"
    return CertificateView(
        subject=certificate.subject, issuer=x509.issuer.rfc4514_string(),
        serial=f"{x509.serial_number:x}", not_before=x509.not_valid_before_utc,
        not_after=certificate.expires, days_left=left.days, state=state,
        sha256=x509.fingerprint(hashes.SHA256()).hex(":"), file=certificate.path.name)


class PartnersPage:
    def __init__(self, render: Render, config: Callable[[], GatewayConfig | None]) -> None:
        self._render = render
        self._config = config

    async def partners(self, request: web.Request) -> web.Response:
        config = self._config()
        if config is None:
            return self._render(request, "partners.html", partners=[], certificates={},
                                fingerprints={}, problem="The partners are shown by the "
                                "console of gateway serve.", warn_days=WARN_BEFORE.days)
        problem = ""
        try:  # files read off the event loop: the certificates may be on slow storage
            loaded = await asyncio.to_thread(load_partner_certificates, config)
        except ConfigError as exc:
            loaded, problem = {}, str(exc)
        now = dt.datetime.now(dt.UTC)
        certificates = {partner: sorted((certificate_view(c, now) for c in owned),
                                        key=lambda v: v.not_after)
                        for partner, owned in loaded.items()}
        fingerprints = {
            partner.id: [f for text in config.ssh_keys.get(partner.id, ())
                         for line in text.splitlines()
                         if (f := ssh_fingerprint(line)) is not None]
            for partner in config.partners}
        return self._render(request, "partners.html", partners=config.partners,
                            certificates=certificates, fingerprints=fingerprints,
                            problem=problem, warn_days=WARN_BEFORE.days)
