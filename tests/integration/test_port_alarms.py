"""Cargo trail and port alarms end to end (docs/port-alarms.md), on the real gateway,
PostgreSQL and RabbitMQ: container events past a limit raise an overtime alarm, a container
no declaration covers raises an illegal-storage alarm and one a CUSDEC's EQD covers does not;
each arrives on a queue bound to the alarms exchange, and a restart raises none twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest

from tests.support.console import Browser, console_gateway
from tests.support.containers import EVENTS, container_event, container_events
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import (
    AMQP_URL,
    DEMO_AGENCIES,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    start_gateway,
    take_messages,
    write_files,
)
from tests.support.proxy import TcpProxy

COVERED, LEFT, LATE = "MSCU1234565", "TGHU7654321", "HMMU1111118"
LIMIT_SECONDS = 3


@dataclass
class Port:
    gateway: Gateway
    queue: str


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[Port]:
    tag = uuid.uuid4().hex[:10]
    exchange, queue = f"test.{tag}.alarms", f"test.{tag}.alarms.watch"
    (tmp_path / "port-alarms.yaml").write_text(
        f"exchange: {exchange}\ncheck_seconds: 0.2\n"
        "overtime:\n  - name: discharge-to-gate-out\n    from: {event: discharged}\n"
        f"    to: {{event: gate_out}}\n    within_seconds: {LIMIT_SECONDS}\n"
        f"illegal_storage:\n  within_seconds: {LIMIT_SECONDS}\n")
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    bound = await channel.declare_queue(queue, durable=True)
    await bound.bind(await channel.declare_exchange(
        exchange, aio_pika.ExchangeType.TOPIC, durable=True), "#")
    database = await create_database()
    files = write_files(tmp_path, database, settings={"port_alarms": "port-alarms.yaml"})
    gateway = await start_gateway(files)
    holder = Port(gateway, queue)
    try:
        yield holder
    finally:
        if holder.gateway.task is not None and not holder.gateway.task.done():
            await holder.gateway.stop()
        await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)
        await connection.close()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def send(gateway: Gateway, name: str, data: bytes) -> None:
    await gateway.upload("van-a", name, data)
    await gateway.answers("van-a", name)


def started_line(records: list[logging.LogRecord]) -> str:
    (started,) = [r for r in records if r.getMessage() == "started"]
    said: str = getattr(started, "fields", {})["port_alarms"]
    return said


async def test_without_a_port_alarms_file_the_started_line_says_it_is_off(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    await gateway.stop()
    again = await start_gateway(gateway.files)
    try:
        assert started_line(caplog.records) == "off (no port_alarms in gateway.yaml)"
        await send(again, "discharged.edi", container_events(
            "discharged", (LEFT,), dt.datetime.now(dt.UTC), control_reference="DIS0"))
        assert await again.fetch("SELECT 1 FROM cargo_trail_cursor WHERE message_id > 0"
                                 " UNION ALL SELECT 1 FROM cargo_trail") == []
    finally:
        await again.stop()


async def test_overtime_and_illegal_storage_alarms_once_each_across_a_restart(
        port: Port, caplog: pytest.LogCaptureFixture) -> None:
    gateway = port.gateway
    await send(gateway, "declaration.edi", interchange([cusdec_message(
        declaration="DEC-BOX", extra_heading=(f"EQD+CN+{COVERED}",))],
        sender="VANA", control_reference="DECBOX"))
    now = dt.datetime.now(dt.UTC)
    await send(gateway, "discharged.edi", container_events(
        "discharged", (COVERED, LEFT), now, control_reference="DIS1"))
    await send(gateway, "out.edi", container_events(
        "gate_out", (COVERED,), now, control_reference="OUT1"))
    # LATE was discharged 20 s ago and gated out now, both reported at once: over the limit
    # although it did leave (an end read with its start closes the clock late)
    await send(gateway, "late.edi", interchange([
        container_event("discharged", (LATE,), now - dt.timedelta(seconds=20),
                        reference="DIS3"),
        container_event("gate_out", (LATE,), now, reference="OUT3", message_reference="2")],
        sender="VANA", control_reference="LATE3"))

    got = await take_messages(port.queue, 5, seconds=LIMIT_SECONDS + 12)
    alarms = {(a["container"], a["alarm"]): a for a in (json.loads(m.body) for m in got)}
    assert len(got) == 4, sorted(alarms)
    assert sorted(alarms) == [(LATE, "illegal_storage"), (LATE, "overtime"),
                              (LEFT, "illegal_storage"), (LEFT, "overtime")]
    late, left = alarms[LATE, "overtime"], alarms[LEFT, "overtime"]
    assert late["code"] == left["code"] == "GW-A016" and late["kind"] == "PortAlarm"
    assert dt.datetime.fromisoformat(late["ended_at"]) - dt.datetime.fromisoformat(
        late["started_at"]) == dt.timedelta(seconds=20)
    assert left["ended_at"] is None and left["node"] == "TWKHH"
    assert left["rule"] == "discharge-to-gate-out" and left["limit_seconds"] == LIMIT_SECONDS
    assert alarms[LEFT, "illegal_storage"]["code"] == "GW-A017"
    messages = {m.message_id: m for m in got}
    assert messages[f"port-alarm-{left['alarm_id']}"].routing_key == \
        "overtime.discharge-to-gate-out"
    (trail,) = await gateway.fetch("SELECT count(*) AS n FROM cargo_trail")
    assert trail["n"] == 5

    await gateway.stop()  # a restart reads on from its cursor: no step, no alarm again
    caplog.set_level(logging.INFO, logger="gateway")
    port.gateway = gateway = await start_gateway(gateway.files)
    assert started_line(caplog.records) == (
        "on: 1 overtime rule(s), illegal storage within 3 s, exchange "
        f"{port.gateway.files.root.joinpath('port-alarms.yaml').read_text().split()[1]}")
    await send(gateway, "out-late.edi", container_events(
        "gate_out", (LEFT,), dt.datetime.now(dt.UTC), control_reference="OUT2"))
    assert await take_messages(port.queue, 1, seconds=2) == []
    rows = await gateway.fetch(
        "SELECT count(*) AS n, count(published_at) AS published FROM port_alarms")
    assert (rows[0]["n"], rows[0]["published"]) == (4, 4)
    (trail,) = await gateway.fetch("SELECT count(*) AS n FROM cargo_trail")
    assert trail["n"] == 6  # the new gate out only
    (cursor,) = await gateway.fetch("SELECT message_id FROM cargo_trail_cursor")
    (last,) = await gateway.fetch("SELECT max(id) AS id FROM messages")
    assert cursor["message_id"] == last["id"]


@pytest.fixture
async def console_port(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway with the console and port alarms (the gateway declares the exchange)."""
    exchange = f"test.{uuid.uuid4().hex[:10]}.alarms"
    (tmp_path / "port-alarms.yaml").write_text(
        f"exchange: {exchange}\ncheck_seconds: 0.2\n"
        "overtime:\n  - name: discharge-to-gate-out\n    from: {event: discharged}\n"
        f"    to: {{event: gate_out}}\n    within_seconds: {LIMIT_SECONDS}\n")
    try:
        async for running in console_gateway(tmp_path, port_alarms="port-alarms.yaml"):
            yield running
    finally:
        connection = await aio_pika.connect(AMQP_URL)
        await (await connection.channel()).exchange_delete(exchange)
        await connection.close()


