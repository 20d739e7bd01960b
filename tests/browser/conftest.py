"""Fixtures of the browser tests: Chromium (skipped loudly without it, failed in CI), a
page per test, and ``tasker serve`` per module and backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import (
    BACKENDS,
    CHROMIUM,
    CHROMIUM_ARGS,
    Dashboard,
    module_database,
    require_browser,
    serving,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module: Playwright's sync API keeps an event loop running in this
    thread while it lives, and tests elsewhere call asyncio.run (run_until_final)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; console errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module", params=BACKENDS)
def dashboard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """``tasker serve`` (authentication off) on a database of this module and backend."""
    require_browser()
    root = tmp_path_factory.mktemp(f"browser-{request.param}")
    with module_database(request, request.param, root) as url, serving(url, root) as server:
        yield server
