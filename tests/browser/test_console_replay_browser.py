"""An unroutable message replayed from the console's Attention page in headless Chromium
(issue 14, "Show"), once routing.yaml routes it: a viewer sees it and may not act, an operator
replays it, and its timeline shows where it went.  Screenshots: test-artifacts/browser/<test>/."""

from __future__ import annotations

import pytest

from tests.browser.chromium import Page
from tests.browser.conftest import (
    FISH_ONLY,
    MACHINERY_TO_TRADE,
    declare,
    log_in,
    log_out,
    open_timeline,
    use_table,
)
from tests.support.harness import Gateway

pytestmark = pytest.mark.integration


async def test_an_operator_replays_an_unroutable_message_after_the_table_changed(
        page: Page, gateway: Gateway) -> None:
    await use_table(gateway, FISH_ONLY)
    await declare(gateway, "DEC-MACH-3", "8471.30")  # unroutable under FISH_ONLY
    await log_in(page, "vera")
    await page.follow("Attention")
    text = await page.text()
    assert "CUSDEC DEC-MACH-3" in text and "no routing rule matched" in text
    assert await page.change_buttons() == ["Log out"]  # a viewer sees, never acts
    await page.shot("the viewer's attention page")
    await log_out(page)

    await use_table(gateway, MACHINERY_TO_TRADE)  # ops fixed routing.yaml
    await log_in(page, "otto")
    await page.follow("Attention")
    assert await page.change_buttons() == ["Log out", "Replay"]
    await page.shot("the operator's attention page")
    await page.press("Replay", within="#unroutable")
    assert "(DEC-MACH-3): routed to trade" in await page.text()
    assert "Replay" not in await page.change_buttons()  # done, nothing left to replay
    await page.shot("replayed")
    text = await open_timeline(page, "DEC-MACH-3")
    assert '"what": "unroutable message"' in text and '"to": ["trade"]' in text
    await page.shot("the replayed declaration's timeline")
    audit = await gateway.fetch("SELECT user_name, role FROM console_audit"
                                " WHERE action LIKE '%replay%' ORDER BY id")
    assert [(row["user_name"], row["role"]) for row in audit] == [("otto", "operator")]
