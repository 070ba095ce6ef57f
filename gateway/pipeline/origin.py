"""Certificates of origin between single windows, pure (docs/n2n.md): which certificates a
declaration's goods items cite, and what an AS2 receipt says of a certificate sent."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from gateway.model.canonical.customs_declaration import (
    CustomsDeclaration,
    VerifiedOriginCertificate,
)

#: UNTDID 1001 document codes of certificates of origin: 861 certificate of origin, 864
#: preference certificate of origin, 865 certificate of origin form GSP.
ORIGIN_DOCUMENTS = frozenset({"861", "864", "865"})
#: The longest certificate number kept (a UBL cbc:ID is free text; DOC C503/1004 an..35).
MAX_NUMBER = 100
#: The delivery statuses of a certificate sent, after the IPPC ePhyto hub's.
STATUSES = ("pending", "delivered", "delivered_with_warnings", "not_readable", "failed")


def cited_certificates(declaration: CustomsDeclaration) -> dict[str, tuple[int, ...]]:
    """Certificate number -> the goods items (positions, from 1) citing it."""
    cited: dict[str, list[int]] = {}
    for position, goods in enumerate(declaration.goods_items, start=1):
        for document in goods.documents:
            number = (document.number or "").strip()
            if document.code in ORIGIN_DOCUMENTS and number and len(number) <= MAX_NUMBER:
                items = cited.setdefault(number, [])
                if position not in items:
                    items.append(position)
    return {number: tuple(items) for number, items in sorted(cited.items())}


def citing_items(declaration: CustomsDeclaration, number: str,
                 country: str) -> tuple[int, ...]:
    """The goods items citing certificate ``number`` that a certificate issued in
    ``country`` can answer: a number is unique in its issuing country only, so an item whose
    stated origin is another country is not answered by it (one stating none is)."""
    cited = cited_certificates(declaration).get(number, ())
    goods = declaration.goods_items
    return tuple(position for position in cited
                 if goods[position - 1].country_of_origin in (None, country))


def with_verified(declaration: CustomsDeclaration,
                  received: Mapping[str, Sequence[tuple[str, str]]]) -> CustomsDeclaration:
    """The declaration carrying what the gateway verified of each certificate it cites:
    ``received`` is number -> (country, partner) of each certificate received with that
    number; each is verified for the citing goods items of its country of origin only
    (``citing_items``), and once when it was received twice (a resend from abroad).
    Whatever ``origin_certificates`` it came with is replaced: only the gateway sets it."""
    cited = cited_certificates(declaration)
    verified = tuple(
        VerifiedOriginCertificate(number=number, verified=True, country=country,
                                  received_from=partner, items=items)
        for number in cited for country, partner in dict.fromkeys(received.get(number, ()))
        if (items := citing_items(declaration, number, country)))
    if verified == declaration.origin_certificates:
        return declaration
    return declaration.model_copy(update={"origin_certificates": verified})


def status_of_mdn(disposition: str | None, confirmed: bool) -> str:
    """A certificate's status from the MDN that answered it: ``disposition`` as the MDN
    gives it (None: none yet, asynchronous), ``confirmed``: signed, for our message, with our
    MIC.  processed: delivered; processed/warning: delivered_with_warnings; processed/error
    or failed (decryption-failed, authentication-failed, integrity-check-failed ...), or a
    receipt that does not confirm what we sent: not_readable."""
    if disposition is None:
        return "pending"
    text = disposition.strip().lower()
    if not confirmed or not text.startswith("processed") or "/error" in text:
        return "not_readable"
    return "delivered_with_warnings" if "/warning" in text else "delivered"


def file_name(number: str) -> str:
    """The file name a certificate is sent under: its number with what a file name should
    not hold replaced (the number itself travels inside the document, untouched)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", number)[:80].lstrip(".") or "certificate"
    return f"{safe}.certificate-of-origin.xml"
