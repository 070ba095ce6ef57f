"""The console's Routing pages and the maker-checker routing change (issue 14, parts 2 and 3),
over real HTTP against ``gateway serve`` (SFTP, PostgreSQL, RabbitMQ): a proposal checked as
``routes check`` does (errors at routing.yaml:line), replayed as ``routes diff`` does, refused
to its own proposer, approved once by a second admin, written atomically and routing the next
declaration; a stale proposal superseded; a direct edit of routing.yaml in the history."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.console_users import ConsoleUser, Role, UsersFile
from gateway.console.auth import cost_of
from gateway.security.passwords import hash_password
from tests.support.console import (
    PASSWORDS,
    ROLES,
    Browser,
    browser,
    console_gateway,
    running_console,
    settings,
)
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import Gateway

pytestmark = pytest.mark.integration
#: A second admin for maker-checker, beside tests.support.console's users.
SECOND_ADMIN, SECOND_PASSWORD = "abe", "second-admin-password-4"
TRADE_RULE = ("\n  - name: trade-sees-every-declaration\n    match:\n"
              "      kind: CustomsDeclaration\n    deliver: [trade]\n")
#: Enough for the reload's looks: a guard, not a measure.
PATIENCE_SECONDS = 30.0


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    cost = cost_of(settings())
    users = [ConsoleUser(name=name, role=ROLES[name],
                         password_hash=hash_password(password, cost))
             for name, password in PASSWORDS.items()]
    users.append(ConsoleUser(name=SECOND_ADMIN, role=Role.admin,
                             password_hash=hash_password(SECOND_PASSWORD, cost)))
    async for running in console_gateway(tmp_path, UsersFile(users=tuple(users)),
                                         routing_settle_seconds=0.5):
        yield running


async def client_of(gateway: Gateway, name: str) -> Browser:
    assert gateway.running is not None and gateway.running.console_port is not None
    client = Browser(f"http://127.0.0.1:{gateway.running.console_port}")
    password = SECOND_PASSWORD if name == SECOND_ADMIN else PASSWORDS[name]
    assert (await client.log_in(name, password))[0] == 303
    return client


def textarea(page: str) -> str:
    found = re.search(r'<textarea id="routing_yaml" name="routing_yaml"[^>]*>(.*?)</textarea>',
                      page, re.S)
    assert found is not None, page[:1000]
    return html.unescape(found.group(1))


async def propose(client: Browser, text: str, days: str = "7") -> tuple[int, str, Any]:
    token = await client.token("/routing/propose")
    return await client.post("/routing/propose", {"routing_yaml": text, "days": days},
                             token=token)


async def decide(client: Browser, action: str, proposal: int) -> tuple[int, str]:
    token = await client.token(f"/routing/proposal?id={proposal}")
    status, page, _ = await client.post(f"/routing/{action}", {"proposal": str(proposal)},
                                        token=token)
    return status, html.unescape(page)


async def send_declaration(gateway: Gateway, name: str, declaration: str) -> None:
    data = interchange([cusdec_message(declaration=declaration)], sender="VANA",
                       control_reference=name.upper()[:14])
    await gateway.upload("van-a", f"{name}.edi", data)
    await gateway.answers("van-a", f"{name}.edi")


async def agencies_of(gateway: Gateway, declaration: str) -> list[str]:
    rows = await gateway.fetch("SELECT agencies FROM messages WHERE document_ref = $1",
                               declaration)
    return list(rows[0]["agencies"])


async def state_of(gateway: Gateway, proposal: int) -> str:
    rows = await gateway.fetch("SELECT state FROM routing_proposals WHERE id = $1", proposal)
    return str(rows[0]["state"])


async def audited(gateway: Gateway, action: str) -> int:
    rows = await gateway.fetch("SELECT count(*) AS n FROM console_audit WHERE action = $1",
                               action)
    return int(rows[0]["n"])


async def test_a_proposal_with_errors_is_shown_them_with_line_numbers(
        gateway: Gateway) -> None:
    ada = await client_of(gateway, "ada")
    try:
        status, page, _ = await ada.get("/routing/propose")
        assert status == 200
        text = textarea(page)
        assert text == (gateway.files.root / "routing.yaml").read_text()
        wrong = text.replace("deliver: [trade]", "deliver: [tarde]")
        line = next(n for n, row in enumerate(wrong.splitlines(), 1) if "tarde" in row)
        status, page, _ = await propose(ada, wrong)
        page = html.unescape(page)
        assert status == 400 and "routing.yaml would be refused" in page
        assert re.search(rf"routing\.yaml:{line}:\d+ .*tarde", page), page
        assert "tarde" in textarea(page)  # the text kept for the next try
        status, page, _ = await propose(ada, "rules: [\n")
        assert status == 400 and re.search(r"routing\.yaml:\d+", html.unescape(page))
        status, page, _ = await propose(ada, text)
        assert status == 400 and "nothing to change" in page
        assert (await gateway.fetch("SELECT id FROM routing_proposals")) == []
    finally:
        await ada.close()


async def test_maker_checker_change_applies_once_and_routes_the_next_declaration(
        gateway: Gateway) -> None:
    await send_declaration(gateway, "before", "DEC-BEFORE")
    assert "trade" not in await agencies_of(gateway, "DEC-BEFORE")
    path = gateway.files.root / "routing.yaml"
    ada, abe = await client_of(gateway, "ada"), await client_of(gateway, SECOND_ADMIN)
    try:
        text = textarea((await ada.get("/routing/propose"))[1]) + TRADE_RULE
        status, _, response = await propose(ada, text.replace("\n", "\r\n"), days="3")
        assert status == 303, _
        location = response.headers["Location"]
        proposal = int(location.rsplit("=", 1)[1])
        status, page, _ = await ada.get(location)
        page = html.unescape(page)
        assert status == 200 and "Replayed 1 message of the last 3 days" in page
        gained = page.split('id="agency-trade"', 1)[1].split("</tr>", 1)[0]
        assert "+1 message: DEC-BEFORE" in gained
        assert "+  - name: trade-sees-every-declaration" in page  # the text's diff
        assert "Approve and apply" not in page  # not offered to the proposer

        status, page = await decide(ada, "approve", proposal)  # maker-checker
        assert status == 403 and "Maker-checker" in page
        assert await state_of(gateway, proposal) == "proposed"
        assert "trade-sees" not in path.read_text()

        status, page = await decide(abe, "approve", proposal)
        assert status == 200 and "is in force" in page, page
        assert path.read_text() == text  # the proposal's text, LF line ends, whole
        assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]
        version = (await gateway.fetch(
            "SELECT v.id, v.proposal_id, p.state, p.routing_version, p.decider"
            " FROM routing_versions v JOIN routing_proposals p ON p.id = v.proposal_id"))[0]
        assert (version["proposal_id"], version["state"], version["decider"]) == (
            proposal, "applied", SECOND_ADMIN)
        assert version["routing_version"] == version["id"]

        status, page = await decide(abe, "approve", proposal)  # a replayed POST
        assert status == 409 and "already applied" in page
        assert await audited(gateway, "routing_approved") == 1
        assert await audited(gateway, "routing_proposed") == 1

        await send_declaration(gateway, "after", "DEC-AFTER")
        assert "trade" in await agencies_of(gateway, "DEC-AFTER")

        status, page, _ = await ada.get("/routing")
        page = html.unescape(page)
        assert status == 200 and f"{version['id']} (in force)" in page
        assert (f"console proposal {proposal}: proposed by ada, approved by {SECOND_ADMIN}"
                in page)
        row = page.split("trade-sees-every-declaration</td>", 1)[1].split("</tr>", 1)[0]
        assert re.findall(r'class="number">(\d+)<', row) == ["1", "1"]  # all time, 24 h
    finally:
        await ada.close()
        await abe.close()


async def test_two_approvals_at_once_apply_once(gateway: Gateway) -> None:
    ada, abe = await client_of(gateway, "ada"), await client_of(gateway, SECOND_ADMIN)
    try:
        text = textarea((await ada.get("/routing/propose"))[1]) + TRADE_RULE
        proposal = int((await propose(ada, text))[2].headers["Location"].rsplit("=", 1)[1])
        token = await abe.token(f"/routing/proposal?id={proposal}")
        results = await asyncio.gather(*(
            abe.post("/routing/approve", {"proposal": str(proposal)}, token=token)
            for _ in range(3)))
        statuses = sorted(r[0] for r in results)  # 202: applied, but after the page answered
        assert statuses in ([200, 409, 409], [202, 409, 409]), statuses
        assert await audited(gateway, "routing_approved") == 1
        rows = await gateway.fetch("SELECT id FROM routing_versions WHERE proposal_id = $1",
                                   proposal)
        assert len(rows) == 1
    finally:
        await ada.close()
        await abe.close()


async def test_a_stale_proposal_is_superseded_and_a_direct_edit_is_in_the_history(
        gateway: Gateway) -> None:
    path = gateway.files.root / "routing.yaml"
    ada, abe = await client_of(gateway, "ada"), await client_of(gateway, SECOND_ADMIN)
    try:
        text = textarea((await ada.get("/routing/propose"))[1])
        proposal = int((await propose(ada, text + TRADE_RULE))[2].headers["Location"]
                       .rsplit("=", 1)[1])
        other = int((await propose(abe, text.replace("copy_to: [port]", "copy_to: [trade]"))
                     )[2].headers["Location"].rsplit("=", 1)[1])
        edited = text.replace("name: port-follows-container-movements",
                              "name: port-follows-every-container-movement")
        staged = path.with_name(".routing.yaml.new")
        staged.write_text(edited)
        staged.replace(path)  # ops edit the file directly, atomically
        status, page, _ = await abe.get(f"/routing/proposal?id={proposal}")
        assert status == 200 and "routing.yaml has changed since" in page

        status, page = await decide(abe, "approve", proposal)
        assert status == 409 and "superseded" in page and "someone edited the file" in page
        assert path.read_text() == edited  # the direct edit stands
        assert await state_of(gateway, proposal) == "superseded"
        assert await audited(gateway, "routing_superseded") == 1
        status, page = await decide(abe, "approve", proposal)
        assert status == 409 and "already superseded" in page

        status, page = await decide(ada, "reject", other)
        assert status == 303 and await state_of(gateway, other) == "rejected"
        status, page = await decide(ada, "reject", other)
        assert status == 409 and "already rejected" in page
        assert await audited(gateway, "routing_rejected") == 1

        for _ in range(int(PATIENCE_SECONDS / 0.2)):  # the watcher applies the edit
            page = html.unescape((await ada.get("/routing"))[1])
            if "port-follows-every-container-movement</td>" in page:
                break
            await asyncio.sleep(0.2)
        history = page.split("<h2>History</h2>", 1)[1]
        newest = history.split("<tr id=", 2)[1]
        assert "(in force)" in newest and "edited in routing.yaml directly" in newest
        assert "+  - name: port-follows-every-container-movement" in newest
        assert "-  - name: port-follows-container-movements" in newest
    finally:
        await ada.close()
        await abe.close()


async def test_viewers_and_operators_see_routing_but_change_nothing(
        gateway: Gateway) -> None:
    for name in ("vera", "otto"):
        client = await client_of(gateway, name)
        try:
            status, page, _ = await client.get("/routing")
            assert status == 200 and "customs-receives-every-declaration" in page
            assert "Propose a change" not in page
            assert (await client.get("/routing/propose"))[0] == 403
            token = await client.token("/routing")
            for path, data in (("/routing/propose", {"routing_yaml": "rules: []\n"}),
                               ("/routing/approve", {"proposal": "1"}),
                               ("/routing/reject", {"proposal": "1"})):
                status, page, _ = await client.post(path, data, token=token)
                assert status == 403 and "takes the admin role" in page, (name, path)
        finally:
            await client.close()
    assert await gateway.fetch("SELECT id FROM routing_proposals") == []


async def test_a_console_without_the_routing_parts_shows_history_and_changes_nothing(
        pool: Any, tmp_path: Path) -> None:
    """start_console without gateway serve's routing desk (as the role walk runs it)."""
    async with pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO routing_versions (sha256, body, source, status)"
            " VALUES ('a', 'rules: []', 'routing.yaml (start)', 'applied')")
    async with running_console(pool, tmp_path) as console, browser(console) as client:
        await client.log_in("ada")
        status, page, _ = await client.get("/routing")
        assert status == 200 and "does not know the table in force" in page
        assert "edited in routing.yaml directly" in page
        assert (await client.get("/routing/propose"))[0] == 503
        token = await client.token("/routing")
        status, page, _ = await client.post("/routing/approve", {"proposal": "1"},
                                            token=token)
        assert status == 503
        assert (await client.get("/routing/proposal?id=1"))[0] == 404
        assert (await client.get("/routing/proposal"))[0] == 400
