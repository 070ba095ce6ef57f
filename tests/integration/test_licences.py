"""Issue 15 item 1 (G2G licence check), end to end on real RabbitMQ (a broker user per agency),
PostgreSQL and SFTP: the trade authority publishes licences through the SDK; a declaration
citing a valid one is delivered and, once customs releases it, its quantity is drawn; an
exhausted licence holds the next declaration and the trader's CUSRES says why; concurrent
declarations on one licence never overdraw it; a licence published by another agency than
its issuer is refused and dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from gateway.agency import answers, consume, licences
from gateway.agency.answers import Answer
from gateway.agency.delivery import Delivery
from gateway.cli import main
from gateway.config.load import load_config
from gateway.model.canonical.licence import Licence
from gateway.pipeline.xml_answer import RES_NS, RES_REJECTED
from tests.integration.test_answers import Scene
from tests.support.agencies import agency_settings, provisioned_agencies, unique_users
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import (
    ANSWER_TIMEOUT,
    DEMO_AGENCIES,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    gateway_fixture,
    start_gateway,
    take_messages,
    write_files,
)
from tests.support.xml import (
    DEMO_REGISTRY,
    SAMPLE_DECLARANT,
    SAMPLE_REFERENCE,
    SAMPLE_VALID_DEC,
    assert_valid_answer,
    demo_xml_catalog,
)

IMPORTER = "IMP001"
#: HS 8438.50 (meat or poultry machinery): routed to customs alone by the shipped routing.yaml.
MACHINE = "8438.50"


async def _scene(tmp_path: Path, workers: int, settings: dict[str, object] | None = None,
                 only: tuple[str, ...] | None = None,
                 agencies: dict[str, dict[str, object]] | None = None
                 ) -> AsyncIterator[Scene]:
    """Every demo agency provisioned (``only`` these, when given); ``settings``: more
    gateway.yaml keys; ``agencies``: more agencies.yaml keys by agency code."""
    database = await create_database()
    users = unique_users(DEMO_AGENCIES)
    per_agency = agency_settings(users)
    for code, more in (agencies or {}).items():
        per_agency[code] = {**per_agency[code], **more}
    files = write_files(tmp_path, database, agency_settings=per_agency, settings=settings)
    config = load_config(files.config_path, environ={})
    provisioned = users if only is None else {code: users[code] for code in only}
    async with provisioned_agencies(config, provisioned) as agencies:
        scene = Scene(await start_gateway(files, workers=workers), agencies, tmp_path)
        try:
            yield scene
        finally:
            if scene.gateway.task is not None and not scene.gateway.task.done():
                await scene.gateway.stop()
            await delete_topology(files, DEMO_AGENCIES)
            await drop_database(database)


#: The agencies these tests use (the payments agencies are not provisioned: quicker).
LICENCE_AGENCIES = ("customs", "quarantine", "port", "trade")


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async for made in _scene(tmp_path, workers=1, only=LICENCE_AGENCIES):
        yield made


@pytest.fixture
async def busy_scene(tmp_path: Path) -> AsyncIterator[Scene]:
    """Two gateway processes deciding at once (serve --workers 2)."""
    async for made in _scene(tmp_path, workers=2, only=LICENCE_AGENCIES):
        yield made


def a_licence(scene: Scene, number: str, quantity: int, *, agency: str = "trade",
              kind: str = "import") -> Licence:
    return licences.licence(
        scene.agencies.endpoint(agency), number=number, holder=IMPORTER, kind=kind,  # type: ignore[arg-type]
        commodity_codes=["8438"], quantity=quantity, unit="KGM",
        valid_from=dt.date(2026, 1, 1), valid_until=dt.date(2026, 12, 31))


def declaration(number: str, licence: str | None, weight: int, reference: str,
                function: str = "9", sender: str = "VANA") -> bytes:
    """A CUSDEC of ``weight`` KGM of MACHINE for IMPORTER, citing import ``licence`` (or none)."""
    return interchange([cusdec_message(
        commodity_codes=(MACHINE,), declaration=number, parties=(f"IM+{IMPORTER}::ZZZ",),
        licences=(f"911+{licence}",) if licence else (), weight=str(weight),
        function=function)], sender=sender, control_reference=reference)


async def until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.05)


async def balance(scene: Scene, number: str) -> tuple[Decimal, Decimal] | None:
    rows = await scene.gateway.fetch(
        "SELECT reserved, drawn FROM licences WHERE number = $1", number)
    return (rows[0]["reserved"], rows[0]["drawn"]) if rows else None


async def registered(scene: Scene, number: str, amendment: int = 0) -> None:
    async def there() -> bool:
        rows = await scene.gateway.fetch(
            "SELECT amendment FROM licences WHERE number = $1", number)
        return bool(rows) and rows[0]["amendment"] == amendment

    await until(there, f"licence {number} amendment {amendment} in the registry")


@contextlib.asynccontextmanager
async def customs_deciding(scene: Scene, decide: Callable[[Delivery], Sequence[Answer]]
                           ) -> AsyncIterator[None]:
    """Customs, as its own broker user through the SDK, deciding with ``decide``."""
    async def decided(delivery: Delivery) -> Sequence[Answer]:
        return decide(delivery)

    stop = asyncio.Event()
    task = asyncio.create_task(consume(scene.agencies.endpoint("customs"), decided, stop,
                                       journal=scene.tmp / "customs.journal.sqlite"))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def customs_releasing(scene: Scene) -> contextlib.AbstractAsyncContextManager[None]:
    """Customs registers, then releases."""
    return customs_deciding(scene, lambda delivery: [answers.accepted(delivery, "CUS-1"),
                                                     answers.released(delivery, "CUS-1")])


async def test_a_valid_licence_is_drawn_on_release_and_an_exhausted_one_holds(
        scene: Scene) -> None:
    await licences.publish(scene.agencies.endpoint("trade"), a_licence(scene, "LIC-A", 100))
    await registered(scene, "LIC-A")
    async with customs_releasing(scene):
        await scene.gateway.upload("van-a", "one.edi", declaration("DEC-L1", "LIC-A", 60, "L1"))
        assert await until(lambda: _drawn(scene, "LIC-A", Decimal(60)), "60 KGM drawn")
        (first,) = await scene.gateway.fetch(
            "SELECT status, clearance FROM messages WHERE document_ref = 'DEC-L1'")
        assert (first["status"], first["clearance"]) == ("routed", "released")

        await scene.gateway.upload("van-a", "two.edi", declaration("DEC-L2", "LIC-A", 60, "L2"))
        (cusres,) = await until(lambda: _files(scene.outbox, "DEC-L2.*.licences.1.cusres.edi"),
                                "the licence check's CUSRES")
    text = cusres.read_text("latin-1")
    assert "CUSRES:D:96B:UN" in text and "GIS+25'" in text, text  # 7365 25: no valid licence
    assert "RFF+ABT:DEC-L2'" in text and "Licence LIC-A?: 40 KGM left, 60 needed" in text, text
    assert (scene.outbox / f"{cusres.name}.p7s").exists()  # signed like every answer
    (held,) = await scene.gateway.fetch(
        "SELECT m.id, m.status FROM messages m WHERE m.document_ref = 'DEC-L2'")
    assert held["status"] == "held"
    delivered = await scene.gateway.fetch(
        "SELECT 1 FROM outbox WHERE message_id = $1 AND channel = 'amqp'", held["id"])
    assert delivered == []  # never delivered to an agency
    reasons = await scene.gateway.fetch(
        "SELECT detail FROM events WHERE message_id = $1 AND kind = 'message_held'", held["id"])
    assert "licence check: Licence LIC-A: 40 KGM left, 60 needed" in reasons[0]["detail"]
    assert await balance(scene, "LIC-A") == (Decimal(0), Decimal(60))


async def _drawn(scene: Scene, number: str, quantity: Decimal) -> bool:
    return await balance(scene, number) == (Decimal(0), quantity)


async def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(await asyncio.to_thread(lambda: list(folder.glob(pattern))))


async def test_concurrent_declarations_never_overdraw_a_licence(busy_scene: Scene) -> None:
    scene = busy_scene
    await licences.publish(scene.agencies.endpoint("trade"), a_licence(scene, "LIC-C", 100))
    await registered(scene, "LIC-C")
    await asyncio.gather(*(
        scene.gateway.upload("van-a", f"c{n}.edi", declaration(f"DEC-C{n}", "LIC-C", 40,
                                                               f"C{n}"))
        for n in range(6)))

    async def decided() -> list[Any]:
        rows = await scene.gateway.fetch(
            "SELECT status FROM messages WHERE document_ref LIKE 'DEC-C%'")
        return rows if len(rows) == 6 else []

    statuses = sorted(r["status"] for r in await until(decided, "six declarations decided"))
    assert statuses == ["held"] * 4 + ["routed"] * 2
    assert await balance(scene, "LIC-C") == (Decimal(80), Decimal(0))
    await until(lambda: _files(scene.outbox, "DEC-C*.licences.1.cusres.edi"), "answers")


async def test_only_the_issuer_publishes_amends_or_revokes_a_licence(scene: Scene) -> None:
    trade, port = scene.agencies.endpoint("trade"), scene.agencies.endpoint("port")
    issued = a_licence(scene, "LIC-R", 100)
    await licences.publish(trade, issued)
    await registered(scene, "LIC-R")
    # port, as itself, claims trade issued it; then amends trade's licence in its own name.
    await licences.publish(port, licences.amended(issued, quantity=Decimal(900)))
    await licences.publish(port, licences.amended(issued, quantity=Decimal(900),
                                                  issuing_agency="port"))
    refused = await until(lambda: _refused(scene, 2), "two refusals")
    assert "published by 'port' but issued by 'trade'" in refused[0]["reason"]
    assert "was issued by 'trade': only its issuer amends or revokes it" in refused[1]["reason"]
    assert all(r["broker_user"] == scene.agencies.users["port"] for r in refused)
    dead = scene.gateway.files.exchange.removesuffix(".deliveries") + ".licences.dead"
    assert len(await take_messages(dead, 2)) == 2  # dead-lettered, never applied
    rows = await scene.gateway.fetch("SELECT quantity, amendment, issuing_agency FROM licences")
    assert [tuple(r.values()) for r in rows] == [(Decimal(100), 0, "trade")]
    # trade's own revocation (from the command line) is taken; a declaration citing it is held.
    code = await asyncio.to_thread(main, [
        "--config", str(scene.gateway.files.config_path), "agency", "licence", "trade",
        "--number", "LIC-R", "--holder", IMPORTER, "--kind", "import", "--commodity", "8438",
        "--quantity", "100", "--unit", "KGM", "--valid-from", "2026-01-01",
        "--valid-until", "2026-12-31", "--amendment", "1", "--revoke"])
    assert code == 0
    await registered(scene, "LIC-R", 1)
    await scene.gateway.upload("van-a", "r.edi", declaration("DEC-R1", "LIC-R", 10, "R1"))
    (cusres,) = await until(lambda: _files(scene.outbox, "DEC-R1.*.licences.1.cusres.edi"),
                            "the revoked licence's CUSRES")
    assert "licence LIC-R is revoked" in cusres.read_text("latin-1")
    # An older amendment, even the issuer's, never undoes the revocation; the one held again
    # (a redelivery) is taken once, quietly.
    await licences.publish(trade, issued)
    later = await until(lambda: _refused(scene, 3), "the older amendment refused")
    assert "amendment 0 of licence 'LIC-R' is not newer than amendment 1" in later[2]["reason"]
    held = await scene.gateway.fetch("SELECT body FROM licences WHERE number = 'LIC-R'")
    await licences.publish(trade, Licence.model_validate_json(held[0]["body"]))
    await licences.publish(trade, a_licence(scene, "LIC-S", 5))
    await registered(scene, "LIC-S")
    await asyncio.sleep(1.0)  # the repeat is taken beside LIC-S (another correlation id)
    assert len(await _refused(scene, 3)) == 3
    rows = await scene.gateway.fetch("SELECT status, amendment FROM licences"
                                     " WHERE number = 'LIC-R'")
    assert [tuple(r.values()) for r in rows] == [("revoked", 1)]


async def _refused(scene: Scene, count: int) -> list[Any]:
    rows = await scene.gateway.fetch(
        "SELECT broker_user, reason FROM refused_licences ORDER BY id")
    return rows if len(rows) >= count else []


async def test_a_rejection_or_a_cancellation_gives_the_quantity_back(scene: Scene) -> None:
    def decide(delivery: Delivery) -> Sequence[Answer]:
        declared = delivery.message
        if getattr(declared, "function", None) == "cancellation":
            return [answers.decision(delivery, "cancelled")]
        if delivery.document_reference == "DEC-X1":
            return [answers.rejected(delivery, ["Wrong office"])]
        return [answers.accepted(delivery, "CUS-2")]  # registered, not yet released

    await licences.publish(scene.agencies.endpoint("trade"), a_licence(scene, "LIC-X", 100))
    await registered(scene, "LIC-X")
    async with customs_deciding(scene, decide):
        await scene.gateway.upload("van-a", "x1.edi", declaration("DEC-X1", "LIC-X", 40, "X1"))
        await until(lambda: _states(scene, "restored"), "the rejected one's 40 restored")
        await scene.gateway.upload("van-a", "x2.edi", declaration("DEC-X2", "LIC-X", 30, "X2"))
        await until(lambda: _reserved(scene, Decimal(30)), "30 reserved")
        await scene.gateway.upload("van-a", "x3.edi",
                                   declaration("DEC-X2", "LIC-X", 30, "X3", function="1"))
        await until(lambda: _states(scene, "restored", "restored"), "the cancelled one's 30")
    assert await balance(scene, "LIC-X") == (Decimal(0), Decimal(0))
    events = await scene.gateway.fetch(
        "SELECT kind, detail FROM events WHERE kind = 'licence_restored' ORDER BY id")
    assert ['"rejected"' in e["detail"] for e in events] == [True, False]
    assert '"cancellation"' in events[1]["detail"]


async def _states(scene: Scene, *expected: str) -> bool:
    rows = await scene.gateway.fetch("SELECT state FROM licence_draws ORDER BY message_id")
    return tuple(r["state"] for r in rows) == expected


async def _reserved(scene: Scene, quantity: Decimal) -> bool:
    return await balance(scene, "LIC-X") == (quantity, Decimal(0))


@pytest.fixture
async def xml_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    demo_xml_catalog()  # skips without ../shared; compiles the XSDs once for the process
    async for running in gateway_fixture(
            tmp_path, settings={"xml": json.dumps({"schemas": str(DEMO_REGISTRY)})},
            xml_ids={"van-a": (SAMPLE_DECLARANT,)}):
        yield running


async def test_a_wco_declaration_failing_the_check_is_answered_in_res_dms(
        xml_gateway: Gateway) -> None:
    """DEC-DMS AdditionalDocument TypeCode 911 cites a licence nobody issued."""
    cited = SAMPLE_VALID_DEC.read_bytes().replace(
        b"<TypeCode>861</TypeCode>\n        </AdditionalDocument>",
        b"<TypeCode>861</TypeCode>\n        </AdditionalDocument>\n        <AdditionalDocument>"
        b"<CategoryCode>N</CategoryCode><ID>LIC-NONE</ID><TypeCode>911</TypeCode>"
        b"</AdditionalDocument>", 1)
    assert b"LIC-NONE" in cited
    await xml_gateway.upload("van-a", "declaration.xml", cited)
    outbox = xml_gateway.files.mailbox("van-a") / "outbox"
    (answer,) = await until(lambda: _files(outbox, f"{SAMPLE_REFERENCE}.*.licences.1.res-dms.xml"),
                            "the RES-DMS of the licence check")
    body = answer.read_bytes()
    assert_valid_answer("RES-DMS", body)
    assert b"Item 1: licence LIC-NONE not found" in body, body.decode()
    response = etree.fromstring(body).find(f".//{{{RES_NS}}}Response")
    assert response.findtext(f"{{{RES_NS}}}FunctionCode") == RES_REJECTED  # as licence_failed
    (held,) = await xml_gateway.fetch(
        "SELECT status FROM messages WHERE document_ref = $1", SAMPLE_REFERENCE)
    assert held["status"] == "held"


async def test_a_replacement_takes_the_place_of_what_it_replaces(scene: Scene) -> None:
    """A replacement (BGM 1225 5) of a declaration counts what the declaration it replaces
    holds as available, and gives it back once it passes: 60 KGM declared again as 70 KGM of
    a licence of 100 need 70, not 130.  A replacement asking too much is held, and the one
    before keeps its reservation."""
    await licences.publish(scene.agencies.endpoint("trade"), a_licence(scene, "LIC-X", 100))
    await registered(scene, "LIC-X")
    # Customs registers each, and does not release yet.
    async with customs_deciding(scene, lambda delivery: [answers.accepted(delivery, "CUS-3")]):
        await scene.gateway.upload("van-a", "r1.edi", declaration("DEC-R", "LIC-X", 60, "R1"))
        await until(lambda: _reserved(scene, Decimal(60)), "60 reserved")
        await scene.gateway.upload("van-a", "r2.edi",
                                   declaration("DEC-R", "LIC-X", 70, "R2", function="5"))
        await until(lambda: _states(scene, "restored", "reserved"), "the replaced 60 back")
        assert await _reserved(scene, Decimal(70))
        await scene.gateway.upload("van-a", "r3.edi",
                                   declaration("DEC-R", "LIC-X", 150, "R3", function="5"))
        await scene.gateway.answers("van-a", "r3.edi")
        await until(lambda: _held(scene, "R3"), "the third held by the licence check")
    assert await _states(scene, "restored", "reserved")
    assert await balance(scene, "LIC-X") == (Decimal(70), Decimal(0))
    (restored,) = await scene.gateway.fetch(
        "SELECT detail FROM events WHERE kind = 'licence_restored'")
    assert '"replacement"' in restored["detail"]
    (failed,) = await scene.gateway.fetch(
        "SELECT detail FROM events WHERE kind = 'licence_check_failed'")
    assert "Licence LIC-X: 100 KGM left, 150 needed" in failed["detail"]


async def test_a_replacement_citing_no_licence_gives_back_what_it_replaces(
        scene: Scene) -> None:
    """The trader declares the goods again without the licence (say the goods need none after
    all): the replacement takes the original's place, so the 60 KGM it reserved are given back
    (before, they stayed reserved for good: customs answers the replacement, not the original)."""
    await licences.publish(scene.agencies.endpoint("trade"), a_licence(scene, "LIC-X", 100))
    await registered(scene, "LIC-X")
    async with customs_deciding(scene, lambda delivery: [answers.accepted(delivery, "CUS-4")]):
        await scene.gateway.upload("van-a", "n1.edi", declaration("DEC-N", "LIC-X", 60, "N1"))
        await until(lambda: _reserved(scene, Decimal(60)), "60 reserved")
        await scene.gateway.upload("van-a", "n2.edi",
                                   declaration("DEC-N", None, 60, "N2", function="5"))
        await scene.gateway.answers("van-a", "n2.edi")
        await until(lambda: _states(scene, "restored"), "the replaced 60 back")
    assert await balance(scene, "LIC-X") == (Decimal(0), Decimal(0))
    (restored,) = await scene.gateway.fetch(
        "SELECT detail FROM events WHERE kind = 'licence_restored'")
    assert '"replacement"' in restored["detail"]


async def test_a_replacement_from_another_partner_gives_back_nothing(scene: Scene) -> None:
    """Rule 5: van-b declaring under van-a's declaration number replaces nothing of van-a's."""
    await licences.publish(scene.agencies.endpoint("trade"), a_licence(scene, "LIC-X", 100))
    await registered(scene, "LIC-X")
    async with customs_deciding(scene, lambda delivery: [answers.accepted(delivery, "CUS-5")]):
        await scene.gateway.upload("van-a", "o1.edi", declaration("DEC-O", "LIC-X", 60, "O1"))
        await until(lambda: _reserved(scene, Decimal(60)), "60 reserved")
        await scene.gateway.upload("van-b", "o2.edi", declaration(
            "DEC-O", "LIC-X", 30, "O2", function="5", sender="VANB"))
        await scene.gateway.answers("van-b", "o2.edi")
        await until(lambda: _states(scene, "reserved", "reserved"), "both reserved")
    assert await balance(scene, "LIC-X") == (Decimal(90), Decimal(0))
    assert await scene.gateway.fetch(
        "SELECT detail FROM events WHERE kind = 'licence_restored'") == []


async def _held(scene: Scene, reference: str) -> bool:
    rows = await scene.gateway.fetch(
        "SELECT m.status FROM messages m JOIN interchanges i ON i.id = m.interchange_id"
        " WHERE i.control_ref = $1", reference)
    return bool(rows) and rows[0]["status"] == "held"
