"""The MIC of an AS2 message (RFC 4130 section 7.3.1) and the micalg the sender asks for in
Disposition-Notification-Options (section 7.3).

RFC 4130 section 7.3.1 says what the MIC covers: for a signed message the signed MIME entity
(headers and body, as signed); for an encrypted unsigned one the decrypted entity (headers
and body); for neither, the body alone (MTAs change headers).  Choosing the entity is
security.as2's work; here the digest, its header form and the negotiation.

The options' two parameters may come in either order and the first supported micalg in the
sender's list is taken (the RFC 4130 revision, draft-petta-rfc4130bis, says so explicitly;
RFC 4130 lists them "in order of preference")."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from gateway.errors import As2ProcessingError

#: micalg names (RFC 3851 section 3.4.3.2, RFC 5751 section 3.4.3.2, and the unhyphenated
#: spellings AS2 products send) -> hashlib name.  MD5 is never computed.
MIC_ALGORITHMS: dict[str, str] = {
    "sha1": "sha1", "sha-1": "sha1",
    "sha224": "sha224", "sha-224": "sha224",
    "sha256": "sha256", "sha-256": "sha256",
    "sha384": "sha384", "sha-384": "sha384",
    "sha512": "sha512", "sha-512": "sha512",
}
#: When the sender names no micalg we support: RFC 4130bis makes SHA-256 the default.
DEFAULT_MICALG = "sha256"
MAX_OPTIONS_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Mic:
    """A message integrity check: the base64 digest and the micalg name as written."""

    digest: str
    algorithm: str

    def header(self) -> str:
        """The Received-Content-MIC value: "base64digest, sha256"."""
        return f"{self.digest}, {self.algorithm}"

    def matches(self, other: Mic) -> bool:
        """Same digest with the same hash, whatever the spelling of the name."""
        mine = MIC_ALGORITHMS.get(self.algorithm.lower())
        if mine is None or mine != MIC_ALGORITHMS.get(other.algorithm.lower()):
            return False
        return hmac.compare_digest(self.digest.encode("ascii", "replace"),
                                   other.digest.encode("ascii", "replace"))


@dataclass(frozen=True, slots=True)
class NotificationOptions:
    """Disposition-Notification-Options (RFC 4130 section 7.3)."""

    #: signed-receipt-protocol values (e.g. "pkcs7-signature"), lower-cased; empty if none.
    protocols: tuple[str, ...]
    protocol_required: bool
    #: signed-receipt-micalg values in the sender's order, lower-cased.
    micalgs: tuple[str, ...]
    micalg_required: bool

    @property
    def signed_receipt(self) -> bool:
        """The sender asks for a signed MDN."""
        return "pkcs7-signature" in self.protocols

    @property
    def micalg_unsupported(self) -> bool:
        """The sender requires a MIC and names none we compute (e.g. md5 only)."""
        return self.micalg_required and bool(self.micalgs) and not any(
            name in MIC_ALGORITHMS for name in self.micalgs)

    @property
    def micalg(self) -> str:
        """The first micalg asked for that we compute, as the sender spelled it."""
        for name in self.micalgs:
            if name in MIC_ALGORITHMS:
                return name
        return DEFAULT_MICALG


def parse_options(value: str | None) -> NotificationOptions:
    """``signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional,
    sha256, sha1``, its parameters in either order; None or empty asks for nothing."""
    if not value:
        return NotificationOptions((), False, (), False)
    if len(value) > MAX_OPTIONS_LENGTH:
        raise As2ProcessingError(f"Disposition-Notification-Options of {len(value)} "
                                 f"characters; at most {MAX_OPTIONS_LENGTH}")
    found: dict[str, tuple[bool, tuple[str, ...]]] = {}
    for parameter in value.split(";"):
        name, equals, rest = parameter.partition("=")
        if not equals:
            continue
        importance, *values = (v.strip().strip('"').lower() for v in rest.split(","))
        found.setdefault(name.strip().lower(),
                         (importance == "required", tuple(v for v in values if v)))
    protocol_required, protocols = found.get("signed-receipt-protocol", (False, ()))
    micalg_required, micalgs = found.get("signed-receipt-micalg", (False, ()))
    return NotificationOptions(protocols, protocol_required, micalgs, micalg_required)


def compute_mic(data: bytes, algorithm: str) -> Mic:
    """The MIC of ``data`` with the named micalg."""
    name = MIC_ALGORITHMS.get(algorithm.lower())
    if name is None:
        raise As2ProcessingError(f"unsupported MIC algorithm {algorithm[:40]!r}")
    digest = hashlib.new(name, data).digest()
    return Mic(base64.b64encode(digest).decode("ascii"), algorithm)


def parse_mic(value: str) -> Mic:
    """A Received-Content-MIC value, "digest, algorithm" (RFC 4130 section 7.4.3)."""
    digest, comma, algorithm = value.partition(",")
    digest, algorithm = digest.strip(), algorithm.strip().lower()
    if not comma or not digest or not algorithm:
        raise As2ProcessingError(f"not a Received-Content-MIC: {value[:80]!r}")
    return Mic(digest, algorithm)