async def first_alarm(gateway: Gateway, published: bool = True) -> int:
    """The first alarm stored (and, with ``published``, confirmed by RabbitMQ)."""
    async with asyncio.timeout(30):
        while True:
            rows = await gateway.fetch("SELECT id FROM port_alarms WHERE published_at IS NOT"
                                       " NULL OR NOT $1 ORDER BY id", published)
            if rows:
                return int(rows[0]["id"])
            await asyncio.sleep(0.1)


async def test_an_operator_acknowledges_an_alarm_once_on_the_console(
        console_port: Gateway) -> None:
    gateway = console_port
    await send(gateway, "discharged.edi", container_events(
        "discharged", (LEFT,), dt.datetime.now(dt.UTC) - dt.timedelta(seconds=20),
        control_reference="DIS9"))
    alarm = str(await first_alarm(gateway))
    assert gateway.running is not None and gateway.running.console_port is not None
    base = f"http://127.0.0.1:{gateway.running.console_port}"
    viewer, operator = Browser(base), Browser(base)
    try:
        assert (await viewer.log_in("vera"))[0] == 303
        status, page, _ = await viewer.get("/port-alarms")
        assert status == 200 and LEFT in page and "GW-A016" in page
        assert "Acknowledge</button>" not in page  # a viewer may not
        assert (await operator.log_in("otto"))[0] == 303
        token = await operator.token("/port-alarms")
        status, page, _ = await operator.post("/port-alarms/acknowledge", {"alarm": alarm},
                                              token=token)
        assert status == 200 and f"Port alarm {alarm} acknowledged." in html.unescape(page)
        assert LEFT not in page  # no longer open
        status, page, _ = await operator.post("/port-alarms/acknowledge", {"alarm": alarm},
                                              token=token)
        assert status == 409 and "acknowledged already" in html.unescape(page)
        status, _, _ = await operator.post("/port-alarms/acknowledge", {"alarm": "99999"},
                                           token=token)
        assert status == 404
    finally:
        await viewer.close()
        await operator.close()
    audited = await gateway.fetch(
        "SELECT user_name, target FROM console_audit WHERE action = 'port_alarm_acknowledged'")
    assert [(r["user_name"], r["target"]) for r in audited] == [("otto", f"port alarm {alarm}")]
    (row,) = await gateway.fetch("SELECT acknowledged_by FROM port_alarms WHERE id = $1",
                                 int(alarm))
    assert row["acknowledged_by"] == "otto"


