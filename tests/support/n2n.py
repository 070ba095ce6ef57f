"""Single windows for the N2N tests (docs/n2n.md): gateways configured as each other's
``single_window`` partner, UBL certificates of origin for a number and countries, a single
window's AS2 side played with the gateway's own key, and a certificate's status awaited."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.security.pki import Issued
from tests.support.as2_peer import Peer
from tests.support.harness import ANSWER_TIMEOUT, Files, Gateway, demo_pki
from tests.support.xml import DEMO_REGISTRY

CERTIFICATE = Path(__file__).resolve().parents[1] / "data" / "xml" / "certificate-of-origin.xml"
#: What the certificate of tests/data/xml says: its number, the exporter (van-a's XML
#: identity), its issuing and destination countries.
NUMBER = "COO-2026-0042"
EXPORTER = "12345678"
_ISSUING = "<cac:IssuingCountry><cbc:IdentificationCode>TW</cbc:IdentificationCode>"
_DELIVERY = "<cac:Country><cbc:IdentificationCode>NL</cbc:IdentificationCode></cac:Country>\n" \
            "        </cac:DeliveryAddress>"


def certificate(number: str = NUMBER, *, destination: str = "NL", issuing: str = "TW") -> bytes:
    """The test certificate with another number (XML-escaped here) and countries."""
    text = CERTIFICATE.read_text("utf-8")
    assert _ISSUING in text and _DELIVERY in text and f"<cbc:ID>{NUMBER}</cbc:ID>" in text
    escaped = number.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace(f"<cbc:ID>{NUMBER}</cbc:ID>", f"<cbc:ID>{escaped}</cbc:ID>")
    text = text.replace(_ISSUING, _ISSUING.replace(">TW<", f">{issuing}<"))
    return text.replace(_DELIVERY, _DELIVERY.replace(">NL<", f">{destination}<")).encode()


def gateway_options(as2_id: str, port: int = 0, as2: dict[str, object] | None = None,
                    **n2n: object) -> dict[str, Any]:
    """write_files options of a gateway that is a single window: its AS2 name and port (and
    more ``as2`` settings), the demo XML registry, van-a as the exporter, ``n2n`` settings."""
    settings: dict[str, object] = {
        "as2": json.dumps({"id": as2_id, "port": port, **(as2 or {})}),
        "xml": json.dumps({"schemas": str(DEMO_REGISTRY)})}
    if n2n:
        settings["n2n"] = json.dumps(n2n)
    return {"settings": settings, "xml_ids": {"van-a": (EXPORTER,)}}


def add_single_window(files: Files, partner_id: str, country: str, as2_id: str, url: str,
                      certificate_file: str = "pki/gateway.crt") -> None:
    """A ``single_window`` partner in the gateway's partners.yaml (before it starts).  Every
    test gateway has the same demo PKI: another gateway's AS2 certificate is its own."""
    as2 = {"id": as2_id, "certificates": [certificate_file], "url": url}
    with (files.root / "partners.yaml").open("a") as partners:
        partners.write(f"  - id: {partner_id}\n    name: single window {country}\n"
                       f"    kind: single_window\n    country: {country}\n"
                       f"    as2: {json.dumps(as2)}\n")


def gateway_peer(as2_id: str) -> Peer:
    """Another gateway's AS2 side (its name, the demo PKI's gateway key), played by a test."""
    folder = demo_pki()
    key = serialization.load_pem_private_key((folder / "gateway.key").read_bytes(), None)
    return Peer(as2_id, Issued(
        x509.load_pem_x509_certificate((folder / "gateway.crt").read_bytes()),
        key))  # type: ignore[arg-type]


async def status_of(gateway: Gateway, number: str) -> tuple[str, int] | None:
    rows = await gateway.fetch("SELECT status, attempts FROM n2n_sent"
                               " WHERE certificate_number = $1", number)
    return None if not rows else (rows[0]["status"], rows[0]["attempts"])


async def wait_status(gateway: Gateway, number: str, status: str,
                      attempts: int | None = None) -> None:
    """Until certificate ``number`` has ``status`` (and that many attempts, when given)."""
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while True:
        found = await status_of(gateway, number)
        if found is not None and found[0] == status and attempts in (None, found[1]):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"certificate {number}: {found}, not {status} after "
                                 f"{ANSWER_TIMEOUT}s")
        await asyncio.sleep(0.05)


async def events(gateway: Gateway, kind: str) -> list[dict[str, Any]]:
    rows = await gateway.fetch("SELECT interchange_id, detail FROM events WHERE kind = $1"
                               " ORDER BY id", kind)
    return [{"submission": r["interchange_id"], **json.loads(r["detail"])} for r in rows]
