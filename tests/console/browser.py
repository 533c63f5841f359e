"""Debian's chromium, headless, driven by Playwright for Python (never Playwright's own
browser download), for the console's end-to-end tests; screenshots land in
``out/test-artifacts/console/`` for people to look at."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright
from support import ARTIFACTS, CHROMIUM_FLAGS, chromium

SHOTS = ARTIFACTS / "console"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@contextmanager
def browser() -> Iterator[Browser]:
    executable = chromium()  # skips (or fails under CI=true) without Debian's chromium
    with sync_playwright() as pw:
        found = pw.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_FLAGS), headless=True
        )
        try:
            yield found
        finally:
            found.close()


def shot(page: Page, name: str, full_page: bool = False) -> Path:
    """The screen as the person sees it (or the whole page: long lists make unreadable
    pictures, so only when asked)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def log_in(page: Page, base: str, name: str, password: str) -> None:
    page.goto(base + "login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def no_horizontal_scroll(page: Page) -> bool:
    """Nothing wider than the screen: the page does not scroll sideways."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def until(page: Page, expression: str, timeout: float = 20.0) -> None:
    """Poll a JavaScript expression until it is true. Playwright's ``wait_for_function``
    evaluates strings with ``eval`` inside the page, which the console's CSP forbids (as it
    should); ``evaluate`` runs outside the page's policy."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"never true: {expression}")
        page.wait_for_timeout(100)
