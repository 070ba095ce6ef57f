"""Parties and checks for the AS2 writing tests: our key and a partner's (RSA, issued by one
CA), reading a built message back as the partner would, and the single-line header check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gateway.security.as2 import As2Payload, Mdn, read_as2, read_mdn
from gateway.security.as2_write import HttpMessage
from gateway.security.pki import Issued, create_ca, issue_signing_certificate
from gateway.security.signing import SigningKey

CA = create_ca("AS2 write test CA", kind="rsa-2048")
#: We sign with US; the partner decrypts with PARTNER (and, during a rotation, PARTNER_NEXT).
US = issue_signing_certificate(CA, "gateway", kind="rsa-2048")
PARTNER = issue_signing_certificate(CA, "partner", kind="rsa-2048")
PARTNER_NEXT = issue_signing_certificate(CA, "partner 2027", kind="rsa-2048")
MAX = 1 << 22
_LINE = re.compile(r"[\x20-\x7e]*")


def signing_key(issued: Issued = US) -> SigningKey:
    return SigningKey(issued.certificate, issued.private_key)


def partner_reads(message: HttpMessage, partner: Issued = PARTNER) -> As2Payload:
    """What the partner's read_as2 makes of a message we built."""
    return read_as2(dict(message.headers), message.body,
                    keys=[(partner.certificate, partner.private_key)],
                    partner_certificates=[US.certificate], max_bytes=MAX)


def partner_reads_mdn(message: HttpMessage) -> Mdn:
    return read_mdn(dict(message.headers), message.body,
                    partner_certificates=[US.certificate])


def header(message: HttpMessage, name: str) -> str | None:
    found = [value for key, value in message.headers if key.lower() == name.lower()]
    assert len(found) <= 1, f"{name} given {len(found)} times"
    return found[0] if found else None


def assert_single_line(message: HttpMessage) -> None:
    """Every header value printable ASCII on one line of at most 998 characters."""
    for name, value in message.headers:
        assert _LINE.fullmatch(value), (name, value[:200])
        assert len(name) + 2 + len(value) <= 998, (name, len(value))


def smime_file(path: Path, message: HttpMessage) -> Path:
    """The message as an S/MIME file for ``openssl cms -verify -in``: its Content-Type
    header line, an empty line, the body."""
    content_type = header(message, "Content-Type")
    assert content_type is not None
    path.write_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + message.body)
    return path


@dataclass(frozen=True)
class OnDisk:
    """The CA and the partner's certificate and key as files, for the openssl binary."""

    ca: Path
    certificate: Path
    key: Path

    @classmethod
    def write(cls, root: Path, partner: Issued = PARTNER) -> OnDisk:
        files = cls(root / "ca.crt", root / "partner.crt", root / "partner.key")
        files.ca.write_bytes(CA.certificate_pem)
        files.certificate.write_bytes(partner.certificate_pem)
        files.key.write_bytes(partner.key_pem)
        return files
