"""The browser for the page tests: the system's Chromium under Playwright, one per module.

Module scope, not session: while Playwright's sync API is active it marks the main thread's event
loop as running, and session fixtures such as ``telegram_bot`` start with ``asyncio.run``. A test
asks for those before ``browser`` (pytest sets up wider scopes first).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Imported here so that the route tests need no browser; the browser tests import the same
    # module at the top and fail to collect, saying what to install, without Playwright.
    from tests.web.browsing import launch, sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
