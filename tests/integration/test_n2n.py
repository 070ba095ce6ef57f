"""Issue 15 item 4: certificates of origin between two single windows, two real gateways over
loopback (each its own database, exchanges, queues, AS2 port), each the other's
``single_window`` partner.  Gateway A (Taiwan) takes an exporter's UBL certificate over SFTP,
its trade authority approves it, A sends it by AS2 to gateway B (the Netherlands), B routes it
to customs and links it to the declaration citing it, and A's status reads ``delivered``;
single windows down or unable to read it leave ``failed`` and ``not_readable``.  Then B alone
against a single window played by the test: the other order (declaration first) and what a
single window may not send."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from gateway.agency import answers as sdk
from gateway.agency.delivery import read_delivery
from gateway.app import n2n
from gateway.config.load import load_config
from gateway.model.canonical import Amount
from gateway.security.as2_write import build_mdn
from tests.integration.test_answers import gateway_command, publish_as
from tests.integration.test_answers_xml import Scene
from tests.support.agencies import agency_settings, provisioned_agencies, unique_users
from tests.support.as2_peer import as2_url, free_port, receiver, send
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import (
    DEMO_AGENCIES,
    Gateway,
    create_database,
    database_url,
    delete_topology,
    drop_database,
    start_gateway,
    write_files,
)
from tests.support.n2n import (
    NUMBER,
    add_single_window,
    certificate,
    events,
    gateway_options,
    gateway_peer,
    status_of,
    wait_status,
)
from tests.support.xml import SAMPLE_VALID_DEC, demo_xml_catalog


@dataclass
class Pair:
    a: Scene  # Taiwan's single window, with its trade authority answering
    b: Gateway  # the Netherlands'


@contextlib.asynccontextmanager
async def exporting_gateway(root: Path, port: int, windows: dict[str, tuple[str, str]],
                            as2: dict[str, object] | None = None, *,
                            settings: dict[str, object] | None = None,
                            answering: tuple[str, ...] = ("trade",)) -> AsyncIterator[Scene]:
    """Taiwan's single window on AS2 ``port``, its trade authority (and the other agencies
    ``answering``) answering with a broker user of its own; ``windows``: country -> (AS2 name,
    URL) of the single windows it knows (partner ``sw-<country>``); ``settings``: more
    gateway.yaml sections."""
    database = await create_database()
    users = unique_users(DEMO_AGENCIES)
    options = gateway_options("SWTW", port, as2, max_attempts=2)
    options["settings"].update(settings or {})
    files = write_files(root, database, agency_settings=agency_settings(users), **options)
    for country, (as2_id, url) in windows.items():
        add_single_window(files, f"sw-{country.lower()}", country, as2_id, url)
    gateway: Gateway | None = None
    try:
        async with provisioned_agencies(load_config(files.config_path, environ={}),
                                        {code: users[code] for code in answering}) as agencies:
            gateway = await start_gateway(files)
            yield Scene(gateway, agencies)
    finally:
        if gateway is not None and gateway.task is not None and not gateway.task.done():
            await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


@contextlib.asynccontextmanager
async def importing_gateway(root: Path, taiwan_url: str) -> AsyncIterator[Gateway]:
    """The Netherlands' single window, Taiwan's (``sw-tw``, AS2 name SWTW) its partner."""
    database = await create_database()
    files = write_files(root, database, **gateway_options("SWNL"))
    add_single_window(files, "sw-tw", "TW", "SWTW", taiwan_url)
    b = await start_gateway(files)
    try:
        yield b
    finally:
        if b.task is not None and not b.task.done():
            await b.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


@contextlib.asynccontextmanager
async def two_gateways(tmp_path: Path) -> AsyncIterator[Pair]:
    """B first (A's AS2 port is chosen before), then A.  A also knows single windows for
    France (nobody listening: down) and Germany (B's URL under an AS2 name B does not answer
    to: B cannot authenticate it)."""
    demo_xml_catalog()
    port_a = free_port()
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    async with importing_gateway(tmp_path / "b", f"http://127.0.0.1:{port_a}/as2") as b, \
            exporting_gateway(tmp_path / "a", port_a, {
                "NL": ("SWNL", as2_url(b)), "DE": ("SWDE", as2_url(b)),
                "FR": ("SWFR", f"http://127.0.0.1:{free_port()}/as2")}) as a:
        yield Pair(a, b)


async def approve(scene: Scene, count: int) -> None:
    """The trade authority releases each of the ``count`` certificates delivered to it."""
    for delivered in await scene.gateway.queue("trade", expect=count):
        canonical = json.loads(delivered.body)
        assert canonical["kind"] == "CertificateOfOrigin"
        key = delivered.message_id
        assert key is not None
        await scene.publish("trade", {
            "kind": "CustomsResponse", "source": canonical["source"], "agency": "trade",
            "decision": "released", "decided_at": dt.datetime.now(dt.UTC).isoformat(),
            "answers": {"document_reference": canonical["certificate_number"],
                        "correlation_id": key}}, correlation_id=key)


def citing(number: str, reference: str = "ICB0001", origin: str = "TW") -> bytes:
    """A CUSDEC from van-a whose goods item, of ``origin`` (the certificates' issuing country
    by default), cites certificate of origin ``number``."""
    message = cusdec_message(licences=[f"861+{number}"])
    assert "LOC+27+NO" in message
    return interchange([[f"LOC+27+{origin}" if segment == "LOC+27+NO" else segment
                         for segment in message]], sender="VANA", control_reference=reference)


async def test_a_certificate_goes_from_a_to_b_by_as2_is_linked_at_b_and_reads_delivered(
        tmp_path: Path) -> None:
    async with two_gateways(tmp_path) as pair:
        a, b = pair.a.gateway, pair.b
        await a.upload("van-a", "origin.xml", certificate())
        await a.upload("van-a", "to-france.xml", certificate("COO-FR-1", destination="FR"))
        await a.upload("van-a", "to-germany.xml", certificate("COO-DE-1", destination="DE"))
        await a.upload("van-a", "nowhere.xml", certificate("COO-XX-1", destination="JP"))
        await approve(pair.a, 4)

        # delivered: B took it (processed MDN with A's MIC), validated it, routed it to customs
        await wait_status(a, NUMBER, "delivered")
        (received,) = await b.queue("customs", expect=1)
        taken = json.loads(received.body)
        assert (taken["kind"], taken["certificate_number"]) == ("CertificateOfOrigin", NUMBER)
        assert (taken["received_from"], taken["issuing_country"]) == ("sw-tw", "TW")
        assert received.headers["partner"] == "sw-tw"
        [raw] = await b.fetch("SELECT i.raw FROM interchanges i JOIN n2n_received r"
                              " ON r.interchange_id = i.id")
        assert bytes(raw["raw"]) == certificate()  # the exporter's bytes, as A received them
        assert not await b.queue("trade", expect=0)  # from abroad: customs', not trade's

        # approved again (another answer): queued no second time
        [sent] = await a.fetch("SELECT message_id FROM n2n_sent WHERE certificate_number = $1",
                               NUMBER)
        connection = await asyncpg.connect(database_url(a.files.database))
        try:
            assert a.config is not None
            async with connection.transaction():
                await n2n.approved(connection, a.config, sent["message_id"], "released")
        finally:
            await connection.close()
        assert len(await a.fetch("SELECT 1 FROM outbox WHERE dispatch_key LIKE 'n2n-%'"
                                 " AND message_id = $1", sent["message_id"])) == 1

        # a declaration citing it is linked, and customs is told what the gateway verified
        await b.upload("van-a", "declaration.edi", citing(NUMBER))
        (_, declaration) = await b.queue("customs", expect=2)
        assert json.loads(declaration.body)["origin_certificates"] == [{
            "number": NUMBER, "verified": True, "country": "TW", "received_from": "sw-tw",
            "items": [1]}]
        linked = await events(b, "origin_certificate_linked")
        assert len(linked) == 2 and {e["submission"] for e in linked} == {
            linked[0]["declaration_submission"], linked[0]["certificate_submission"]}

        # France's single window is down: retried (pending), then failed after max_attempts
        await wait_status(a, "COO-FR-1", "failed", attempts=2)
        [france] = await a.fetch("SELECT interchange_id FROM n2n_sent"
                                 " WHERE certificate_number = 'COO-FR-1'")
        story = [r["kind"] for r in await a.fetch(
            "SELECT kind FROM events WHERE interchange_id = $1 ORDER BY id",
            france["interchange_id"])]
        assert story.index("n2n_queued") < story.index("dispatch_failed") \
            < story.index("n2n_failed") < story.index("dispatch_parked"), story
        # Germany's could not authenticate it: an error MDN, not retried
        await wait_status(a, "COO-DE-1", "not_readable")
        # Japan has no single window: failed at once, nothing sent
        assert await status_of(a, "COO-XX-1") == ("failed", 0)
        code, text = await gateway_command(a, "n2n", "status")
        assert code == 0, text
        lines = {line.split()[0]: line for line in text.splitlines()[1:]}
        assert " delivered " in lines[NUMBER] and " sw-nl " in lines[NUMBER]
        assert " failed " in lines["COO-FR-1"] and " failed " in lines["COO-XX-1"]
        assert "no single window for JP" in lines["COO-XX-1"]
        assert "authentication-failed" in lines["COO-DE-1"]
        code, text = await gateway_command(a, "track", NUMBER)
        assert "n2n queued" in text and "n2n delivered" in text and "processed" in text, text
        # and a resend of one not readable goes again (still refused by B)
        code, text = await gateway_command(a, "n2n", "resend", "COO-DE-1")
        assert code == 0 and "pending" in text, text
        await wait_status(a, "COO-DE-1", "not_readable")
        assert (await b.fetch("SELECT count(*) AS n FROM n2n_received"))[0]["n"] == 1


async def test_a_declaration_first_then_its_certificate_and_what_a_single_window_may_not_send(
        tmp_path: Path) -> None:
    """B alone; Taiwan's single window is played by the test (its AS2 name, the gateway key
    every test gateway has), its answers taken by a receiver."""
    demo_xml_catalog()
    taiwan = gateway_peer("SWTW")
    odd = "COO/77 #1 é"  # a number a file name could not carry as it is
    async with receiver(taiwan) as answers, importing_gateway(tmp_path, answers.url) as b:
        # the declaration comes first: delivered without a verified certificate
        await b.upload("van-a", "declaration.edi", citing(odd))
        (declaration,) = await b.queue("customs", expect=1)
        assert json.loads(declaration.body)["origin_certificates"] == []
        assert [e["certificate"] for e in await events(b, "origin_certificate_awaited")] \
            == [odd]

        async def from_taiwan(payload: bytes, name: str) -> str:
            message, _ = taiwan.message(payload, filename=name, as2_to="SWNL")
            return (await send(as2_url(b), message)).mdn().report.disposition.text()

        # then its certificate: taken, routed to customs, linked to the declaration
        assert await from_taiwan(certificate(odd), "coo.xml") == "processed"
        (_, taken) = await b.queue("customs", expect=2)
        assert json.loads(taken.body)["certificate_number"] == odd
        linked = await events(b, "origin_certificate_linked")
        assert len(linked) == 2 and linked[0]["certificate"] == odd
        assert {e["submission"] for e in linked} == {
            linked[0]["declaration_submission"], linked[0]["certificate_submission"]}
        [citation] = await b.fetch("SELECT certificate_number, linked_to FROM n2n_citations")
        assert citation["certificate_number"] == odd and citation["linked_to"] is not None

        # what it may not send: taken by AS2 (processed), answered, routed nowhere
        assert await from_taiwan(interchange([cusdec_message()], sender="SWTW"),
                                 "cusdec.edi") == "processed"
        assert await from_taiwan(SAMPLE_VALID_DEC.read_bytes(), "dec.xml") == "processed"
        assert await from_taiwan(certificate("COO-FR-9", issuing="FR"),
                                 "french.xml") == "processed"
        broken = certificate("COO-BROKEN").replace(b"<cbc:IssueDate>2026-11-20",
                                                   b"<cbc:IssueDate>not a date")
        assert await from_taiwan(broken, "broken.xml") == "processed"
        # a sender that is no partner: refused, nothing kept
        stranger = gateway_peer("SWXX")
        message, _ = stranger.message(certificate("COO-XX-9"), filename="x.xml",
                                      as2_to="SWNL")
        assert "authentication-failed" in \
            (await send(as2_url(b), message)).mdn().report.disposition.text()

        await answers.wait(5)  # AP, the CONTRL, RES-DMS and two RE, by AS2 to Taiwan
        await b.settled()
        assert await b.queue("customs", expect=2) == [declaration, taken]
        statuses = {r["file_name"]: r["status"] for r in await b.fetch(
            "SELECT file_name, status FROM interchanges WHERE partner_id = 'sw-tw'")}
        assert statuses == {"coo.xml": "accepted", "cusdec.edi": "rejected",
                            "dec.xml": "rejected", "french.xml": "rejected",
                            "broken.xml": "rejected"}
        summaries = {r["file_name"]: r["summary"] for r in await b.fetch(
            "SELECT file_name, summary FROM interchanges WHERE partner_id = 'sw-tw'")}
        assert "sender 'SWTW' is not an identity of partner 'sw-tw'" in \
            summaries["cusdec.edi"]
        assert "issued in 'FR'; partner 'sw-tw' is the single window of TW" in \
            summaries["french.xml"]
        assert "cbc:IssueDate" in summaries["broken.xml"]
        assert "single window: it sends certificates of origin only, not DEC-DMS" in \
            summaries["dec.xml"]
        bodies = b"".join(p.payload for p in answers.received)
        assert b"UNH+" in bodies and b"CONTRL" in bodies
        assert b"issued in 'FR'" in bodies and b"single window of TW" in bodies
        assert b"COO-XX-9" not in b"".join(
            bytes(r["raw"]) for r in await b.fetch("SELECT raw FROM interchanges"))


async def test_an_asynchronous_mdn_with_a_warning_reads_delivered_with_warnings(
        tmp_path: Path) -> None:
    """The Netherlands' single window played by a receiver that answers later, at A's
    endpoint, processed with a warning."""
    demo_xml_catalog()
    async with receiver(gateway_peer("SWNL")) as netherlands:
        netherlands.disposition = "processed/warning: duplicate-document"
        async with exporting_gateway(tmp_path, free_port(), {"NL": ("SWNL", netherlands.url)},
                                     {"receipt": "async"}) as a:
            await a.gateway.upload("van-a", "origin.xml", certificate())
            await approve(a, 1)
            await netherlands.wait(1)
            assert netherlands.received[0].payload == certificate()  # as the exporter sent it
            assert netherlands.received[0].signed and netherlands.received[0].encrypted
            await wait_status(a.gateway, NUMBER, "delivered_with_warnings")
            [row] = await a.gateway.fetch("SELECT disposition, as2_message_id FROM n2n_sent")
            assert row["disposition"] == "processed/warning: duplicate-document"
            assert row["as2_message_id"]


async def test_declarations_and_certificates_arriving_together_are_all_linked(
        tmp_path: Path) -> None:
    """Eight numbers, each cited by a CUSDEC uploaded over SFTP while its certificate comes
    by AS2, all at once, with four processor workers: whichever is decided first, each pair
    meets (a lock on the number; without it both can decide before either commits)."""
    demo_xml_catalog()
    taiwan = gateway_peer("SWTW")
    numbers = [f"COO-RACE-{n}" for n in range(8)]
    async with receiver(taiwan) as answers, importing_gateway(tmp_path, answers.url) as b:

        async def certificate_of(number: str) -> None:
            message, _ = taiwan.message(certificate(number), filename=f"{number}.xml",
                                        as2_to="SWNL")
            assert (await send(as2_url(b), message)).mdn().report.disposition.text() \
                == "processed"

        await asyncio.gather(*(
            work for n, number in enumerate(numbers) for work in (
                certificate_of(number),
                b.upload("van-a", f"{number}.edi", citing(number, f"ICR{n}")))))
        await b.queue("customs", expect=16)
        rows = await b.fetch("SELECT certificate_number, linked_to FROM n2n_citations")
        assert sorted((r["certificate_number"], r["linked_to"] is not None) for r in rows) \
            == [(number, True) for number in numbers]
        assert len(await events(b, "origin_certificate_linked")) == 16


async def test_a_certificate_of_another_country_with_the_number_cited_verifies_nothing(
        tmp_path: Path) -> None:
    """Attack: a certificate number is unique in its issuing country only. Goods of
    Norwegian origin cite COO-NO-1; Taiwan's single window sends a certificate numbered
    COO-NO-1 (issued in TW). Neither the declaration waiting for it nor one lodged after it
    is linked to it, and customs is never told the Norwegian claim was verified."""
    demo_xml_catalog()
    taiwan = gateway_peer("SWTW")
    async with receiver(taiwan) as answers, importing_gateway(tmp_path, answers.url) as b:
        await b.upload("van-a", "first.edi", citing("COO-NO-1", "ICB0001", origin="NO"))
        (first,) = await b.queue("customs", expect=1)
        assert json.loads(first.body)["origin_certificates"] == []
        message, _ = taiwan.message(certificate("COO-NO-1"), filename="coo.xml", as2_to="SWNL")
        assert (await send(as2_url(b), message)).mdn().report.disposition.text() == "processed"
        await b.queue("customs", expect=2)
        await b.upload("van-a", "second.edi", citing("COO-NO-1", "ICB0002", origin="NO"))
        (_, _, second) = await b.queue("customs", expect=3)
        assert json.loads(second.body)["origin_certificates"] == []
        await b.settled()
        assert await events(b, "origin_certificate_linked") == []
        citations = await b.fetch("SELECT linked_to FROM n2n_citations")
        assert [r["linked_to"] for r in citations] == [None, None]


async def test_an_unsigned_asynchronous_mdn_changes_no_certificates_status(
        tmp_path: Path) -> None:
    """Attack: the Netherlands' single window confirmed the certificate (signed, processed).
    Someone else who knows the AS2 Message-ID then POSTs an unsigned 'failed' MDN naming
    SWNL as its sender: nobody vouches for it, so the certificate stays delivered (and is not
    offered for a resend)."""
    demo_xml_catalog()
    async with receiver(gateway_peer("SWNL")) as netherlands, exporting_gateway(
            tmp_path, free_port(), {"NL": ("SWNL", netherlands.url)},
            {"receipt": "async"}) as a:
        await a.gateway.upload("van-a", "origin.xml", certificate())
        await approve(a, 1)
        await wait_status(a.gateway, NUMBER, "delivered")
        [row] = await a.gateway.fetch("SELECT as2_message_id FROM n2n_sent")
        forged = build_mdn(
            original_message_id=row["as2_message_id"], original_recipient="SWNL",
            as2_from="SWNL", as2_to="SWTW", message_id="<forged@elsewhere>",
            disposition="failed/Failure: unexpected-processing-error", mic=None,
            text="not from the single window", signer=None, micalg="sha256")
        answer = await send(as2_url(a.gateway), forged)
        await a.gateway.settled()
        found = await status_of(a.gateway, NUMBER)
        assert found is not None and found[0] == "delivered"
        assert answer.status == 400, answer.body
        [sent] = await a.gateway.fetch("SELECT mic_matched, mdn_signed FROM as2_sent")
        assert (sent["mic_matched"], sent["mdn_signed"]) == (True, True)


async def test_a_certificate_whose_approval_waited_for_its_fee_is_sent_once_paid(
        tmp_path: Path) -> None:
    """Attack (payments meet N2N): the trade authority charges a fee for the certificate
    (duties in its registration) and the release waits for the payment. Its approval is
    withheld until the bank pays; the payment must then send the certificate abroad, not
    leave it approved and never sent."""
    demo_xml_catalog()
    async with receiver(gateway_peer("SWNL")) as netherlands, exporting_gateway(
            tmp_path, free_port(), {"NL": ("SWNL", netherlands.url)}, answering=(
                "trade", "bank"), settings={"payments": json.dumps(
                    {"agency": "bank", "release_waits_for_payment": True})}) as a:
        await a.gateway.upload("van-a", "origin.xml", certificate())
        (message,) = await a.gateway.queue("trade", expect=1)
        trade = read_delivery("trade", message_id=message.message_id,
                              correlation_id=message.correlation_id, type_=message.type,
                              headers=message.headers, body=message.body, redelivered=False)
        fee = [Amount(qualifier="55", value=Decimal("25"), currency="USD")]
        for number, answer in enumerate((
                sdk.decision(trade, "accepted", reference="TRD-1", duties=fee),
                sdk.released(trade, "TRD-1"))):
            await publish_as(a.agencies, "trade", answer.model_dump_json().encode(),
                             correlation_id=trade.message_id,
                             answer_id=f"{trade.message_id}:{number}")
        (message,) = await a.gateway.queue("bank", expect=1)
        bank = read_delivery("bank", message_id=message.message_id,
                             correlation_id=message.correlation_id, type_=message.type,
                             headers=message.headers, body=message.body, redelivered=False)
        assert await events(a.gateway, "answer_withheld")
        assert await a.gateway.fetch("SELECT 1 FROM n2n_sent") == []  # not before the fee
        await publish_as(a.agencies, "bank", sdk.paid(bank, "BNK-1").model_dump_json().encode(),
                         correlation_id=bank.message_id, kind="PaymentConfirmation")
        await wait_status(a.gateway, NUMBER, "delivered")
        await netherlands.wait(1)
        assert netherlands.received[0].payload == certificate()
        assert len(await events(a.gateway, "n2n_queued")) == 1


async def test_an_asynchronous_error_mdn_reads_not_readable_and_raises_its_alarm(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The Netherlands' single window answers later, at A's endpoint, that it could not
    decrypt the certificate: not_readable, and the operator is told (GW-A021), as for a
    synchronous one, so that someone runs `gateway n2n resend`."""
    demo_xml_catalog()
    async with receiver(gateway_peer("SWNL")) as netherlands:
        netherlands.disposition = "processed/error: decryption-failed"
        async with exporting_gateway(tmp_path, free_port(), {"NL": ("SWNL", netherlands.url)},
                                     {"receipt": "async"}) as a:
            await a.gateway.upload("van-a", "origin.xml", certificate())
            await approve(a, 1)
            await wait_status(a.gateway, NUMBER, "not_readable")
    assert any(getattr(r, "fields", {}).get("code") == "GW-A021" for r in caplog.records), [
        (r.getMessage(), getattr(r, "fields", {}).get("code")) for r in caplog.records
        if r.levelname == "ERROR"]
