"""The console's queries (issue 14) against real PostgreSQL: the traffic search's filters and
pages, a declaration's timeline from the real pipeline (SFTP upload, the example agency
adapters deciding), the clearance report's figures, and hostile search input refused clearly
or matched literally, never a crash."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from gateway.errors import QueryRefused
from gateway.store import reports, routing_versions, timeline, traffic
from gateway.store.traffic import TrafficQuery
from tests.integration.test_answers import (  # noqa: F401  (scene is a fixture)
    DECLARATION,
    FISH,
    Scene,
    adapters,
    scene,
    wait_files,
)
from tests.support.harness import database_url

T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Row:
    """A stored declaration as the tests wrote it."""

    interchange: int
    message: int
    partner: str
    message_type: str
    status: str
    received_at: dt.datetime


async def add(connection: Any, *, partner: str = "van-a", message_type: str = "CUSDEC",
              interchange_status: str = "accepted", status: str = "routed",
              control_ref: str | None = None, document_ref: str | None = None,
              message_ref: str = "1", received_at: dt.datetime = T0,
              agencies: tuple[str, ...] = ("customs",)) -> Row:
    """One interchange with one message, as the processor would leave them."""
    interchange = await connection.fetchval(
        "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256, received_at,"
        " status, control_ref, processed_at) VALUES ($1, 'sftp', 'x.edi', $2, '', $3, $4, $5,"
        " $3::timestamptz + interval '1 second') RETURNING id",
        partner, b"UNB+raw bytes", received_at, interchange_status, control_ref)
    message = await connection.fetchval(
        "INSERT INTO messages (interchange_id, position, message_ref, message_type, release,"
        " status, canonical, document_ref, agencies, rules) VALUES ($1, 1, $2, $3, 'D96B', $4,"
        " '{\"kind\": \"CustomsDeclaration\"}', $5, $6, $7) RETURNING id",
        interchange, message_ref, message_type, status, document_ref, list(agencies),
        [f"{a}-rule" for a in agencies])
    return Row(interchange, message, partner, message_type, status, received_at)


async def many(connection: Any) -> list[Row]:
    """24 declarations, an hour apart: 3 partners, 2 types, some rejected or unroutable."""
    rows = []
    for n in range(24):
        status = "unroutable" if n % 7 == 3 else "routed"
        rows.append(await add(
            connection, partner=f"van-{n % 3}", message_type="CUSCAR" if n % 4 == 0 else "CUSDEC",
            interchange_status="rejected" if n % 5 == 0 else "accepted",
            status="rejected" if n % 5 == 0 else status, control_ref=f"CR{n:04d}",
            document_ref=f"DEC-{n:04d}", message_ref=f"M{n}",
            received_at=T0 + dt.timedelta(hours=n)))
    return rows


async def all_pages(connection: Any, query: TrafficQuery, declarations: bool) -> list[Any]:
    find = traffic.search_declarations if declarations else traffic.search_interchanges
    found, after = [], None
    while True:
        page = await find(connection, query, after)
        found.extend(page.items)
        if page.next is None:
            return found
        after = page.next


@pytest.fixture
async def connection(pool: Any) -> AsyncIterator[Any]:
    async with pool.acquire() as connection:
        yield connection


# --- the real pipeline -------------------------------------------------------------------


async def test_a_declaration_sent_over_sftp_is_found_and_its_timeline_told_in_order(
        scene: Scene) -> None:  # noqa: F811
    gateway = scene.gateway
    async with adapters(scene, "customs", "quarantine"):
        await gateway.upload("van-a", "fish.edi", FISH)
        await wait_files(scene.outbox, f"{DECLARATION}.*.cusres.edi", 4)
        await gateway.settled()
    connection = await asyncpg.connect(database_url(gateway.files.database))
    try:
        await _check_found(connection)
        await _check_timeline(connection)
        await _check_reports(connection)
    finally:
        await connection.close()


async def _check_found(connection: Any) -> None:
    (hit,) = (await traffic.search_declarations(
        connection, TrafficQuery(reference=DECLARATION))).items
    assert (hit.partner_id, hit.message_type, hit.status) == ("van-a", "CUSDEC", "routed")
    assert hit.clearance in ("released", "in_progress")  # customs decides at random
    assert set(hit.agencies) == {"customs", "quarantine"}
    for reference in ("DEMO0001", str(hit.interchange_id), DECLARATION):
        (found,) = (await traffic.search_interchanges(
            connection, TrafficQuery(reference=reference))).items
        assert (found.id, found.control_ref, found.messages) == \
            (hit.interchange_id, "DEMO0001", 1)
    assert (await traffic.search_declarations(
        connection, TrafficQuery(partner="van-b"))).items == ()


async def _check_timeline(connection: Any) -> None:
    (hit,) = (await traffic.search_declarations(
        connection, TrafficQuery(reference=DECLARATION))).items
    told = await timeline.declaration_timeline(connection, hit.id)
    assert told is not None
    kinds = [e.kind for e in told.entries]
    assert kinds[:3] == ["received", "accepted", "message_routed"]
    assert kinds.count("delivered") == 2 and kinds.count("agency_decision") == 4
    assert kinds.count("acknowledged") == 5  # the CONTRL and four CUSRES
    assert kinds.index("delivered") < kinds.index("agency_decision")
    assert [e.at for e in told.entries] == sorted(e.at for e in told.entries)
    delivered = {e.detail["destination"] for e in told.entries if e.kind == "delivered"}
    assert delivered == {"customs", "quarantine"}
    assert all(e.signature is not None and e.signature.state == "signed"
               for e in told.entries if e.kind == "acknowledged")
    states = {s.agency: s for s in told.states}
    assert set(states) == {"customs", "quarantine"}  # customs decides at random (the rules)
    assert (states["quarantine"].state, states["quarantine"].final) == ("released", True)
    assert len(told.answers) == 4 and {d.state for d in told.deliveries} == {"sent"}

    raw = await timeline.body(connection, told.entries[0].body or _missing())
    assert raw is not None and raw.data == FISH and not raw.truncated
    routed = next(e for e in told.entries if e.kind == "message_routed")
    canonical = await timeline.body(connection, routed.body or _missing())
    assert canonical is not None and json.loads(canonical.data)["kind"] == "CustomsDeclaration"
    decision = next(e for e in told.entries if e.kind == "agency_decision")
    answer = await timeline.body(connection, decision.body or _missing())
    assert answer is not None and json.loads(answer.data)["kind"] == "CustomsResponse"
    contrl = next(e for e in told.entries if e.kind == "acknowledged")
    sent = await timeline.body(connection, contrl.body or _missing(), cap=20)
    assert sent is not None and sent.truncated and sent.data.startswith(b"UNA") \
        and len(sent.data) == 20 and sent.size > 20

    whole = await timeline.interchange_timeline(connection, hit.interchange_id)
    assert whole is not None and [d.id for d in whole.declarations] == [hit.id]
    assert [e.kind for e in whole.entries] == kinds


def _missing() -> timeline.BodyRef:
    raise AssertionError("the event names no body")


async def _check_reports(connection: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    rows = await reports.clearance_times(connection, now - dt.timedelta(hours=1), now)
    by_agency = {r.value: r for r in rows if r.dimension == "agency"}
    assert set(by_agency) == {"customs", "quarantine"}
    quarantine = {s.name: s for s in by_agency["quarantine"].stages}
    assert by_agency["quarantine"].declarations == 1
    for name in ("lodged_to_accepted", "accepted_to_delivered", "delivered_to_decision",
                 "lodged_to_decision"):
        assert quarantine[name].count == 1 and (quarantine[name].p50 or -1) >= 0, name
    (partner,) = [r for r in rows if r.dimension == "partner"]
    assert partner.value == "van-a" and {s.name: s.count for s in partner.stages}[
        "lodged_to_accepted"] == 1  # the declaration once, not once per agency
    # The processor kept the AEO status on the message (no trader registered: false) ...
    assert [(r.value, r.declarations) for r in rows if r.dimension == "aeo"] == [("false", 1)]
    # ... and the relay dated each agency's delivery as it marked its outbox row dispatched.
    milestones = await connection.fetch(
        "SELECT s.agency, s.delivered_at, o.dispatched_at FROM agency_states s"
        " JOIN outbox o ON o.message_id = s.message_id AND o.destination = s.agency"
        " AND o.channel = 'amqp' ORDER BY s.agency")
    assert [m["agency"] for m in milestones] == ["customs", "quarantine"]
    assert all(m["delivered_at"] is not None and m["delivered_at"] == m["dispatched_at"]
               for m in milestones)
    hits = await reports.rule_hits(connection, now - dt.timedelta(hours=1), now)
    assert sum(h.messages for h in hits) == 2 and all(h.routing_version == 1 for h in hits)
    (version,) = await routing_versions.history(connection)
    assert version.status == "applied" and "routes" in (
        await routing_versions.body(connection, version.id) or "")


# --- filters, combined ---------------------------------------------------------------------


async def test_each_filter_and_their_combinations(connection: Any) -> None:
    rows = await many(connection)
    newest = sorted(rows, key=lambda r: r.received_at, reverse=True)

    async def declarations(**filters: Any) -> list[int]:
        return [h.id for h in await all_pages(connection, TrafficQuery(limit=5, **filters),
                                               True)]

    async def interchanges(**filters: Any) -> list[int]:
        return [h.id for h in await all_pages(connection, TrafficQuery(limit=5, **filters),
                                               False)]

    assert await declarations() == [r.message for r in newest]
    assert await interchanges() == [r.interchange for r in newest]
    assert await declarations(partner="van-1") == [r.message for r in newest
                                                   if r.partner == "van-1"]
    assert await declarations(message_type="CUSCAR") == [
        r.message for r in newest if r.message_type == "CUSCAR"]
    assert await declarations(status="unroutable") == [
        r.message for r in newest if r.status == "unroutable"]
    assert await interchanges(status="rejected") == [
        r.interchange for r in newest if r.status == "rejected"]
    since, until = T0 + dt.timedelta(hours=5), T0 + dt.timedelta(hours=11)
    assert await interchanges(since=since, until=until) == [
        r.interchange for r in newest if since <= r.received_at < until]
    assert await declarations(partner="van-0", message_type="CUSDEC", since=since) == [
        r.message for r in newest if r.partner == "van-0" and r.message_type == "CUSDEC"
        and r.received_at >= since]
    assert await interchanges(message_type="CUSCAR", partner="van-0") == [
        r.interchange for r in newest if r.message_type == "CUSCAR" and r.partner == "van-0"]
    assert await declarations(message_ref="M7") == [rows[7].message]
    assert await interchanges(message_ref="M7", partner="van-2") == []
    for reference in ("CR0007", "DEC-0007", str(rows[7].interchange)):
        assert await declarations(reference=reference) == [rows[7].message]
        assert await interchanges(reference=reference) == [rows[7].interchange]
    assert await declarations(reference="DEC-0007", partner="van-2") == []


async def test_pages_never_repeat_or_skip_a_row_while_new_ones_arrive(connection: Any
                                                                       ) -> None:
    rows = await many(connection)
    seen: list[int] = []
    page = await traffic.search_declarations(connection, TrafficQuery(limit=5))
    arrived = 0
    while True:
        seen.extend(h.id for h in page.items)
        # A newer declaration arrives between two pages: it belongs before the first page.
        await add(connection, received_at=T0 + dt.timedelta(days=3, minutes=arrived))
        arrived += 1
        if page.next is None:
            break
        page = await traffic.search_declarations(connection, TrafficQuery(limit=5), page.next)
    assert len(seen) == len(set(seen))
    assert seen == [r.message for r in sorted(rows, key=lambda r: r.received_at,
                                              reverse=True)]


async def test_a_page_is_in_order_among_rows_received_at_the_same_time(connection: Any
                                                                        ) -> None:
    rows = [await add(connection, received_at=T0) for _ in range(7)]
    found = await all_pages(connection, TrafficQuery(limit=2), True)
    assert [h.id for h in found] == [r.message for r in reversed(rows)]
    found = await all_pages(connection, TrafficQuery(limit=3), False)
    assert [h.id for h in found] == [r.interchange for r in reversed(rows)]


# --- hostile input -------------------------------------------------------------------------


async def test_pattern_characters_nul_and_odd_references_match_literally(connection: Any
                                                                         ) -> None:
    odd = await add(connection, control_ref="A_B%C", document_ref="D\\x00E")
    await add(connection, control_ref="AXBYC", document_ref="DXE")
    for reference in ("%", "_", "A_B%", "A%", "AXB%C", "*", "\\", "' OR 1=1 --"):
        assert (await traffic.search_interchanges(
            connection, TrafficQuery(reference=reference))).items == (), reference
    (hit,) = (await traffic.search_interchanges(
        connection, TrafficQuery(reference="A_B%C"))).items
    assert hit.id == odd.interchange
    # A NUL is stored in a visible escape (store.storable), and searched for the same way.
    (found,) = (await traffic.search_declarations(
        connection, TrafficQuery(reference="D\x00E"))).items
    assert found.id == odd.message
    for reference in ("\ud800", "9" * 40, "-1", "0", "\uff11\uff12"):  # a surrogate, out of range
        assert (await traffic.search_declarations(
            connection, TrafficQuery(reference=reference))).items == ()
    assert (await traffic.search_interchanges(
        connection, TrafficQuery(partner="van-%", message_type="\x00"))).items == ()


@pytest.mark.parametrize(("query", "says"), [
    (TrafficQuery(reference="x" * 257), "reference must be 1 to 256"),
    (TrafficQuery(reference="x" * 1_000_000), "reference must be 1 to 256"),
    (TrafficQuery(partner=""), "partner must be 1 to 256"),
    (TrafficQuery(limit=0), "a page holds 1 to 200 rows"),
    (TrafficQuery(limit=10_000), "a page holds 1 to 200 rows"),
    (TrafficQuery(status="sent; DROP TABLE messages"), "status must be one of"),
    (TrafficQuery(since=T0, until=T0), "the time range ends before it begins"),
    (TrafficQuery(since=T0, until=T0 - dt.timedelta(days=1)), "ends before it begins"),
    (TrafficQuery(since=dt.datetime(2026, 1, 1)), "with its time zone"),
])
async def test_bad_searches_are_refused_saying_what_to_change(
        connection: Any, query: TrafficQuery, says: str) -> None:
    for search in (traffic.search_declarations, traffic.search_interchanges):
        with pytest.raises(QueryRefused, match=says.replace("(", r"\(")):
            await search(connection, query)


@pytest.mark.parametrize("cursor", [
    "", "x", "1", "1.2.3.4", "1.-2", "1.99999999999999999999",
    "-99999999999999999.1", "1." + "9" * 19, "1.2\x00", "\uff11.\uff12",
])
async def test_page_cursors_not_ours_are_refused(connection: Any, cursor: str) -> None:
    with pytest.raises(QueryRefused, match="cursor"):
        await traffic.search_interchanges(connection, TrafficQuery(), cursor)


async def test_a_query_over_its_time_is_stopped_by_the_server(connection: Any) -> None:
    with pytest.raises(QueryRefused, match=r"took longer than 0\.2 s"):
        async with traffic.bounded(connection, "sleeping", seconds=0.2):
            await connection.execute("SELECT pg_sleep(5)")
    assert await connection.fetchval("SELECT 1") == 1  # the connection is fine afterwards


async def test_the_console_reads_never_write(connection: Any) -> None:
    with pytest.raises(Exception, match="read-only"):
        async with traffic.bounded(connection, "writing"):
            await connection.execute("DELETE FROM messages")


# --- timelines and bodies of inserted histories --------------------------------------------


async def test_a_timeline_shows_parks_holds_releases_and_waiting_deliveries(
        connection: Any) -> None:
    row = await add(connection, status="held", agencies=("customs", "port"))
    other = await add(connection)
    events = [(None, "received", {"transport": "sftp"}, 0),
              (row.message, "message_routed", {"agencies": []}, 1),
              (None, "accepted", {"summary": "accepted"}, 1),  # the same instant: by id
              (row.message, "released", {"by": "ops"}, 5),
              (row.message, "dispatch_parked", {"destination": "port"}, 9),
              (other.message, "delivered", {"destination": "customs"}, 3)]
    for message, kind, detail, seconds in events:
        await connection.execute(
            "INSERT INTO events (interchange_id, message_id, kind, detail, at)"
            " VALUES ($1, $2, $3, $4::jsonb, $5)", row.interchange, message, kind,
            json.dumps(detail), T0 + dt.timedelta(seconds=seconds))
    for key, parked in (("swg-c", None), ("swg-p", T0)):
        await connection.execute(
            "INSERT INTO outbox (interchange_id, message_id, channel, destination,"
            " dispatch_key, body, attempts, parked_at) VALUES ($1, $2, 'amqp', 'port', $3,"
            " '{}', $4, $5)", row.interchange, row.message, key, 3 if parked else 0, parked)
    told = await timeline.declaration_timeline(connection, row.message)
    assert told is not None
    assert [e.kind for e in told.entries] == ["received", "message_routed", "accepted",
                                              "released", "dispatch_parked"]
    assert [(d.dispatch_key, d.state) for d in told.deliveries] == [
        ("swg-c", "waiting"), ("swg-p", "parked")]
    assert told.declarations[0].status == "held"


async def test_missing_things_are_none_and_bad_references_refused(connection: Any) -> None:
    assert await timeline.declaration_timeline(connection, 12345) is None
    assert await timeline.interchange_timeline(connection, 12345) is None
    assert await timeline.body(connection, timeline.BodyRef("raw", 12345)) is None
    assert await timeline.body(connection, timeline.BodyRef("mdn", 1, "<x@y>")) is None
    for bad in (0, -1, 2**63, True):
        with pytest.raises(QueryRefused):
            await timeline.declaration_timeline(connection, bad)
    with pytest.raises(QueryRefused, match="no kind of body"):
        await timeline.body(connection, timeline.BodyRef("../etc/passwd", 1))
    with pytest.raises(QueryRefused, match="bytes at a time"):
        await timeline.body(connection, timeline.BodyRef("raw", 1), cap=10**9)


# --- clearance figures ---------------------------------------------------------------------


async def test_clearance_percentiles_by_agency_and_by_partner(connection: Any) -> None:
    # Three declarations lodged 10 s apart, accepted after 1 s (add), delivered to customs
    # and port 2 s later, customs deciding after 10, 20, 30 s, port after 40 s.
    for n in range(3):
        row = await add(connection, agencies=("customs", "port"),
                        received_at=T0 + dt.timedelta(seconds=10 * n))
        lodged = row.received_at
        await connection.execute("UPDATE messages SET clearance = 'released' WHERE id = $1",
                                 row.message)
        for agency, decided in (("customs", 10 * (n + 1)), ("port", 40)):
            await connection.execute(
                "INSERT INTO outbox (interchange_id, message_id, channel, destination,"
                " dispatch_key, body, properties, dispatched_at) VALUES ($1, $2, 'amqp', $3,"
                " $4, '{}', '{\"headers\": {\"aeo\": true}}', $5)", row.interchange,
                row.message, agency, f"k{row.message}{agency}", lodged + dt.timedelta(seconds=3))
            await connection.execute(
                "INSERT INTO agency_states (message_id, agency, state, final, decided_at,"
                " delivered_at) VALUES ($1, $2, 'released', true, $3, $4)", row.message,
                agency, lodged + dt.timedelta(seconds=3 + decided),
                lodged + dt.timedelta(seconds=3))
        await connection.execute("UPDATE messages SET aeo = true WHERE id = $1", row.message)
    rows = await reports.clearance_times(connection, T0, T0 + dt.timedelta(hours=1))
    figures = {(r.dimension, r.value): {s.name: s for s in r.stages} for r in rows}
    customs = figures[("agency", "customs")]
    assert (customs["accepted_to_delivered"].p50, customs["accepted_to_delivered"].count) \
        == (2.0, 3)
    assert (customs["delivered_to_decision"].p50, customs["delivered_to_decision"].p90) \
        == (20.0, pytest.approx(28.0))
    assert customs["lodged_to_released"].p50 == 43.0
    partner = figures[("partner", "van-a")]
    assert partner["lodged_to_accepted"].count == 3  # once per declaration
    assert partner["delivered_to_decision"].count == 6  # once per agency
    assert partner["delivered_to_decision"].p50 == pytest.approx(35.0)
    assert ("aeo", "true") in figures and ("message_type", "CUSDEC") in figures
    only = await reports.clearance_times(connection, T0, T0 + dt.timedelta(hours=1),
                                         dimensions=("partner",))
    assert [(r.dimension, r.value) for r in only] == [("partner", "van-a")]
    assert only[0].stages == tuple(partner.values())
    with pytest.raises(QueryRefused, match="dimensions"):
        await reports.clearance_times(connection, T0, T0 + dt.timedelta(hours=1),
                                      dimensions=("colour",))
    with pytest.raises(QueryRefused, match="at most 31 days"):
        await reports.clearance_times(connection, T0, T0 + dt.timedelta(days=40))
    with pytest.raises(QueryRefused, match="ends before"):
        await reports.rule_hits(connection, T0, T0)
