"""Hostile, buggy and unlucky agencies answering a real gateway (RabbitMQ, PostgreSQL, SFTP):
each answer is taken once, in order, as its agency's own and about the declaration it
names, or refused, recorded and forwarded nowhere; no answer ever holds back the others
(DESIGN rules 2, 5 and 6).  Each agency publishes as its own broker user."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pamqp.encode
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.app import answers as answer_desk
from gateway.app.demo import ensure_pki
from gateway.config.load import load_config
from gateway.security.pki import Issued, issue_signing_certificate
from gateway.store.answers import KEPT_BODY_BYTES
from gateway.transports.mailbox import SIGNATURE_SUFFIX
from tests.support.agencies import (
    AgencyUsers,
    agency_settings,
    provisioned_agencies,
    unique_users,
)
from tests.support.edifact import cusdec, cusdec_message, interchange
from tests.support.harness import (
    AMQP_URL,
    DEMO_AGENCIES,
    Files,
    Gateway,
    create_database,
    database_url,
    delete_topology,
    drop_database,
    start_gateway,
    write_files,
)
from tests.support.proxy import TcpProxy

WAIT = 30.0


@dataclass
class Answering:
    """A running gateway and its agencies' broker users."""

    gateway: Gateway
    agencies: AgencyUsers

    @property
    def files(self) -> Files:
        return self.gateway.files

    @property
    def exchange(self) -> str:
        return self.agencies.config.settings.amqp.responses_exchange

    async def publish(self, code: str, body: bytes | dict[str, Any], *,
                      correlation_id: str | None, message_id: str | None = None,
                      type: str | None = None, user_id: str | None = "own",
                      url: str | None = None, headers: dict[str, Any] | None = None) -> None:
        """Publish ``body`` to the responses exchange, with routing key ``code``, on a
        connection of agency ``code``'s own (or ``url``), with confirms.  ``user_id`` "own" is
        the agency's broker user."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        if type is None and isinstance(body, dict):
            type = body.get("kind")
        connection = await aio_pika.connect(url or self.agencies.url(code))
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.exchange, ensure=False)
            await exchange.publish(aio_pika.Message(
                data, message_id=message_id or f"{correlation_id}:{uuid.uuid4().hex[:8]}",
                correlation_id=correlation_id, type=type,
                user_id=self.agencies.users[code] if user_id == "own" else user_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT, headers=headers),
                routing_key=code)
        finally:
            await connection.close()

    async def rows(self, sql: str, *args: Any, count: int = 1) -> list[Any]:
        """The rows of ``sql`` once there are ``count``."""
        deadline = time.monotonic() + WAIT
        while True:
            rows = await self.gateway.fetch(sql, *args)
            if len(rows) >= count:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(rows)} of {count} rows after {WAIT}s: {sql}")
            await asyncio.sleep(0.05)

    async def taken(self, count: int = 1) -> list[Any]:
        """The answers taken, once ``count`` are, and what they caused is written."""
        rows = await self.rows("SELECT * FROM agency_answers ORDER BY id", count=count)
        await self.gateway.settled()
        return rows

    async def refused(self, count: int = 1) -> list[Any]:
        return await self.rows("SELECT * FROM refused_answers ORDER BY id", count=count)

    def outbox(self, partner: str = "van-a") -> dict[str, bytes]:
        """The partner's answers to declarations (CUSRES, APERAK) by file name."""
        folder = self.files.mailbox(partner) / "outbox"
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
                if p.name.endswith((".cusres.edi", ".aperak.edi"))}

    async def dead_letters(self) -> int:
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(
                self.agencies.config.settings.amqp.responses_queue + ".dead", passive=True)
            count: int = queue.declaration_result.message_count
            return count
        finally:
            await connection.close()


#: The agencies that answer in these tests.
DECIDING = ("customs", "quarantine")


@contextlib.asynccontextmanager
async def answering_gateway(root: Path, **settings: Any) -> AsyncIterator[Answering]:
    """A gateway whose deciding agencies (customs and quarantine: the others never answer in
    these tests) have broker users of their own (``settings`` go to ``write_files``).  Each
    user costs several rabbitmqctl calls of about 0.8 s, so no more are made than answer."""
    database = await create_database()
    users = unique_users(DEMO_AGENCIES)
    files = write_files(root, database, agency_settings=agency_settings(users), **settings)
    deciding = {code: users[code] for code in DECIDING}
    try:
        async with provisioned_agencies(load_config(files.config_path, environ={}),
                                        deciding) as agencies:
            gateway = await start_gateway(files)
            try:
                yield Answering(gateway, agencies)
            finally:
                if gateway.task is not None and not gateway.task.done():
                    await gateway.stop()
    finally:
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


