"""A certificate of origin (UBL 2.1 CertificateOfOrigin, issued by a chamber of commerce)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from gateway.model.canonical.cargo_report import CargoItem
from gateway.model.canonical.common import Canonical, Party, coded


class CertificateOfOrigin(Canonical):
    kind: Literal["CertificateOfOrigin"] = "CertificateOfOrigin"
    certificate_number: str
    issued_on: dt.date | None = None
    issuer: Party | None = None
    exporter: Party | None = None
    importer: Party | None = None
    country_of_origin: str | None = coded("ISO 3166-1 alpha-2")
    destination_country: str | None = coded("ISO 3166-1 alpha-2")
    #: The country whose authority issued it (UBL IssuingCountry): a certificate a foreign
    #: single window sends must be issued in that single window's country (docs/n2n.md).
    issuing_country: str | None = coded("ISO 3166-1 alpha-2")
    items: tuple[CargoItem, ...] = ()
    #: The foreign single window (partner id) it came from, as the transport authenticated
    #: it; set by the gateway, never by a mapping: routing's ``from_single_window``.
    received_from: str | None = None

    @property
    def from_single_window(self) -> bool:
        return self.received_from is not None

    @property
    def document_reference(self) -> str | None:
        return self.certificate_number

    @property
    def commodity_codes(self) -> tuple[str, ...]:
        return tuple(i.commodity_code for i in self.items if i.commodity_code)
