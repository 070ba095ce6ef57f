"""Certificates of origin between single windows (issue 15 item 4, docs/n2n.md).

Out: when the approving agency (``n2n.approving_agency``, the trade authority) releases a
certificate of origin, the answer desk queues it, in its own transaction, to the single window
of the certificate's destination country: the exporter's UBL 2.1 document as it was received
and validated (the chamber's bytes, not re-keyed), sent by AS2 through the ``as2`` relay
(app.as2_outbound), its delivery status kept in ``n2n_sent`` after the ePhyto hub's statuses.

In: a certificate a foreign single window sends is validated and mapped by the XML path (rule
5: issued in that single window's country), routed to customs (routing.yaml
``from_single_window``), and linked to the declarations whose goods items cite it (DOC 861),
whichever comes first; the declaration delivered to customs carries what the gateway verified
(``origin_certificates``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TextIO

from pydantic import ValidationError

from gateway import alarms
from gateway.config.load import GatewayConfig
from gateway.config.partners import Partner
from gateway.logs import event
from gateway.model.canonical import (
    CANONICAL_ADAPTER,
    CanonicalMessage,
    CertificateOfOrigin,
    CustomsDeclaration,
)
from gateway.pipeline.origin import cited_certificates, citing_items, file_name, with_verified
from gateway.store import interchanges as store
from gateway.store import n2n, outbox
from gateway.store.database import create_pool, translated_errors
from gateway.store.deferred import Deferred

log = logging.getLogger("gateway.n2n")
#: The outbox rows that carry certificates (properties ``kind``).
ROW_KIND = "certificate_of_origin"
#: The registry name of the document sent as received (xml-schemas.yaml).
UBL_NAME = "UBL-CertificateOfOrigin"


def country_code(country: str | None) -> str | None:
    """A country code as a document spells it ("nl ", UBL does not constrain its case), as
    partners.yaml does (ISO 3166-1 alpha-2, upper case); None for none."""
    return (country or "").strip().upper() or None


def single_window(config: GatewayConfig, country: str | None) -> Partner | None:
    code = country_code(country)
    return next((p for p in config.partners
                 if p.single_window and code is not None and p.country == code), None)


async def approved(connection: Any, config: GatewayConfig, message_id: int,
                   decision: str) -> None:
    """Called by the answer desk in the transaction that takes an approving agency's
    decision: a certificate of origin it approves is queued for its destination's single
    window, or failed (recorded, alarmed) when it cannot be sent."""
    stored = await _stored(connection, message_id)
    if stored is None or stored[0].from_single_window:
        return  # not a certificate; or one from abroad, which is not sent on
    certificate, interchange_id, document = stored
    await _queue(connection, config, certificate, message_id, interchange_id, document,
                 decision=decision, resend=False)


async def _stored(connection: Any, message_id: int
                  ) -> tuple[CertificateOfOrigin, int, bytes | None] | None:
    """The certificate of origin a stored message is, its submission, and the UBL document
    as it was received (None when it did not come as one); None when it is no certificate
    (or no longer reads as one)."""
    row = await connection.fetchrow(
        "SELECT m.interchange_id, m.message_type, m.canonical::text AS canonical, i.raw"
        " FROM messages m JOIN interchanges i ON i.id = m.interchange_id WHERE m.id = $1",
        message_id)
    if row is None or row["canonical"] is None:
        return None
    try:
        certificate = CANONICAL_ADAPTER.validate_json(row["canonical"])
    except ValidationError:
        return None
    if not isinstance(certificate, CertificateOfOrigin):
        return None
    return (certificate, row["interchange_id"],
            bytes(row["raw"]) if row["message_type"] == UBL_NAME else None)


async def _queue(connection: Any, config: GatewayConfig, certificate: CertificateOfOrigin,
                 message_id: int, interchange_id: int, document: bytes | None, *,
                 decision: str, resend: bool) -> str:
    """Queue the certificate (or fail it); its status."""
    number, country = certificate.certificate_number, country_code(
        certificate.destination_country)
    if not resend and await n2n.recorded(connection, message_id):
        return "recorded before"  # approved again: sent once (rule 2)
    partner = single_window(config, country)
    problem = _problem(config, country, partner, document)
    outbox_id = None
    if problem is None:
        assert partner is not None and document is not None
        sends = await connection.fetchval(
            "SELECT count(*) FROM outbox WHERE message_id = $1 AND dispatch_key LIKE 'n2n-%'",
            message_id)
        outbox_id = await outbox.add(
            connection, interchange_id=interchange_id, message_id=message_id, channel="as2",
            destination=partner.id, dispatch_key=f"n2n-{message_id}-{sends + 1}",
            body=document, properties={
                "file_name": file_name(number), "kind": ROW_KIND, "partner": partner.id,
                "certificate": number, "interchange_ref": number})
    status = "pending" if problem is None else "failed"
    values: dict[str, Any] = {
        "partner_id": None if partner is None else partner.id, "country": country,
        "outbox_id": outbox_id, "status": status, "error": problem}
    if resend:
        await n2n.requeued(connection, message_id, **values)
    else:
        await n2n.add_sent(connection, message_id=message_id, interchange_id=interchange_id,
                           number=number, **values)
    detail: dict[str, Any] = {"certificate": number, "country": country,
                              "single_window": values["partner_id"], "because": decision}
    if problem is None:
        await store.add_event(connection, interchange_id, "n2n_queued", detail, message_id)
        event(log, "n2n_queued", **detail, submission=interchange_id)
    else:
        await store.add_event(connection, interchange_id, "n2n_failed",
                              {**detail, "reason": problem}, message_id)
        event(log, "n2n_no_single_window", level=logging.ERROR,
              code=alarms.N2N_NO_SINGLE_WINDOW, **detail, reason=problem,
              submission=interchange_id,
              note="alarm: the certificate was not sent; status failed (docs/n2n.md)")
    return status


def _problem(config: GatewayConfig, country: str | None, partner: Partner | None,
             document: bytes | None) -> str | None:
    if country is None:
        return "the certificate names no destination country (Delivery/DeliveryAddress/Country)"
    if partner is None:
        return f"no single window for {country} in partners.yaml (kind: single_window)"
    if config.settings.as2 is None:
        return "this gateway has no as2 section in gateway.yaml: it cannot send by AS2"
    if document is None:
        return "the certificate did not come as a UBL 2.1 document: there is no original to send"
    return None


# --- the processor: certificates received, declarations citing them -----------------------


async def lock_all(connection: Any, canonicals: Iterable[CanonicalMessage | None]
                   ) -> None:
    """Lock every certificate number a batch of decisions cites or receives, before any is
    decided (beside the licences: app.licences.lock_all)."""
    numbers: set[str] = set()
    for canonical in canonicals:
        if isinstance(canonical, CustomsDeclaration):
            numbers.update(cited_certificates(canonical))
        elif isinstance(canonical, CertificateOfOrigin) and canonical.from_single_window:
            numbers.add(canonical.certificate_number)
    await n2n.lock_numbers(connection, sorted(numbers))


async def verified_declaration(connection: Any, declaration: CustomsDeclaration
                               ) -> CustomsDeclaration:
    """The declaration with ``origin_certificates`` set from the certificates received that
    its goods items cite (the numbers locked until the transaction ends, so a certificate
    decided at the same moment is seen by one of the two)."""
    cited = cited_certificates(declaration)
    for number in cited:
        await n2n.lock_number(connection, number)
    received: dict[str, list[tuple[str, str]]] = {}
    for certificate in await n2n.received_numbered(connection, list(cited)):
        received.setdefault(certificate.certificate_number, []).append(
            (certificate.country, certificate.partner_id))
    return with_verified(declaration, received)


async def record_declaration(connection: Any, writes: Deferred, declaration: CustomsDeclaration,
                             message_id: int, interchange_id: int) -> None:
    """Its citations, linked to the certificates received before it (events in both
    histories); the others wait for their certificate."""
    verified = {(c.number, c.country) for c in declaration.origin_certificates}
    received: dict[str, n2n.Received] = {}
    for candidate in await n2n.received_numbered(connection, sorted({n for n, _ in verified})):
        if (candidate.certificate_number, candidate.country) in verified:
            received.setdefault(candidate.certificate_number, candidate)
    for number, items in cited_certificates(declaration).items():
        certificate = received.get(number)
        await n2n.add_citation(connection, message_id=message_id,
                               interchange_id=interchange_id, number=number,
                               linked_to=None if certificate is None else certificate.message_id)
        if certificate is None:
            writes.event(interchange_id, "origin_certificate_awaited",
                         {"certificate": number, "items": list(items)}, message_id)
            continue
        _linked(writes, certificate, message_id, interchange_id, declaration.declaration_number)


async def record_certificate(connection: Any, writes: Deferred,
                             certificate: CertificateOfOrigin, message_id: int,
                             interchange_id: int, partner: Partner) -> None:
    """A certificate from a foreign single window: kept, and linked to the declarations that
    cited it before it came."""
    number = certificate.certificate_number
    await n2n.lock_number(connection, number)
    received = n2n.Received(message_id, interchange_id, number, partner.country or "",
                            partner.id)
    await n2n.add_received(connection, received)
    answered = [declaration_id for declaration_id, stored in
                await n2n.waiting_citations(connection, number)
                if _answers(stored, number, received.country)]
    for citation in await n2n.link_waiting(connection, number, message_id, answered):
        reference = await connection.fetchval(
            "SELECT document_ref FROM messages WHERE id = $1", citation.message_id)
        _linked(writes, received, citation.message_id, citation.interchange_id, reference)


def _answers(stored: str | None, number: str, country: str) -> bool:
    """Whether a certificate issued in ``country`` answers a waiting declaration's citation
    of ``number``: the goods items citing it claim that origin, or none
    (pipeline.origin.citing_items)."""
    try:
        declaration = None if stored is None else CANONICAL_ADAPTER.validate_json(stored)
    except ValidationError:
        return False
    return isinstance(declaration, CustomsDeclaration) and bool(
        citing_items(declaration, number, country))


def _linked(writes: Deferred, certificate: n2n.Received, declaration_message: int,
            declaration_submission: int, declaration: str | None) -> None:
    detail: dict[str, Any] = {
        "certificate": certificate.certificate_number, "country": certificate.country,
        "received_from": certificate.partner_id, "declaration": declaration,
        "declaration_submission": declaration_submission,
        "certificate_submission": certificate.interchange_id}
    writes.event(declaration_submission, "origin_certificate_linked", detail,
                 declaration_message)
    writes.event(certificate.interchange_id, "origin_certificate_linked", detail,
                 certificate.message_id)
    event(log, "origin_certificate_linked", **detail)


# --- gateway n2n status / resend -----------------------------------------------------------


async def show_status(config: GatewayConfig, number: str | None, out: TextIO) -> int:
    pool = await create_pool(config.database_url, size=1)
    try:
        async with translated_errors("reading certificates sent"), \
                pool.acquire() as connection:
            rows = await n2n.sent(connection, number)
    finally:
        await pool.close()
    if number is not None and not rows:
        out.write(f"no certificate {number!r} was sent\n")
        return 1
    print_status(rows, out)
    return 0


async def resend_certificate(config: GatewayConfig, number: str, out: TextIO) -> int:
    pool = await create_pool(config.database_url, size=1)
    try:
        async with translated_errors("resending a certificate"), \
                pool.acquire() as connection, connection.transaction():
            return await resend(connection, config, number, out)
    finally:
        await pool.close()


def print_status(rows: list[n2n.SentCertificate], out: TextIO) -> None:
    if not rows:
        out.write("no certificate of origin sent\n")
        return
    out.write(f"{'certificate':<24} {'country':<7} {'single window':<16} {'status':<24} "
              f"{'tries':>5}  updated / last error or MDN\n")
    for row in rows:
        note = row.last_error or row.disposition or ""
        out.write(f"{row.certificate_number[:24]!s:<24} {row.country or '-':<7} "
                  f"{(row.partner_id or '-')[:16]:<16} {row.status:<24} {row.attempts:>5}  "
                  f"{row.updated_at:%Y-%m-%d %H:%M:%S} {note[:100]}\n")


async def resend(connection: Any, config: GatewayConfig, number: str, out: TextIO) -> int:
    """Send again each certificate ``number`` that failed or was not readable; the exit
    status (0: queued again)."""
    rows = [r for r in await n2n.sent(connection, number)
            if r.status in ("failed", "not_readable")]
    if not rows:
        out.write(f"no certificate {number!r} failed or not readable: nothing to resend "
                  "(`gateway n2n status` lists them)\n")
        return 1
    for row in rows:
        stored = await _stored(connection, row.message_id)
        if stored is None:
            out.write(f"certificate {row.certificate_number} (submission "
                      f"{row.interchange_id}): its stored message no longer reads as a "
                      "certificate of origin; left as it is\n")
            continue
        certificate, _, document = stored
        status = await _queue(connection, config, certificate, row.message_id,
                              row.interchange_id, document, decision="resend", resend=True)
        out.write(f"certificate {row.certificate_number} (submission {row.interchange_id}): "
                  f"{status}\n")
    return 0