@pytest.fixture
async def cut_off(tmp_path: Path) -> AsyncIterator[tuple[Port, TcpProxy]]:
    """A gateway that reaches RabbitMQ through a proxy the test cuts; the test's queue is
    bound to the alarms exchange directly."""
    tag = uuid.uuid4().hex[:10]
    exchange, queue = f"test.{tag}.alarms", f"test.{tag}.alarms.watch"
    (tmp_path / "port-alarms.yaml").write_text(
        f"exchange: {exchange}\ncheck_seconds: 0.2\n"
        "overtime:\n  - name: discharge-to-gate-out\n    from: {event: discharged}\n"
        f"    to: {{event: gate_out}}\n    within_seconds: {LIMIT_SECONDS}\n")
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    bound = await channel.declare_queue(queue, durable=True)
    await bound.bind(await channel.declare_exchange(
        exchange, aio_pika.ExchangeType.TOPIC, durable=True), "#")
    proxy = await TcpProxy("127.0.0.1", 5672).start()
    database = await create_database()
    files = write_files(tmp_path, database, settings={"port_alarms": "port-alarms.yaml"},
                        amqp_url=AMQP_URL.replace(":5672/", f":{proxy.port}/"))
    gateway = await start_gateway(files)
    try:
        yield Port(gateway, queue), proxy
    finally:
        await proxy.restore() if proxy._server is None else None
        await gateway.stop()
        await proxy.close()
        await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)
        await connection.close()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def test_an_alarm_raised_while_the_broker_is_unreachable_is_published_once_back(
        cut_off: tuple[Port, TcpProxy]) -> None:
    port, proxy = cut_off
    gateway = port.gateway
    await proxy.cut()
    await gateway.upload("van-a", "discharged.edi", container_events(
        "discharged", (LEFT,), dt.datetime.now(dt.UTC) - dt.timedelta(seconds=20),
        control_reference="DIS7"))
    await gateway.answers("van-a", "discharged.edi")
    await first_alarm(gateway, published=False)
    assert await take_messages(port.queue, 1, seconds=1.5) == []  # kept, not lost
    (row,) = await gateway.fetch("SELECT published_at FROM port_alarms")
    assert row["published_at"] is None
    await proxy.restore()
    (got,) = await take_messages(port.queue, 1, seconds=30)
    assert json.loads(got.body)["container"] == LEFT
    assert await take_messages(port.queue, 1, seconds=1.5) == []  # once
    await first_alarm(gateway)


