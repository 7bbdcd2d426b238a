"""Playwright and the system's Chromium for the browser tests: hard requirements, never skipped.

Playwright is a dev dependency (``pip install -e ".[dev]"``) and ``make browser`` installs
``/usr/bin/chromium``; Playwright is always given that executable and never downloads a browser.
Without either, the browser tests fail and say what to install.

``watch(page, origin)`` records what must never happen on the page: a JavaScript error, an error
in the console, an ``alert()`` (hostile text that ran), a request to another origin, and (unless
the test provokes them) failed requests and answers with an error status.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Browser, Locator, Page, Playwright, expect, sync_playwright
except ImportError as exc:  # a hard requirement: fail, with what to do
    raise ImportError(
        "The browser tests need Playwright, a dev dependency: run `make setup` or "
        "`.venv/bin/pip install -e '.[dev]'` (no browser download is needed)."
    ) from exc

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "screenshots"

__all__ = [
    "CHROMIUM",
    "SCREENSHOTS",
    "Browser",
    "Locator",
    "Page",
    "Watch",
    "expect",
    "launch",
    "sync_playwright",
    "watch",
]


def launch(playwright: Playwright) -> Browser:
    """Headless ``/usr/bin/chromium``; a clear failure when it is not there or does not start."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"The browser tests need {CHROMIUM}: run `make browser` "
            "(apt-get install -y chromium fonts-noto-cjk). Playwright never downloads one here.",
            pytrace=False,
        )
    try:
        return playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
    except Exception as exc:
        pytest.fail(f"{CHROMIUM} did not start under Playwright: {exc}", pytrace=False)


@dataclass
class Watch:
    """What went wrong on a page; ``problems`` must stay empty."""

    origin: str
    strict_network: bool
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def watch(
    page: Page, origin: str, *, strict_network: bool = True, confirms: Collection[str] = ()
) -> Watch:
    """Record the page's problems. ``strict_network=False`` allows failed and refused requests
    (for a test that cuts the server off on purpose); other origins are never allowed. A
    ``confirm()`` whose question is in ``confirms`` is the page asking before an irreversible
    action: it is answered OK, as the person would; any other dialog is a problem."""
    seen = Watch(origin.rstrip("/"), strict_network)

    def on_dialog(dialog) -> None:  # type: ignore[no-untyped-def]
        if dialog.type == "confirm" and dialog.message in confirms:
            dialog.accept()
            return
        seen.problems.append(f"dialog: {dialog.message}")  # an alert() ran: hostile text executed
        dialog.dismiss()

    def on_console(message) -> None:  # type: ignore[no-untyped-def]
        if message.type != "error":
            return
        if not strict_network and "Failed to load resource" in message.text:
            return  # a request the test aborted
        seen.problems.append(f"console error: {message.text}")

    def on_request(request) -> None:  # type: ignore[no-untyped-def]
        seen.requests.append(request.url)
        url = request.url
        local = url == seen.origin or url.startswith((f"{seen.origin}/", "data:", "blob:"))
        if not local:
            seen.problems.append(f"request to another origin: {url}")

    def on_failed(request) -> None:  # type: ignore[no-untyped-def]
        failure = request.failure or ""
        # A long poll the page itself cancels (it switched chats) is aborted, not failed.
        if seen.strict_network and "ERR_ABORTED" not in failure:
            seen.problems.append(f"request failed: {request.method} {request.url} {failure}")

    def on_response(response) -> None:  # type: ignore[no-untyped-def]
        if seen.strict_network and response.status >= 400:
            method = response.request.method
            seen.problems.append(f"HTTP {response.status}: {method} {response.url}")

    page.on("pageerror", lambda exc: seen.problems.append(f"page error: {exc}"))
    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    return seen