@pytest.fixture
async def answering(tmp_path: Path) -> AsyncIterator[Answering]:
    async with answering_gateway(tmp_path) as running:
        yield running


Delivered = dict[str, Any]


async def declare(answering: Answering, count: int = 1, *, name: str = "fish.edi",
                  reference: str = "ICR0001", prefix: str = "DEC-"
                  ) -> list[dict[str, Delivered]]:
    """Upload one interchange of ``count`` CUSDECs (HS 03: customs and quarantine decide on
    each); per declaration, what each agency received: its message id and canonical body."""
    gateway = answering.gateway
    await gateway.upload("van-a", name, interchange(
        [cusdec_message(reference=str(n), declaration=f"{prefix}{n}")
         for n in range(1, count + 1)], sender="VANA", control_reference=reference))
    await gateway.answers("van-a", name)
    received: dict[str, list[Delivered]] = {}
    for agency in ("customs", "quarantine"):
        seen = len(gateway.seen.get(agency, []))
        messages = (await gateway.queue(agency, seen + count))[seen:]
        received[agency] = [{"message_id": m.message_id, "body": json.loads(m.body)}
                            for m in messages]
    return [{agency: received[agency][n] for agency in received} for n in range(count)]


def decision(delivered: Delivered, agency: str, value: str = "released",
             **fields: Any) -> dict[str, Any]:
    """A CustomsResponse to ``delivered``, as the agency SDK writes one."""
    source = delivered["body"]["source"]
    answer: dict[str, Any] = {
        "kind": "CustomsResponse", "source": source, "agency": agency, "decision": value,
        "decided_at": dt.datetime.now(dt.UTC).isoformat(),
        "answers": {"document_reference": delivered["body"]["declaration_number"],
                    "interchange_reference": source["interchange_reference"],
                    "message_reference": source["message_reference"],
                    "correlation_id": delivered["message_id"]}}
    answer.update(fields)
    return answer


async def answer(answering: Answering, delivered: dict[str, Delivered], agency: str,
                 value: str = "released", **publish: Any) -> None:
    await answering.publish(agency, decision(delivered[agency], agency, value),
                            correlation_id=delivered[agency]["message_id"], **publish)


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Answers the gateway failed on (a bug of ours, retried, then dead-lettered)."""
    return [r.msg for r in caplog.records if r.msg in ("answer_failed", "answer_dead_lettered")]


# Properties that are not UTF-8.


#: A header name the test's client writes as bytes that are not UTF-8 (``undecodable``).
UNDECODABLE_HEADER = "x-undecodable-header"


@contextlib.contextmanager
def undecodable() -> Iterator[None]:
    """While inside, the test's AMQP client writes a short string's U+DC80..U+DCFF as the
    bytes 0x80..0xFF (surrogateescape), and UNDECODABLE_HEADER as ``x-\\xe9``: what a client
    in another language sends, and RabbitMQ passes on unchecked."""
    original = pamqp.encode._string

    def raw(encoder: Any, value: str) -> bytes:
        data = (b"x-\xe9" if value == UNDECODABLE_HEADER
                else value.encode("utf-8", "surrogateescape"))
        return bytes(encoder.pack(len(data))) + data

    pamqp.encode._string = raw
    try:
        yield
    finally:
        pamqp.encode._string = original


async def test_an_answer_whose_properties_are_not_utf8_holds_back_no_other(
        answering: Answering) -> None:
    """Before, pamqp raised reading such a property in the connection's frame reader: the
    gateway's connection dropped, the answer came back first after every reconnect, and no
    agency's answer got through."""
    (one, two) = await declare(answering, 2)
    with undecodable():
        await answer(answering, one, "customs", message_id="caf\udce9")
        await answer(answering, two, "customs", message_id="plain",
                     headers={UNDECODABLE_HEADER: "x"})
    await answer(answering, one, "quarantine")
    taken = await answering.taken(3)
    assert sorted((r["agency"], r["answer_id"]) for r in taken) == sorted([
        ("customs", "caf\ufffd"), ("customs", "plain"),
        ("quarantine", taken[-1]["answer_id"])])
    (row,) = await answering.gateway.fetch(
        "SELECT clearance FROM messages WHERE document_ref = 'DEC-1'")
    assert row["clearance"] == "released"


