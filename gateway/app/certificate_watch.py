"""Partners' AS2 certificates watched for expiry: at start-up and then once a day, an event for
each certificate expired or expiring within 30 days; an alarm when a partner has no valid one
left to rotate to (its signatures would then fail and nothing could be encrypted to it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence

from gateway import alarms
from gateway.app.workers import poll_forever
from gateway.logs import event
from gateway.security.partner_certificates import PartnerCertificate, expiry_notes

log = logging.getLogger("gateway.certificates")
#: How often certificates are looked at (a day: certificates run for years).
CHECK_SECONDS = 24 * 3600.0


class CertificateWatch:
    def __init__(self, certificates: Mapping[str, Sequence[PartnerCertificate]],
                 every: float = CHECK_SECONDS) -> None:
        self._certificates = certificates
        self._every = every

    async def run(self) -> None:
        await poll_forever("certificate-watch", self.check, asyncio.Event(), self._every)

    async def check(self) -> bool:
        """Tell what is expired or expiring now; False: nothing more to do until the next
        look."""
        for note in expiry_notes(self._certificates, dt.datetime.now(dt.UTC)):
            certificate = note.certificate
            alarm = not note.replaced
            event(log, "partner_certificate_expired" if note.expired
                  else "partner_certificate_expiring",
                  level=logging.ERROR if alarm else logging.WARNING,
                  code=alarms.CERTIFICATE_NO_SUCCESSOR if alarm else None,
                  partner=certificate.partner, certificate=str(certificate.path),
                  subject=certificate.subject, expires=certificate.expires.isoformat(),
                  note="alarm: the partner has no other certificate valid beyond 30 days; ask "
                       "it for a new one and add it to partners.yaml (as2.certificates)"
                  if alarm else "a newer certificate is listed: remove this one once the "
                       "partner has switched")
        return False
