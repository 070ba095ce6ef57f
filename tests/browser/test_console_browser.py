"""The console driven in headless Chromium (issue 14, "Show"): a real gateway with SFTP and its
console, users of the test's own, and what an ops person does, clicked through the pages.
Screenshots of each step: test-artifacts/browser/<test>/ (tests/browser/conftest.py)."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from gateway.console.routes import ROUTES
from tests.browser.chromium import Page
from tests.browser.conftest import (
    FISH_ONLY,
    MACHINERY_TO_TRADE,
    UNKNOWN_AGENCY,
    declare,
    log_in,
    log_out,
    open_timeline,
    use_table,
)
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import Gateway

pytestmark = pytest.mark.integration


async def test_log_in_and_a_wrong_password_is_told(page: Page) -> None:
    await page.open("/")
    assert page.path.startswith("/login")  # not logged in: sent to the login form
    await page.shot("login form")
    await log_in(page, "ada", "not-the-password-at-all")
    text = await page.text()
    assert "Wrong name or password." in text and "ada (admin)" not in text
    await page.shot("wrong password")
    await log_in(page, "ada")
    text = await page.wait_for("ready")  # the routing table is recorded soon after start
    assert page.path == "/" and "ada (admin)" in text
    await page.shot("logged in")
    await log_out(page)
    assert page.path.startswith("/login")
    await page.open("/traffic")
    assert page.path.startswith("/login")  # the session is gone


async def test_find_a_declaration_sent_over_sftp_and_open_its_timeline(
        page: Page, gateway: Gateway) -> None:
    data = interchange([cusdec_message(declaration="DEC-FISH-7", commodity_codes=("0303.55",))],
                       sender="VANA", control_reference="ICR7001")
    await gateway.upload("van-a", "fish.edi", data)
    await gateway.answers("van-a", "fish.edi")
    await log_in(page, "vera")
    await page.follow("Traffic")
    await page.fill({"reference": "DEC-FISH-7"})
    await page.press("Search")
    text = await page.text()
    assert "DEC-FISH-7" in text and "van-a" in text and "routed" in text
    await page.shot("traffic search")
    await page.follow("DEC-FISH-7")
    text = await page.text()
    assert page.path.startswith("/timeline?message=")
    assert "Declaration DEC-FISH-7" in text and "ICR7001" in text
    assert "message_routed" in text and "customs" in text
    await page.shot("timeline")
    await page.follow("raw bytes")
    text = await page.text()
    assert "UNB+UNOC:3+VANA" in text and "BGM+929+DEC-FISH-7+9'" in text
    await page.shot("raw bytes")


async def test_a_viewer_sees_no_change_buttons_and_a_forged_post_is_refused(
        page: Page, gateway: Gateway) -> None:
    """Every page a viewer may open offers no change but logging out; a POST to every change
    route with the viewer's (then an admin's) browser cookies but without the CSRF token is
    refused and changes nothing."""
    await log_in(page, "vera")
    pages = [route.path for route in ROUTES
             if route.nav is not None and not route.changes]
    opened = []
    for path in pages:
        await page.open(path)
        if page.path.startswith(path):
            opened.append(path)
            assert await page.post_forms() == ["/logout"], path
            assert await page.change_buttons() == ["Log out"], path
    assert "/" in opened and "/traffic" in opened
    await page.open("/traffic")
    await page.shot("viewer traffic")
    changes = [route for route in ROUTES if route.changes and route.path != "/login"]
    for name in ("vera", "ada"):
        await log_in(page, name)
        refused = await _forged_posts(page, [route.path for route in changes])
        assert refused == {route.path: 403 for route in changes}, name
    await _another_sites_form_is_refused(page, gateway)
    audit = await gateway.fetch("SELECT action FROM console_audit ORDER BY id")
    assert {row["action"] for row in audit} == {"login"}  # no change but logging in


async def _another_sites_form_is_refused(page: Page, gateway: Gateway) -> None:
    """Cross-site request forgery in the browser itself: a page of another origin (another
    port: the same site, so even SameSite=Strict cookies go along) posts a form to end the
    admin's own session, without the token it cannot read. The console refuses it (Origin)
    and the session lives on."""
    (row,) = await gateway.fetch("SELECT max(id) AS id FROM console_sessions"
                                 " WHERE user_name = 'ada'")
    form = (f'<!doctype html><title>A prize</title><form method="post" '
            f'action="{page.base}/sessions/end"><input type="hidden" name="session" '
            f'value="{row["id"]}"><button type="submit">Claim the prize</button></form>')

    async def lure(_: web.Request) -> web.Response:
        return web.Response(text=form, content_type="text/html")

    application = web.Application()
    application.router.add_get("/", lure)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await page.visit(f"http://127.0.0.1:{port}/")
        await page.shot("another site's form")
        await page.press("Claim the prize")
        text = await page.text()
        assert "Refused" in text and "Nothing was changed." in text
        await page.shot("refused")
    finally:
        await runner.cleanup()
    await page.open("/")
    assert page.path == "/" and "ada (admin)" in await page.text()  # still logged in
    assert len(await gateway.fetch("SELECT id FROM console_sessions WHERE id = $1",
                                   row["id"])) == 1


async def _forged_posts(page: Page, paths: list[str]) -> dict[str, int]:
    """A POST to each path with the browser's cookies and the console's own Origin (so only
    the missing token can refuse it), as a script of another tab could send."""
    statuses = {}
    async with aiohttp.ClientSession(cookies=page.cookies()) as session:
        for path in paths:
            async with session.post(page.base + path, data={"id": "1", "proposal": "1"},
                                    headers={"Origin": page.base},
                                    allow_redirects=False) as response:
                told = "Nothing was changed." in await response.text()
                statuses[path] = response.status if told else -response.status
    return statuses


async def test_a_routing_change_proposed_diffed_approved_by_a_second_admin_routes_the_next(
        page: Page, gateway: Gateway) -> None:
    await use_table(gateway, FISH_ONLY)
    await declare(gateway, "DEC-MACH-1", "8471.30")  # unroutable under FISH_ONLY
    await log_in(page, "ada")
    await page.follow("Routing")
    await page.shot("routing before")
    await page.follow("Propose a change")
    await page.fill({"routing_yaml": UNKNOWN_AGENCY})
    await page.press("Check and propose")
    text = await page.text()
    assert "routing.yaml would be refused" in text and "treasury" in text
    assert "routing.yaml:13:" in text  # the error names the line
    await page.shot("refused with line numbers")
    await page.fill({"routing_yaml": MACHINERY_TO_TRADE, "days": "7"})
    await page.press("Check and propose")
    assert page.path.startswith("/routing/proposal?id=")
    proposal = page.path
    text = await page.text()
    assert "proposed" in text and "trade +1 message" in text.replace("\n", " ")
    assert "trade-receives-machinery" in text
    assert "Approve and apply" not in await page.change_buttons()  # not by its maker
    assert "another admin approves it" in text
    await page.shot("proposal with its diff")
    await log_out(page)

    await log_in(page, "vera")  # a viewer sees the proposal and may not decide it
    await page.open(proposal)
    assert "trade-receives-machinery" in await page.text()
    assert await page.change_buttons() == ["Log out"]
    await page.follow("Routing")
    assert "Propose a change" not in await page.text()
    await log_out(page)

    await log_in(page, "grace")
    await page.open(proposal)
    await page.shot("the second admin's view")
    await page.press("Approve and apply")
    await page.wait_for("applied", within="#state")
    text = await page.text()
    assert "routing.yaml written" in text and "grace" in text
    await page.shot("approved and applied")
    assert (gateway.files.root / "routing.yaml").read_text() == MACHINERY_TO_TRADE
    await page.follow("Routing")
    text = await page.text()
    assert "trade-receives-machinery" in text and "grace" in text
    await page.shot("routing after")

    await declare(gateway, "DEC-MACH-2", "8471.30")
    text = await open_timeline(page, "DEC-MACH-2")
    assert "message_routed" in text and '"agencies": ["trade"]' in text
    assert '"rules": ["trade-receives-machinery"]' in text
    await page.shot("the next declaration routed to trade")
    audit = await gateway.fetch("SELECT user_name, action FROM console_audit"
                                " WHERE action LIKE 'routing%' ORDER BY id")
    assert [(row["user_name"], row["action"]) for row in audit][-2:] == [
        ("ada", "routing_proposed"), ("grace", "routing_approved")]

