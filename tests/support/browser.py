"""Debian's chromium driven by Playwright for the browser tests: desktop and phone contexts, a login, what a page
must never do (Content-Security-Policy violations, sideways scrolling at phone width) and axe-core's verdict."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.db import connections
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

CHROMIUM = os.environ.get("VMPROV_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


class Browser:
    """One chromium for a test; every context (a person, a tab size) records what the policy refused."""

    def __init__(self, playwright):
        # launch() starts from a fresh, empty profile of its own every time.
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        self.csp_violations: list[str] = []
        self.contexts: list[BrowserContext] = []

    def context(self, **options) -> BrowserContext:
        context = self.browser.new_context(**{**DESKTOP, **options})
        context.on("console", self._console)
        self.contexts.append(context)
        return context

    def page(self, **options) -> Page:
        return self.context(**options).new_page()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.browser.close()


@contextmanager
def chromium(monkeypatch) -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop in this thread; the ORM calls here are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test installs it)")
    with sync_playwright() as playwright:
        browser = Browser(playwright)
        try:
            yield browser
        finally:
            browser.close()
            # ORM calls made while Playwright's event loop runs get connections of their own (Django keys them
            # by context there): close them, or PostgreSQL refuses to drop the test database.
            connections.close_all()
    assert browser.csp_violations == [], "the Content-Security-Policy refused something a page needs"


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page.locator("#id_username")).to_have_count(0)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sideways_overflow(page: Page) -> int:
    """How many pixels the page is wider than its viewport (0: nothing scrolls sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def serious_accessibility_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page, each as "rule: the elements it names"."""
    violations = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — " + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
