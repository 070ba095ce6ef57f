"""``gateway validate FILE``: the pipeline run offline on one file, as a partner would see it."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TextIO

from gateway.app.mapping_files import load_compiled
from gateway.app.memory import without_cyclic_gc
from gateway.app.xml_schema_files import xml_catalog
from gateway.config.load import GatewayConfig
from gateway.config.partners import EdifactId, Partner
from gateway.config.routing import RoutingTable
from gateway.errors import ConfigError, EnvelopeError, XmlRejected
from gateway.model.edifact import PartyId
from gateway.model.outcome import Outcome, Status
from gateway.pipeline.process import Context, process_submission
from gateway.pipeline.sniff import Syntax, sniff
from gateway.pipeline.xml_kinds import XmlCatalog
from gateway.wire.edifact.envelope import read_interchange
from gateway.wire.xml.reader import read_xml


def validate_file(config: GatewayConfig, path: Path, partner_id: str | None,
                  out: TextIO) -> int:
    """Print the verdict, every finding, the routes, the canonical JSON and the answer.
    Exit status 0 when accepted, 1 otherwise."""
    outcome, partner = run_offline(config, path, partner_id)
    _print(outcome, partner, out)
    return 0 if outcome.status is Status.ACCEPTED else 1


def run_offline(config: GatewayConfig, path: Path, partner_id: str | None,
                routing: RoutingTable | None = None) -> tuple[Outcome, Partner]:
    """The whole pipeline on a file, as the gateway would run it, with no store or broker."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    xml = xml_catalog(config)
    for missing in xml.missing:
        sys.stderr.write(f"note: {missing}\n")
    partner = partner_for(config, data, partner_id, xml)
    settings = config.settings
    catalog, mappings = load_compiled(config.mappings_path, xml=xml)
    outcome = without_cyclic_gc(process_submission)(data, Context(
        partner=partner, routing=routing or config.routing, catalog=catalog, mappings=mappings,
        gateway=PartyId(settings.gateway_id, settings.gateway_id_qualifier or ""),
        ack_reference="OFFLINE", received=dt.datetime.now(dt.UTC), file_name=path.name,
        xml=xml))
    return outcome, partner


def partner_for(config: GatewayConfig, data: bytes, partner_id: str | None,
                xml: XmlCatalog | None = None) -> Partner:
    """The named partner, else the one whose identities include the document's sender (UNB
    sender, or XML submitter)."""
    if partner_id is not None:
        found = next((p for p in config.partners if p.id == partner_id), None)
        if found is None:
            raise ConfigError(f"no partner {partner_id!r} in the partners file")
        return found
    if sniff(data) is Syntax.XML:
        submitter = _xml_submitter(data, xml or XmlCatalog())
        found = next((p for p in config.partners if submitter and p.may_submit_xml_as(submitter)),
                     None)
        if found is not None:
            return found
    else:
        try:
            sender = read_interchange(data).header.sender
        except EnvelopeError:
            sender = None
        if sender is not None:
            for partner in config.partners:
                if partner.may_send_as(sender.id, sender.qualifier):
                    return partner
    # Nobody may send as this sender: check as an anonymous partner, so the verdict says so.
    return Partner.model_construct(id="(none)", name="no configured partner",
                                   edifact_ids=(EdifactId.model_construct(id="", qualifier=None),),
                                   ssh_keys=(), sftp_user=None)


def _xml_submitter(data: bytes, xml: XmlCatalog) -> str:
    try:
        document = read_xml(data, xml.limits)
    except XmlRejected:
        return ""
    kind = xml.kind_of(document.root, document.namespace, document.local_name)
    return kind.sender(document.root) if kind is not None else ""


def _print(outcome: Outcome, partner: Partner, out: TextIO) -> None:
    out.write(f"verdict: {outcome.status.value} (as partner {partner.id})\n")
    for finding in outcome.findings:
        out.write(f"  interchange: {finding.describe()}\n")
    for message in outcome.messages:
        head = f"message {message.position} ref {message.reference} " \
               f"{message.identifier.type} {message.identifier.directory}"
        if not message.accepted:
            out.write(f"{head}: rejected\n")
            for finding in message.findings:
                out.write(f"  {finding.describe()}\n")
            continue
        for warning in message.warnings:
            out.write(f"  warning: {warning.describe()}\n")
        route = ", ".join(message.agencies) or "nobody (unroutable: would be parked)"
        out.write(f"{head}: accepted; route to {route} (rules: {', '.join(message.rules)})\n")
        if message.canonical is not None:
            out.write(message.canonical.model_dump_json(indent=2, exclude_none=True) + "\n")
    ack = outcome.acknowledgement
    if ack is None:
        out.write("--- no answer: a CONTRL is never answered (ISO 9735-4) ---\n")
        return
    out.write(f"--- answer ({ack.kind}) ---\n")
    # CONTRLs are written in their syntax level's single-byte set; XML answers in UTF-8.
    out.write(ack.body.decode("utf-8" if ack.body.startswith(b"<?xml") else "latin-1",
                              errors="replace"))
