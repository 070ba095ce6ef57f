"""Partners' AS2 certificates (partners.yaml ``as2.certificates``): read at start-up, and watched
for expiry.  Two may be valid at once while a partner rolls its certificate over: every one
listed is accepted for its signatures, and answers are encrypted to the newest valid one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from gateway.config.load import GatewayConfig
from gateway.config.partners import Partner
from gateway.errors import ConfigError

#: An event this long before a certificate expires, then at each check until it is replaced.
WARN_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class PartnerCertificate:
    partner: str
    path: Path
    certificate: x509.Certificate

    @property
    def expires(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


@dataclass(frozen=True, slots=True)
class ExpiryNote:
    """A certificate expired or expiring soon; ``replaced``: another of the partner's
    certificates is valid beyond the warning window (a rotation under way: no alarm)."""

    certificate: PartnerCertificate
    expired: bool
    replaced: bool


def load_partner_certificates(config: GatewayConfig) -> dict[str, tuple[PartnerCertificate, ...]]:
    """Every AS2 partner's certificates; ConfigError naming the partner, entry and file."""
    return {partner.id: _certificates(partner, config.partners_path)
            for partner in config.partners if partner.as2 is not None}


def _certificates(partner: Partner, partners_path: Path) -> tuple[PartnerCertificate, ...]:
    assert partner.as2 is not None
    found: list[PartnerCertificate] = []
    for index, name in enumerate(partner.as2.certificates):
        path = partners_path.parent / name
        where = f"{partners_path}: partner {partner.id!r} as2.certificates[{index}] ({path})"
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror}") from exc
        if b"PRIVATE KEY" in data:
            raise ConfigError(f"{where}: holds a private key; give the partner's certificate "
                              "only")
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise ConfigError(f"{where}: not a PEM certificate ({exc})") from exc
        found.extend(PartnerCertificate(partner.id, path, c) for c in certificates)
    return tuple(found)


def expiry_notes(certificates: Mapping[str, Sequence[PartnerCertificate]], now: dt.datetime,
                 warn_before: dt.timedelta = WARN_BEFORE) -> list[ExpiryNote]:
    """The certificates expired or expiring within ``warn_before`` of ``now``."""
    notes = []
    for owned in certificates.values():
        lasting = any(c.expires > now + warn_before for c in owned)
        for certificate in owned:
            if certificate.expires <= now + warn_before:
                notes.append(ExpiryNote(certificate, expired=certificate.expires <= now,
                                        replaced=lasting))
    return notes
