"""Fixtures of the browser tests: one headless Chromium for the whole run (skipped, with the
reason, where Debian's chromium or chromium-driver is missing), a gateway of the test's own
with its console and users, and a Page on that console whose screenshots go to
test-artifacts/browser/<test>/ (BROWSER_ARTIFACTS overrides the folder)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.console_users import ConsoleUser, Role, UsersFile
from gateway.console.auth import cost_of
from gateway.security.passwords import hash_password
from tests.browser.chromium import WAIT_SECONDS, Page, chromium, unavailable
from tests.support.console import console_gateway, settings
from tests.support.edifact import cusdec_message, interchange
from tests.support.harness import Gateway

ARTEFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", Path(__file__).resolve().parents[2]
                                / "test-artifacts" / "browser"))
#: Two admins (maker and checker of a routing change), an operator and a viewer.
USERS = {"ada": (Role.admin, "ada-admin-password-1"),
         "grace": (Role.admin, "grace-admin-password-2"),
         "otto": (Role.operator, "otto-operator-password-3"),
         "vera": (Role.viewer, "vera-viewer-password-4")}


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no browser: {reason}")
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as running:
        yield running


def console_users() -> UsersFile:
    cost = cost_of(settings())
    return UsersFile(users=tuple(
        ConsoleUser(name=name, role=role, password_hash=hash_password(password, cost))
        for name, (role, password) in USERS.items()))


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """``gateway serve`` in this event loop (tests/support/harness.py) with SFTP, the
    console on a free port, and routing.yaml changes applied after 0.2 s."""
    async for running in console_gateway(tmp_path, console_users(),
                                         routing_settle_seconds=0.2):
        yield running


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    folder = ARTEFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[pytest.TestReport]:
    """Keeps each phase's report on the test, for ``page`` to see whether the test failed."""
    report: pytest.TestReport = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def page(driver: Any, gateway: Gateway, shots: Path,
               request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    assert gateway.running is not None and gateway.running.console_port is not None
    opened = Page(driver, f"http://127.0.0.1:{gateway.running.console_port}", shots)
    await opened.open("/login")
    # Cookies belong to the host, not the port: a session of an earlier test's console
    # would otherwise come along.
    await asyncio.to_thread(driver.delete_all_cookies)
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:  # what the browser showed when it failed
        await opened.shot("failed")
        (shots / "failed.html").write_text(await asyncio.to_thread(lambda: driver.page_source))


async def log_in(page: Page, name: str, password: str | None = None) -> None:
    await page.open("/login")
    await page.fill({"name": name, "password": password or USERS[name][1]})
    await page.press("Log in")


async def log_out(page: Page) -> None:
    await page.press("Log out")


async def use_table(gateway: Gateway, text: str) -> None:
    """Puts ``text`` in routing.yaml as an operator would (a new file renamed over it) and
    waits until the gateway has applied it (its version recorded as applied)."""
    path = gateway.files.root / "routing.yaml"
    fresh = path.with_suffix(".yaml.new")
    fresh.write_text(text)
    fresh.replace(path)
    wanted = hashlib.sha256(text.encode()).hexdigest()
    for _ in range(int(WAIT_SECONDS / 0.1)):
        rows = await gateway.fetch("SELECT sha256 FROM routing_versions WHERE status ="
                                   " 'applied' ORDER BY id DESC LIMIT 1")
        if rows and rows[0]["sha256"] == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the routing table written was never applied")


#: The test's table before the change: declarations of fish (HS chapter 03) go to customs, and
#: nothing else has a route, so a declaration of machinery (chapter 84) is unroutable.
FISH_ONLY = """version: 1
rules:
  - name: customs-receives-fish
    match:
      kind: CustomsDeclaration
      hs_chapters: ["03"]
    deliver: [customs]
"""
#: The change: the trade authority receives declarations of machinery.
MACHINERY_TO_TRADE = FISH_ONLY + """
  - name: trade-receives-machinery
    match:
      kind: CustomsDeclaration
      hs_chapters: ["84"]
    deliver: [trade]
"""
#: A change the check refuses: an agency that agencies.yaml does not know, on line 13.
UNKNOWN_AGENCY = MACHINERY_TO_TRADE.replace("deliver: [trade]", "deliver: [treasury]")


async def declare(gateway: Gateway, declaration: str, commodity: str) -> None:
    """A one-declaration interchange uploaded by van-a over SFTP, and its answer awaited."""
    name = f"{declaration.lower()}.edi"
    data = interchange([cusdec_message(declaration=declaration, commodity_codes=(commodity,))],
                       sender="VANA", control_reference=declaration.replace("-", "")[:14])
    await gateway.upload("van-a", name, data)
    await gateway.answers("van-a", name)


async def open_timeline(page: Page, declaration: str) -> str:
    """Searches Traffic for the declaration and opens its timeline; the timeline's text."""
    await page.open("/traffic")
    await page.fill({"reference": declaration})
    await page.press("Search")
    await page.follow(declaration)
    assert page.path.startswith("/timeline?message=")
    return await page.text()