# Answers to one declaration at once.


async def test_agencies_answering_one_declaration_at_once_wait_for_each_other(
        answering: Answering, caplog: pytest.LogCaptureFixture) -> None:
    """Customs and quarantine release the declaration at the same moment.  Before, each
    answer's inserts locked the message row FOR KEY SHARE and its clearance update then
    wanted FOR UPDATE: PostgreSQL found a deadlock, one answer failed ("a bug of ours") and,
    failing three times under load, was dead-lettered, its decision lost."""
    (delivered,) = await declare(answering)
    (message,) = await answering.gateway.fetch("SELECT id FROM messages")
    # Hold the message row (as a long transaction of anyone's would) until both answers are
    # in their transactions, so that they meet there whatever the timing.
    holder = await asyncpg.connect(database_url(answering.files.database))
    try:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("SELECT 1 FROM messages WHERE id = $1 FOR NO KEY UPDATE",
                             message["id"])
        await answer(answering, delivered, "customs")
        await answer(answering, delivered, "quarantine")
        await answering.rows("SELECT pid FROM pg_stat_activity WHERE datname ="
                             " current_database() AND wait_event_type = 'Lock'", count=2)
        await hold.rollback()
    finally:
        await holder.close()
    await answering.taken(2)
    assert failures(caplog) == []
    (row,) = await answering.gateway.fetch("SELECT clearance FROM messages")
    assert row["clearance"] == "released"


async def test_each_agencys_answers_are_decided_in_the_order_it_published_them(
        answering: Answering, caplog: pytest.LogCaptureFixture) -> None:
    """Each agency registers, then releases, each of 20 declarations.  Before, the answers
    in hand were taken concurrently and a "released" could be taken before the "accepted"
    published ahead of it: the agency stood at "accepted" and the declaration was never
    released (13 of 20 here)."""
    count = 20
    declarations = await declare(answering, count)
    connections = {a: await aio_pika.connect(answering.agencies.url(a))
                   for a in ("customs", "quarantine")}
    try:
        for agency, connection in connections.items():
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(answering.exchange, ensure=False)
            for delivered in declarations:
                for value in ("accepted", "released"):
                    mine = delivered[agency]
                    await exchange.publish(aio_pika.Message(
                        json.dumps(decision(mine, agency, value)).encode(),
                        message_id=f"{mine['message_id']}:{value}",
                        correlation_id=mine["message_id"], type="CustomsResponse",
                        user_id=answering.agencies.users[agency]), routing_key=agency)
    finally:
        for connection in connections.values():
            await connection.close()
    await answering.taken(4 * count)
    assert failures(caplog) == []
    states = await answering.gateway.fetch("SELECT DISTINCT state FROM agency_states")
    assert [r["state"] for r in states] == ["released"]
    clearances = await answering.gateway.fetch("SELECT DISTINCT clearance FROM messages")
    assert [r["clearance"] for r in clearances] == ["released"]
    outbox = answering.outbox()
    assert b"GIS+1'" in outbox["DEC-7.1.7.quarantine.1.cusres.edi"]  # accepted first
    assert b"GIS+4'" in outbox["DEC-7.1.7.quarantine.2.cusres.edi"]  # then released


# Answers that are not what they say.


async def test_an_answer_id_used_before_for_another_answer_is_refused_not_dropped(
        answering: Answering) -> None:
    """An agency whose answers all carry message_id "1" (a counter that restarts, say).
    Before, its answer to the second declaration was taken for a repeat of the first:
    acknowledged, never decided, and nobody told."""
    (one, two) = await declare(answering, 2)
    await answer(answering, one, "customs", message_id="1")
    await answering.taken(1)
    # The same decision again (published again, or decided again after a crash): a repeat.
    await answer(answering, one, "customs", message_id="1")
    # Another decision, or one about another declaration: refused.
    await answer(answering, one, "customs", "rejected", message_id="1")
    await answer(answering, two, "customs", message_id="1")
    refusals = await answering.refused(2)
    for refusal in refusals:
        assert "message_id '1' is that of another answer 'customs' gave before" in \
            refusal["reason"]
    await answering.gateway.settled()
    assert len(await answering.gateway.fetch("SELECT 1 FROM agency_answers")) == 1
    assert list(answering.outbox()) == ["DEC-1.1.1.customs.1.cusres.edi"]
    events = await answering.gateway.fetch(
        "SELECT detail FROM events WHERE kind = 'answer_refused'")
    assert len(events) == 2  # the declarations' history says so
    assert all("another answer" in json.loads(e["detail"])["reason"] for e in events)


