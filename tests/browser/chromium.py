"""Debian's headless Chromium driven through Selenium and Debian's chromedriver, for the
console's browser tests.  Nothing is downloaded: the browser and the driver are named by path,
and Selenium Manager (which would fetch a driver) is made to fail loudly if anything calls it.

Selenium's calls block, and the gateway under test runs in the test's event loop, so every
call of ``Page`` runs in a thread (``asyncio.to_thread``) while the loop keeps serving."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
#: What headless Chromium needs on these machines (no sandbox as root in a container, no GPU),
#: and no traffic of its own: no QUIC, updates, sync, first-run pages or background fetches.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")
WIDTH = 1280
#: How long a step may take to show (a page load, a reload applied): generous, never a timing
#: assertion, only a bound on a hang.
WAIT_SECONDS = 20.0
T = TypeVar("T")


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return (f"{path} is missing: install Debian's {package} package "
                    f"(make browser, as root on Debian)")
    return None


def _forbid_selenium_manager() -> None:
    """Selenium Manager downloads drivers and browsers; with both paths given it is never
    needed, and a call to it is a bug of this module, not something to tolerate."""
    from selenium.webdriver.common import selenium_manager

    def refuse(*_: object, **__: object) -> Any:
        raise AssertionError("Selenium Manager was invoked: the browser tests must use "
                             f"{CHROMIUM} and {CHROMEDRIVER} only")

    selenium_manager.SeleniumManager.binary_paths = refuse  # type: ignore[method-assign]


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """One headless Chromium with a fresh profile folder, quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _forbid_selenium_manager()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The browser as a user works it: open a path, fill fields by name, press a button by its
    label, read the text; a screenshot of each step (``shot``) into ``shots``."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots
        self._taken = 0

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.to_thread(call)

    async def open(self, path: str) -> None:
        await self.visit(self.base + path)

    async def visit(self, url: str) -> None:
        """Opens any address (another site's page, say)."""
        await self._run(lambda: self.driver.get(url))

    @property
    def path(self) -> str:
        url: str = self.driver.current_url
        return url.removeprefix(self.base)

    async def fill(self, fields: dict[str, str]) -> None:
        """Types into the fields named so (text inputs and textareas are cleared first;
        selects take the option with that value or text)."""
        def fill_once() -> None:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support.select import Select
            for name, value in fields.items():
                field = self.driver.find_element(By.NAME, name)
                if field.tag_name == "select":
                    _select(Select(field), value)
                    continue
                field.clear()
                field.send_keys(value)

        def fill() -> None:
            """Once more on a page that Chromium swapped under the fields found (seen once
            on a loaded machine: 'Node with given id does not belong to the document')."""
            from selenium.common.exceptions import WebDriverException
            for attempt in range(3):
                try:
                    fill_once()
                    return
                except WebDriverException as exc:
                    if not _replaced(exc) or attempt == 2:
                        raise
                    time.sleep(0.2)
        await self._run(fill)

    async def press(self, label: str, *, within: str | None = None) -> None:
        """Clicks the first button reading ``label`` (inside the element matching the CSS
        selector ``within``, if given) and waits for the page it leads to."""
        def press() -> None:
            from selenium.webdriver.common.by import By
            scope = self.driver if within is None else self.driver.find_element(
                By.CSS_SELECTOR, within)
            self._click_and_wait(_button(scope, label))
        await self._run(press)

    async def follow(self, text: str) -> None:
        """Follows the first link whose text is ``text`` and waits for the page."""
        def follow() -> None:
            from selenium.webdriver.common.by import By
            self._click_and_wait(self.driver.find_element(By.LINK_TEXT, text))
        await self._run(follow)

    def _click_and_wait(self, element: Any) -> None:
        """A click does not wait for the page it opens: wait until the page clicked on is
        gone (its root element stale), or the next read may still see it."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.wait import WebDriverWait
        before = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, WAIT_SECONDS).until(lambda _: _gone(before))

    async def text(self, within: str = "body") -> str:
        """The text the page shows (of the element matching the CSS selector ``within``)."""
        def text() -> str:
            from selenium.webdriver.common.by import By
            shown: str = self.driver.find_element(By.CSS_SELECTOR, within).text
            return shown
        return await self._run(text)

    async def change_buttons(self) -> list[str]:
        """The labels of the buttons of every form that posts (a change) on the page."""
        def buttons() -> list[str]:
            from selenium.webdriver.common.by import By
            found = self.driver.find_elements(
                By.CSS_SELECTOR, "form[method=post] button, form[method=post] input[type=submit]")
            return [(b.text or b.get_attribute("value") or "").strip() for b in found]
        return await self._run(buttons)

    async def post_forms(self) -> list[str]:
        """The action of every form that posts (a change) on the page."""
        def forms() -> list[str]:
            from selenium.webdriver.common.by import By
            found = self.driver.find_elements(By.CSS_SELECTOR, "form[method=post]")
            return [(f.get_attribute("action") or "").removeprefix(self.base) for f in found]
        return await self._run(forms)

    async def wait_for(self, wanted: str, *, within: str = "body", reload: bool = True
                       ) -> str:
        """The page's text (``within``'s) once it contains ``wanted`` (reloading the page
        meanwhile: the gateway works in the background), or an AssertionError after
        WAIT_SECONDS."""
        for _ in range(int(WAIT_SECONDS / 0.25)):
            text = await self.text(within)
            if wanted in text:
                return text
            await asyncio.sleep(0.25)
            if reload:
                await self._run(self.driver.refresh)
        raise AssertionError(f"{wanted!r} never showed on {self.path}:\n{text}")

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.driver.get_cookies()}

    async def shot(self, step: str) -> Path:
        """A PNG of the whole page (the window stretched to the page's height) as
        ``NN-step.png``: the test's artefacts, kept after the run."""
        self._taken += 1
        path = self.shots / f"{self._taken:02d}-{_slug(step)}.png"

        def shoot() -> None:
            height = self.driver.execute_script(
                "return document.documentElement.scrollHeight")
            self.driver.set_window_size(WIDTH, max(600, min(int(height) + 120, 8000)))
            self.driver.save_screenshot(str(path))
        self.shots.mkdir(parents=True, exist_ok=True)
        await self._run(shoot)
        return path


def _select(select: Any, value: str) -> None:
    from selenium.common.exceptions import NoSuchElementException
    try:
        select.select_by_value(value)
    except NoSuchElementException:
        select.select_by_visible_text(value)


def _button(scope: Any, label: str) -> Any:
    from selenium.webdriver.common.by import By
    for button in scope.find_elements(
            By.CSS_SELECTOR, "button, input[type=submit], input[type=button]"):
        if (button.text or button.get_attribute("value") or "").strip() == label:
            return button
    raise AssertionError(f"no button {label!r} on the page")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _replaced(exc: Exception) -> bool:
    """Whether Selenium says the element's page is gone: a stale element, or what Chromium
    156's driver answers instead when the node left the document ('Node with given id does
    not belong to the document', an "unknown error")."""
    from selenium.common.exceptions import StaleElementReferenceException
    return isinstance(exc, StaleElementReferenceException) or (
        "does not belong to the document" in str(exc))


def _gone(element: Any) -> bool:
    """expected_conditions.staleness_of, knowing Chromium's other way of saying it."""
    from selenium.common.exceptions import WebDriverException
    try:
        element.is_enabled()
    except WebDriverException as exc:
        if _replaced(exc):
            return True
        raise
    return False
