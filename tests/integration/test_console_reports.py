"""The console's Charts and Clearance pages over real HTTP against a real ``start_console`` and a
PostgreSQL database of the test's own, rows written as the processor and relays leave them
(issue 14): traffic and rejections by 0085 code per hour; clearance p50/p90 tables; CSV and
JSON exports that parse, with their Content-Type and Content-Disposition, a partner's
formula-looking value escaped in the CSV; overdue answers listed as alarms; bad ranges
refused clearly."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.console import Browser, RunningConsole, running_console

pytestmark = pytest.mark.integration
#: A partner id no partners.yaml allows, written straight into the store: what a spreadsheet
#: would run as a formula.
FORMULA = '=HYPERLINK("http://evil.example/","x")'


@pytest.fixture
async def console(pool: Any, tmp_path: Path) -> AsyncIterator[RunningConsole]:
    async with running_console(pool, tmp_path) as running:
        yield running


async def declaration(connection: Any, partner: str, lodged: dt.datetime, *,
                      status: str = "routed", findings: str = "[]",
                      interchange_status: str = "accepted") -> tuple[int, int]:
    submission = await connection.fetchval(
        "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256, received_at,"
        " status, processed_at) VALUES ($1, 'sftp', 'x.edi', '', '', $2, $3,"
        " $2::timestamptz + interval '2 seconds') RETURNING id",
        partner, lodged, interchange_status)
    message = await connection.fetchval(
        "INSERT INTO messages (interchange_id, position, message_ref, message_type, release,"
        " status, canonical, document_ref, agencies, findings, clearance) VALUES ($1, 1, 'M1',"
        " 'CUSDEC', 'D96B', $2, '{}', $3, '{customs}', $4::jsonb, 'released') RETURNING id",
        submission, status, f"DOC-{submission}", findings)
    return submission, message


async def delivered(connection: Any, submission: int, message: int, lodged: dt.datetime,
                    decided_after: float | None, overdue: bool = False) -> None:
    await connection.execute(
        "INSERT INTO outbox (interchange_id, message_id, channel, destination, dispatch_key,"
        " body, properties, dispatched_at) VALUES ($1, $2, 'amqp', 'customs', $3, '{}',"
        " '{\"headers\": {\"aeo\": false}}', $4)", submission, message, f"k{message}",
        lodged + dt.timedelta(seconds=3))
    await connection.execute(
        "INSERT INTO agency_states (message_id, agency, state, final, decided_at, overdue_at,"
        " delivered_at) VALUES ($1, 'customs', $2, $3, $4, $5, $6)", message,
        "awaiting" if decided_after is None else "released", decided_after is not None,
        None if decided_after is None else lodged + dt.timedelta(seconds=decided_after),
        lodged + dt.timedelta(minutes=30) if overdue else None,
        lodged + dt.timedelta(seconds=3))
    await connection.execute("UPDATE messages SET aeo = false WHERE id = $1", message)


@pytest.fixture
async def seeded(console: RunningConsole) -> dt.datetime:
    """Three declarations decided after 13, 23 and 33 s (one from FORMULA's partner), one
    overdue, one rejected under code 12 and one rejected submission with no message finding,
    lodged two hours ago."""
    lodged = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    async with console.pool.acquire() as connection:
        for n, partner in enumerate(("van-a", "van-a", FORMULA)):
            ids = await declaration(connection, partner, lodged + dt.timedelta(seconds=n))
            await delivered(connection, *ids, lodged + dt.timedelta(seconds=n), 13 + 10 * n)
        late = await declaration(connection, "van-b", lodged)
        await delivered(connection, *late, lodged, None, overdue=True)
        await declaration(connection, "van-b", lodged, status="rejected",
                          findings='[{"code": 12, "text": "bad value"}]')
        await declaration(connection, "van-b", lodged, status="rejected",
                          interchange_status="rejected")
    return lodged


async def viewer(console: RunningConsole) -> Browser:
    client = Browser(console.base)
    assert (await client.log_in("vera"))[0] == 303
    return client


def window(lodged: dt.datetime) -> str:
    since = (lodged - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
    until = (lodged + dt.timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M")
    return f"since={since}&until={until}"


async def test_charts_count_traffic_and_rejections_by_reason(console: RunningConsole,
                                                             seeded: dt.datetime) -> None:
    client = await viewer(console)
    try:
        status, page, _ = await client.get("/charts")
        assert status == 200 and "<svg" in page and "<script" not in page
        hour = seeded.strftime("%Y-%m-%d %H:00")
        # six submissions, three routed messages (the overdue one too: four), one rejected
        assert (f"<tr><td>{hour}</td><td class=\"number\">6</td><td class=\"number\">4</td>"
                f"<td class=\"number\">1</td></tr>") in page
        assert '<tr><td>12</td><td class="number">1</td></tr>' in page
        assert '<tr><td>interchange</td><td class="number">1</td></tr>' in page
        status, page, _ = await client.get("/charts?range=30d")
        assert status == 200 and seeded.strftime("%Y-%m-%d 00:00") in page
    finally:
        await client.close()


async def test_clearance_page_and_overdue_alarms(console: RunningConsole,
                                                 seeded: dt.datetime) -> None:
    client = await viewer(console)
    try:
        status, page, _ = await client.get(f"/clearance?{window(seeded)}"
                                           "&stage=delivered_to_decision")
        assert status == 200 and "<svg" in page
        page = html.unescape(page)
        assert "By agency" in page and "customs" in page and FORMULA in page
        assert "alarm GW-A006" in page and "/timeline?message=" in page
        assert "DOC-" in page
        status, page, _ = await client.get("/clearance?since=2026-01-02T00:00"
                                           "&until=2026-01-01T00:00")
        assert status == 400 and "ends before it begins" in page
        status, page, _ = await client.get("/clearance.csv?since=nonsense")
        assert status == 400 and "not a date and time" in page
    finally:
        await client.close()


async def test_exports_parse_and_escape_formulas(console: RunningConsole,
                                                 seeded: dt.datetime) -> None:
    client = await viewer(console)
    try:
        status, text, response = await client.get(f"/clearance.csv?{window(seeded)}")
        assert status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith('attachment; filename="clearance-times-')
        assert disposition.endswith('.csv"')
        rows = list(csv.DictReader(io.StringIO(text)))
        partners = {r["value"] for r in rows if r["dimension"] == "partner"}
        assert partners == {"van-a", "van-b", "'" + FORMULA}
        customs = {r["stage"]: r for r in rows
                   if r["dimension"] == "agency" and r["value"] == "customs"}
        assert float(customs["delivered_to_decision"]["p50_seconds"]) == 20.0
        assert int(customs["delivered_to_decision"]["count"]) == 3

        status, text, response = await client.get(f"/clearance.json?{window(seeded)}")
        assert status == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert response.headers["Content-Disposition"].endswith('.json"')
        document = json.loads(text)
        values = {(g["dimension"], g["value"]) for g in document["groups"]}
        assert ("partner", FORMULA) in values  # JSON is data: kept as it is
        (agency,) = [g for g in document["groups"] if g["dimension"] == "agency"]
        assert agency["stages"]["delivered_to_decision"]["p50_seconds"] == 20.0
    finally:
        await client.close()