async def test_an_answer_naming_another_declaration_is_refused(answering: Answering) -> None:
    """Customs answers the delivery of DEC-1 with the references of DEC-2.  Before, the
    partner found, under DEC-1's name, a CUSRES releasing DEC-2 (RFF+ABT:DEC-2)."""
    (one,) = await declare(answering, name="one.edi", reference="ONE")
    (two,) = await declare(answering, name="two.edi", reference="TWO")
    for field, value in (("document_reference", "DEC-2"), ("interchange_reference", "TWO")):
        wrong = decision(one["customs"], "customs")
        wrong["answers"][field] = value
        await answering.publish("customs", wrong, correlation_id=one["customs"]["message_id"])
    refusals = await answering.refused(2)
    assert [r["reason"] for r in refusals] == [
        "answers.document_reference 'DEC-2' is not 'DEC-1', that of the message its "
        "correlation_id names",
        "answers.interchange_reference 'TWO' is not 'ONE', that of the message its "
        "correlation_id names"]
    # What the agency leaves out is written as the gateway delivered it.
    bare = decision(two["customs"], "customs")
    bare["answers"] = {"document_reference": "DEC-1"}
    await answering.publish("customs", bare, correlation_id=two["customs"]["message_id"])
    await answering.taken()
    (cusres,) = answering.outbox().values()
    assert b"RFF+ABT:DEC-1'RFF+AGO:1'RFF+ALL:TWO'" in cusres.replace(b"\n", b"")


async def test_a_huge_answer_is_refused_and_only_its_start_kept(answering: Answering) -> None:
    """RabbitMQ takes 128 MiB a message.  Before, a refused answer was kept whole: a flood of
    them filled the database."""
    (delivered,) = await declare(answering)
    size = 3 * KEPT_BODY_BYTES
    await answering.publish("customs", b"{" * size, type="CustomsResponse",
                            correlation_id=delivered["customs"]["message_id"])
    (refusal,) = await answering.refused()
    assert refusal["reason"].startswith(f"{size} bytes: an answer is at most")
    assert len(refusal["body"]) == KEPT_BODY_BYTES


async def test_the_gateways_own_user_never_answers_for_an_agency(
        answering: Answering, monkeypatch: pytest.MonkeyPatch) -> None:
    """agencies.yaml is edited while the gateway runs, giving customs the gateway's own broker
    user.  Before, the answer desk read it again without the check the start makes, and took
    answers the gateway's own account published as customs'."""
    monkeypatch.setattr(answer_desk, "REREAD_AGENCIES_SECONDS", 0.0)
    (delivered,) = await declare(answering)
    path = answering.files.root / "agencies.yaml"
    customs = answering.agencies.users["customs"]
    path.write_text(path.read_text().replace(f"broker_user: {customs}\n",
                                             "broker_user: guest\n"))
    await answering.publish("customs", decision(delivered["customs"], "customs"),
                            correlation_id=delivered["customs"]["message_id"],
                            url=AMQP_URL, user_id="guest")
    (refusal,) = await answering.refused()
    assert refusal["reason"] == "broker user 'guest' is no agency's"
    assert await answering.gateway.fetch("SELECT 1 FROM agency_answers") == []


# What held up: kept as tests.