REUSED, TWICE = "CMAU1234563", "OOLU7654329"


async def test_a_containers_next_visit_has_its_own_clocks_and_its_first_declaration_covers_it_not(
        port: Port) -> None:
    """The same container number back at the port later is a new visit: it gets its own
    overtime and illegal-storage clocks and alarms, and the declaration that covered its
    first visit does not cover it; a repeated report of one arrival opens nothing more."""
    gateway = port.gateway
    await send(gateway, "declaration.edi", interchange([cusdec_message(  # pre-arrival
        declaration="DEC-V1", extra_heading=(f"EQD+CN+{REUSED}",))],
        sender="VANA", control_reference="DECV1"))
    first = dt.datetime.now(dt.UTC)
    await send(gateway, "visit1.edi", interchange([
        container_event("discharged", (REUSED,), first - dt.timedelta(seconds=2),
                        reference="V1D"),
        container_event("gate_out", (REUSED,), first - dt.timedelta(seconds=1),
                        reference="V1O", message_reference="2"),
        # TWICE's first visit: discharged, gated out late, never declared
        container_event("discharged", (TWICE,), first - dt.timedelta(seconds=20),
                        reference="V1D2", message_reference="3"),
        container_event("gate_out", (TWICE,), first - dt.timedelta(seconds=10),
                        reference="V1O2", message_reference="4")],
        sender="VANA", control_reference="VISIT1"))
    await asyncio.sleep(LIMIT_SECONDS + 1.5)  # the first visit's window is over
    second = dt.datetime.now(dt.UTC)
    await send(gateway, "visit2.edi", container_events(
        "discharged", (REUSED, TWICE), second, control_reference="VISIT2"))
    await send(gateway, "visit2-again.edi", container_events(  # the same arrival, resent
        "discharged", (REUSED, TWICE), second, control_reference="VISIT2B"))

    got = await take_messages(port.queue, 7, seconds=LIMIT_SECONDS + 12)
    alarms = sorted((a["container"], a["alarm"], dt.datetime.fromisoformat(a["started_at"])
                     >= second - dt.timedelta(seconds=1)) for a in
                    (json.loads(m.body) for m in got))
    assert alarms == [(REUSED, "illegal_storage", True), (REUSED, "overtime", True),
                      (TWICE, "illegal_storage", False), (TWICE, "illegal_storage", True),
                      (TWICE, "overtime", False), (TWICE, "overtime", True)]
    visits = await gateway.fetch(
        "SELECT container, rule, count(*) AS n FROM port_checks GROUP BY 1, 2 ORDER BY 1, 2")
    assert [(r["container"], r["n"]) for r in visits] == [(REUSED, 2), (REUSED, 2),
                                                          (TWICE, 2), (TWICE, 2)]


def raw_event(event: str, number: str, stamp: str, *, reference: str, node: str = "TWKHH",
              message_reference: str = "1") -> list[str]:
    """A container event with its number and DTM (format 304) written as given."""
    message_type, code = EVENTS[event]
    body = [f"BGM+{code}+{reference}+9", f"DTM+137:{stamp}:304",
            "TDT+20+031W+1++EVE:172:20", f"LOC+165+{node}:139:6", "NAD+CF+EVE:160:20",
            f"EQD+CN+{number}+45G1:102:5++2+5", f"DTM+7:{stamp}:304", "CNT+16:1"]
    return [f"UNH+{message_reference}+{message_type}:D:96B:UN", *body,
            f"UNT+{len(body) + 2}+{message_reference}"]


