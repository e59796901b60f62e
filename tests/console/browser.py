"""A real Chromium for the console tests: Debian's ``chromium`` (never a browser downloaded by
``playwright install``), driven by Playwright for Python.

Missing, the browser tests skip with the reason, except under CI=true, where they fail.
Screenshots go to ``AGENT_TEST_CONSOLE_SCREENSHOTS`` (a directory; default a temporary one).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Response,
    ViewportSize,
    sync_playwright,
)

SCREENSHOTS_ENV = "AGENT_TEST_CONSOLE_SCREENSHOTS"
INSTALL_HINT = "Chromium is not installed (Debian: apt-get install chromium; scripts/test.sh does)"
VIEWPORT: ViewportSize = {"width": 1180, "height": 820}
WAIT_MS = 30_000
"""How long actions and assertions wait (a busy machine makes a run take seconds)."""


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium (the system's), closed afterwards."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


# Chromium logs every 4xx/5xx answer as a console error; answers are checked one by one instead.
_FAILED_LOAD = "Failed to load resource"
FEEDBACK_NOT_ARCHIVED = (409, re.compile(r"/feedback$"))
"""Feedback sent before the run is archived answers 409 + Retry-After; the page retries."""


@dataclass
class Tab:
    """A page in a fresh browser context (its own sessionStorage), with every console error,
    page error and error answer it met, except the ``expected`` (status, URL pattern) pairs: a
    CSP violation is a console error, so a test that ends with ``problems`` empty also proves
    the page ran under the policy."""

    page: Page
    base: str
    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, re.Pattern[str]]] = field(
        default_factory=lambda: [FEEDBACK_NOT_ARCHIVED]
    )

    def expect_error(self, status: int, url: str) -> None:
        """An error answer the test provokes (a wrong key, a missing route)."""
        self.expected.append((status, re.compile(url)))

    def watch(self) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" and not message.text.startswith(_FAILED_LOAD):
                self.problems.append(f"console: {message.text}")

        def on_response(response: Response) -> None:
            if response.status < 400:
                return
            path = response.url.split("?", 1)[0]
            if not any(s == response.status and p.search(path) for s, p in self.expected):
                self.problems.append(f"{response.request.method} {response.url}: {response.status}")

        def on_page_error(error: Error) -> None:
            self.problems.append(f"page error: {error}")

        self.page.on("console", on_console)
        self.page.on("response", on_response)
        self.page.on("pageerror", on_page_error)

    def open(self, route: str) -> None:
        self.page.goto(f"{self.base}/ui/#{route}")

    def screenshot(self, directory: Path, name: str) -> Path:
        path = directory / f"console-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def screenshots_dir(default: Path) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    directory = Path(chosen) if chosen else default
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def sign_in(tab: Tab, key: str, route: str = "/chat") -> None:
    """Open ``route`` (the console sends a signed-out user to the sign-in page) and sign in."""
    tab.open(route)
    tab.page.get_by_label("API key").fill(key)
    tab.page.get_by_role("button", name="Sign in").click()