async def test_refused_answers_are_recorded_and_hold_back_no_good_one(
        answering: Answering, caplog: pytest.LogCaptureFixture) -> None:
    (delivered,) = await declare(answering)
    customs, quarantine = delivered["customs"], delivered["quarantine"]
    good = decision(customs, "customs")

    def naming(correlation_id: str) -> dict[str, Any]:
        return {**good, "answers": {**good["answers"], "correlation_id": correlation_id}}

    hostile: list[tuple[str, dict[str, Any], str]] = [
        ("quarantine", {"body": decision(customs, "quarantine"),
                        "correlation_id": customs["message_id"]}, "never delivered"),
        ("quarantine", {"body": good, "correlation_id": customs["message_id"]},
         "claims to be 'customs'"),
        ("customs", {"body": good, "correlation_id": customs["message_id"], "user_id": None},
         "no user_id property"),
        ("customs", {"body": good, "correlation_id": customs["message_id"],
                     "url": AMQP_URL, "user_id": "guest"}, "'guest' is no agency's"),
        ("customs", {"body": good, "correlation_id": None}, "no correlation_id"),
        ("customs", {"body": naming("x' OR '1'='1"), "correlation_id": "x' OR '1'='1"},
         "never delivered"),
        ("customs", {"body": naming("\x00" * 200), "correlation_id": "\x00" * 200},
         "never delivered"),
        ("customs", {"body": good, "correlation_id": "x' OR '1'='1"},
         "is not the correlation_id"),
        ("customs", {"body": good, "correlation_id": customs["message_id"],
                     "type": "ApplicationError"}, "its type property says"),
        ("customs", {"body": b"[" * 100_000, "correlation_id": customs["message_id"]},
         "recursion limit"),
        ("customs", {"body": b"\xff\x00", "correlation_id": customs["message_id"]},
         "Invalid JSON: expected value"),
        ("customs", {"body": decision(customs, "customs", reasons=[{"text": "x" * 71}]),
                     "correlation_id": customs["message_id"]}, "longer than an..70"),
        ("customs", {"body": decision(customs, "customs", agency_reference="A\x00B"),
                     "correlation_id": customs["message_id"]}, "holds U+0000"),
    ] * 3
    for agency, publish, _ in hostile:
        await answering.publish(agency, **publish)
    await answer(answering, delivered, "quarantine")
    refusals = await answering.refused(len(hostile))
    expected = sorted(reason for _, _, reason in hostile)
    # Answers are taken concurrently: the refusals are in no particular order.
    assert sorted(next((r for r in expected if r in refusal["reason"]), refusal["reason"])
                  for refusal in refusals) == expected
    (taken,) = await answering.taken()
    assert (taken["agency"], taken["decision"]) == ("quarantine", "released")
    assert list(answering.outbox()) == ["DEC-1.1.1.quarantine.1.cusres.edi"]
    assert await answering.dead_letters() == len(hostile)
    assert failures(caplog) == []
    assert quarantine["message_id"] == taken["answer_id"].rsplit(":", 1)[0]


@pytest.fixture
async def proxied_database(tmp_path: Path) -> AsyncIterator[tuple[Answering, TcpProxy]]:
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    database = await create_database()
    files = write_files(tmp_path, database, agency_settings=agency_settings(
        unique_users(DEMO_AGENCIES)), database_url_override=database_url(database).replace(
            ":5432/", f":{proxy.port}/"))
    try:
        async with provisioned_agencies(load_config(files.config_path, environ={})) as users:
            gateway = await start_gateway(files)
            try:
                yield Answering(gateway, users), proxy
            finally:
                if proxy.port and proxy._server is None:
                    await proxy.restore()
                await gateway.stop()
    finally:
        await proxy.close()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def lost_links(caplog: pytest.LogCaptureFixture, count: int) -> None:
    """Wait until the gateway has seen ``count`` of its broker connections break."""
    deadline = time.monotonic() + WAIT
    while sum(r.name == "aiormq.connection" and "exited abnormally" in str(r.msg)
              for r in caplog.records) < count:
        assert time.monotonic() < deadline, "the gateway never saw its connections break"
        await asyncio.sleep(0.05)


async def test_an_answer_being_refused_when_the_broker_link_breaks_is_recorded_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The link breaks while the refusal waits for the database: the handler is cancelled
    with its channel (its transaction rolled back), the answer comes again, and is recorded,
    alarmed and written in the declaration's history once."""
    proxy = await TcpProxy("127.0.0.1", 5672).start()
    try:
        async with answering_gateway(tmp_path, amqp_url=AMQP_URL.replace(
                ":5672/", f":{proxy.port}/")) as answering:
            (delivered,) = await declare(answering)
            wrong = decision(delivered["customs"], "customs", reasons=[{"text": "x" * 71}])
            holder = await asyncpg.connect(database_url(answering.files.database))
            try:
                hold = holder.transaction()
                await hold.start()
                await holder.execute("LOCK TABLE refused_answers IN SHARE MODE")
                await answering.publish("customs", wrong,
                                        correlation_id=delivered["customs"]["message_id"])
                await answering.rows("SELECT pid FROM pg_stat_activity WHERE datname ="
                                     " current_database() AND wait_event_type = 'Lock'")
                await proxy.cut()
                await lost_links(caplog, 2)  # the publisher's and the answers' connections
                await proxy.restore()
                await hold.rollback()
            finally:
                await holder.close()
            await answering.refused()
            deadline = time.monotonic() + WAIT
            while await answering.dead_letters() == 0:  # refused and settled, once
                assert time.monotonic() < deadline, "the refused answer was never settled"
                await asyncio.sleep(0.05)
            assert len(await answering.gateway.fetch("SELECT 1 FROM refused_answers")) == 1
            assert len(await answering.gateway.fetch(
                "SELECT 1 FROM events WHERE kind = 'answer_refused'")) == 1
    finally:
        await proxy.close()