async def trail_caught_up(gateway: Gateway, seconds: float = 30) -> None:
    """Until the trail's cursor has reached the last stored message."""
    async with asyncio.timeout(seconds):
        while True:
            rows = await gateway.fetch(
                "SELECT (SELECT message_id FROM cargo_trail_cursor) AS cursor,"
                " (SELECT max(id) FROM messages) AS last")
            if rows[0]["last"] is not None and rows[0]["cursor"] == rows[0]["last"]:
                return
            await asyncio.sleep(0.1)


async def test_hostile_container_events_neither_stop_the_trail_nor_split_a_container(
        port: Port) -> None:
    """Odd spellings of one number make one trail; dates in year 1 or 9999 are taken at
    their reception; NUL bytes in a number or a node leave that container or node out; the
    watcher reads on past all of it."""
    gateway = port.gateway
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%d%H%M%S") + "UTC"
    await send(gateway, "odd.edi", interchange([
        raw_event("discharged", "cmau 123456-3", "00010101000000UTC", reference="ODD1"),
        raw_event("gate_out", "CMAU-123456.3", "99991231235959UTC", reference="ODD2",
                  message_reference="2"),
        raw_event("discharged", "TGHU\x007654321", stamp, reference="NUL1",
                  message_reference="3"),
        raw_event("discharged", "OOLU7654329", stamp, reference="NUL2", node="TW\x00KHH",
                  message_reference="4")], sender="VANA", control_reference="ODD"))
    await trail_caught_up(gateway)
    steps = await gateway.fetch(
        "SELECT t.container, t.event, t.node, t.occurred_at, i.received_at FROM cargo_trail t"
        " JOIN messages m ON m.id = t.message_id JOIN interchanges i"
        " ON i.id = m.interchange_id ORDER BY t.id")
    taken = [(s["container"], s["event"]) for s in steps]
    assert ("CMAU1234563", "discharged") in taken and ("CMAU1234563", "gate_out") in taken
    assert all(s["container"] != "TGHU7654321" for s in steps)
    for s in steps:
        assert s["occurred_at"] <= s["received_at"]
        assert s["occurred_at"] > s["received_at"] - dt.timedelta(days=367)
        assert s["node"] is None or "\x00" not in s["node"]
    # CMAU1234563's discharge and gate out, both taken at reception: one visit, in time (a
    # discharge taken in year 1 would be late, and swallow every later visit)
    got = await take_messages(port.queue, 5, seconds=LIMIT_SECONDS + 3)
    assert [a["alarm"] for a in (json.loads(m.body) for m in got)] == ["illegal_storage"]


async def counted(gateway: Gateway, query: str, wanted: int, *, seconds: float) -> None:
    """Until ``query``'s count reaches ``wanted``."""
    async with asyncio.timeout(seconds):
        while True:
            if (await gateway.fetch(query))[0]["n"] >= wanted:
                return
            await asyncio.sleep(0.2)


