"""Fixtures of the console tests: one Chromium per module, a fresh browser context per test
(``tab``, on the module's ``console_url``), and the screenshot directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.console.browser import VIEWPORT, WAIT_MS, Tab, chromium, screenshots_dir


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Assertions wait as long as actions: the machine may be busy (a run takes seconds then).
    expect.set_options(timeout=WAIT_MS)
    with chromium() as opened:
        yield opened


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshots_dir(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def tab(browser: Browser, console_url: str) -> Iterator[Tab]:
    """A page of its own (fresh sessionStorage); the test fails on any problem it met."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(WAIT_MS)
    opened = Tab(context.new_page(), console_url)
    opened.watch()
    try:
        yield opened
        assert opened.problems == []
    finally:
        context.close()