async def test_answers_wait_while_the_database_is_cut_and_none_is_dead_lettered(
        proxied_database: tuple[Answering, TcpProxy],
        caplog: pytest.LogCaptureFixture) -> None:
    """Held while PostgreSQL is unreachable, never returned to the queue (its delivery limit
    would dead-letter good answers), and taken once it is back."""
    answering, proxy = proxied_database
    (delivered,) = await declare(answering)
    await proxy.cut()
    await answer(answering, delivered, "customs")
    await answer(answering, delivered, "quarantine")
    deadline = time.monotonic() + WAIT
    while sum(r.msg == "answer_waiting" for r in caplog.records) < 4:
        assert time.monotonic() < deadline, "the answers never waited for the database"
        await asyncio.sleep(0.05)
    await proxy.restore()
    assert len(await answering.taken(2)) == 2
    (row,) = await answering.gateway.fetch("SELECT clearance FROM messages")
    assert row["clearance"] == "released"
    assert await answering.dead_letters() == 0
    assert failures(caplog) == []


async def test_a_signing_certificate_expiring_while_running_stops_the_answers_unsigned(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No answer is written without its signature: the mailbox relay waits, with an alarm,
    and nothing is parked."""
    database = await create_database()
    files = write_files(tmp_path, database)
    pki = tmp_path / "pki"
    ensure_pki(pki)
    ca = Issued(x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes()),
                private_key((pki / "ca.key").read_bytes()))
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    # Valid from (now - 5 minutes) for a day: from a day before the expiry.
    short = issue_signing_certificate(ca, "short-lived", days=1, now=expiry - dt.timedelta(
        days=1) + dt.timedelta(minutes=5))
    (pki / "gateway.crt").write_bytes(short.certificate_pem)
    (pki / "gateway.key").write_bytes(short.key_pem)
    gateway = await start_gateway(files)
    try:
        # The precondition: the certificate has expired (the clock, not an assertion).
        await asyncio.sleep((expiry - dt.datetime.now(dt.UTC)).total_seconds() + 0.2)
        await gateway.upload("van-a", "late.edi", cusdec(sender="VANA"))
        alarms = []
        deadline = time.monotonic() + WAIT
        while len(alarms) < 2:
            assert time.monotonic() < deadline, "no alarm"
            await asyncio.sleep(0.05)
            alarms = [r for r in caplog.records if r.msg == "dispatch_failed"
                      and "no certificate is valid" in r.__dict__["fields"]["error"]]
        assert list((files.mailbox("van-a") / "outbox").iterdir()) == []
        (row,) = await gateway.fetch("SELECT dispatched_at, parked_at FROM outbox"
                                     " WHERE channel = 'mailbox'")
        assert (row["dispatched_at"], row["parked_at"]) == (None, None)
    finally:
        await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


def private_key(pem: bytes) -> Any:
    return serialization.load_pem_private_key(pem, None)


async def test_every_answer_is_signed_and_its_name_fits_beside_its_signature(
        answering: Answering) -> None:
    """A declaration number as long as CUSDEC allows, with characters no file name keeps."""
    gateway = answering.gateway
    number = "A/B\\C*D<E>F|G\"H" + "9" * 20  # 35 characters, an..35
    await gateway.upload("van-a", "long.edi", interchange(
        [cusdec_message(declaration=number)], sender="VANA", control_reference="LONG"))
    await gateway.answers("van-a", "long.edi")
    received = (await gateway.queue("customs", 1))[-1]
    delivered = {"customs": {"message_id": received.message_id,
                             "body": json.loads(received.body)}}
    await answer(answering, delivered, "customs")
    await answering.taken()
    outbox = gateway.files.mailbox("van-a") / "outbox"
    names = sorted(p.name for p in outbox.iterdir())
    answers = [n for n in names if not n.endswith(SIGNATURE_SUFFIX)]
    assert len(answers) == 2
    for name in answers:
        assert f"{name}{SIGNATURE_SUFFIX}" in names
        assert len(f"{name}{SIGNATURE_SUFFIX}".encode()) <= 255
    signed = await gateway.fetch("SELECT file_name FROM signed_answers")
    assert sorted(r["file_name"] for r in signed) == answers