async def test_ten_thousand_events_of_one_container_make_five_thousand_visits(
        port: Port) -> None:
    """5,000 visits of one container number (discharged, gated out a second later, an hour
    apart, the oldest 208 days ago): one clock per visit and rule, no overtime, and an
    illegal-storage alarm per visit (none declared); the watcher keeps its pace."""
    gateway = port.gateway
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=5000)
    for part in range(5):
        messages = []
        for visit in range(part * 1000, (part + 1) * 1000):
            at = start + dt.timedelta(hours=visit)
            for offset, kind in ((0, "discharged"), (1, "gate_out")):
                stamp = (at + dt.timedelta(seconds=offset)).strftime("%Y%m%d%H%M%S") + "UTC"
                messages.append(raw_event(kind, REUSED, stamp, reference=f"B{visit}{kind[0]}",
                                          message_reference=str(len(messages) + 1)))
        await gateway.upload("van-a", f"many{part}.edi", interchange(
            messages, sender="VANA", control_reference=f"MANY{part}"))
    began = time.monotonic()
    await counted(gateway, "SELECT count(*) AS n FROM messages WHERE status = 'routed'",
                  10000, seconds=180)
    stored = time.monotonic() - began
    await trail_caught_up(gateway, seconds=120)
    taken = time.monotonic() - began
    counts = await gateway.fetch(
        "SELECT (SELECT count(*) FROM cargo_trail) AS steps, (SELECT count(*) FROM"
        " port_checks WHERE alarm = 'overtime') AS overtime, (SELECT count(*) FROM"
        " port_checks WHERE alarm = 'illegal_storage') AS storage")
    assert dict(counts[0]) == {"steps": 10000, "overtime": 5000, "storage": 5000}
    await counted(gateway, "SELECT count(*) AS n FROM port_alarms WHERE published_at IS NOT"
                  " NULL", 5000, seconds=60)
    kinds = await gateway.fetch("SELECT alarm, count(*) AS n FROM port_alarms GROUP BY 1")
    assert {r["alarm"]: r["n"] for r in kinds} == {"illegal_storage": 5000}
    print(f"stored {stored:.1f} s, trail caught up {taken:.1f} s")


async def test_two_gateways_on_one_database_publish_each_alarm_once(
        port: Port, tmp_path: Path) -> None:
    """A second gateway (with a worker process) on the same database runs a watcher of its
    own: both raise and publish, and each alarm reaches the alarms exchange once."""
    first = port.gateway
    other = tmp_path / "other"
    other.mkdir()
    (other / "port-alarms.yaml").write_text(
        (first.files.root / "port-alarms.yaml").read_text())
    files = write_files(other, first.files.database, settings={
        "port_alarms": "port-alarms.yaml"})
    second = await start_gateway(files, workers=2)
    try:
        boxes = [f"ABCU{n:07d}" for n in range(400)]
        await send(first, "many.edi", container_events(
            "discharged", boxes, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30),
            control_reference="MANY"))
        await counted(first, "SELECT count(*) AS n FROM port_alarms WHERE published_at IS"
                      " NOT NULL", 800, seconds=60)
        got = await take_messages(port.queue, 2000, seconds=4)
    finally:
        await second.stop()
    ids = [m.message_id for m in got]
    assert len(ids) == 800 and len(set(ids)) == 800, (len(ids), len(set(ids)))


async def test_concurrent_acknowledgements_of_one_alarm_take_effect_once(
        console_port: Gateway) -> None:
    """Ten acknowledgements of one alarm at once, by two operators' sessions: one is taken
    (200, one audit row, one acknowledged_by), the others find it acknowledged (409)."""
    gateway = console_port
    await send(gateway, "discharged.edi", container_events(
        "discharged", (LEFT,), dt.datetime.now(dt.UTC) - dt.timedelta(seconds=20),
        control_reference="DIS8"))
    alarm = str(await first_alarm(gateway))
    assert gateway.running is not None and gateway.running.console_port is not None
    base = f"http://127.0.0.1:{gateway.running.console_port}"
    operators = [Browser(base), Browser(base)]
    try:
        tokens = []
        for browser in operators:
            assert (await browser.log_in("otto"))[0] == 303
            tokens.append(await browser.token("/port-alarms"))
        results = await asyncio.gather(*(
            operators[n % 2].post("/port-alarms/acknowledge", {"alarm": alarm},
                                  token=tokens[n % 2]) for n in range(10)))
    finally:
        for browser in operators:
            await browser.close()
    assert sorted(status for status, _, _ in results) == [200] + [409] * 9
    audited = await gateway.fetch(
        "SELECT count(*) AS n FROM console_audit WHERE action = 'port_alarm_acknowledged'")
    assert audited[0]["n"] == 1
