"""What the real-browser tests share: Debian's Chromium started by Playwright, a journey of pages checked for
buyer PII and screenshotted after each step, and a tenant's first owner made and enrolled as sellers do it.

"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.dashboard import PASSWORD, Authenticator, Clock, unique_email

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright browser on Debian's Chromium; the test is skipped where it isn't installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/bootstrap --tests installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Journey:
    """Pages of one or more browser contexts, screenshotted and checked for buyer PII after every step."""

    def __init__(self, base: str, folder: Path, pii: set[str]) -> None:
        self.base = base
        self.folder = folder
        self.pii = sorted(p for p in pii if p and len(p) >= 4)
        self.pages: list[Any] = []
        self.shots = 0

    def open(self, context: Any) -> Any:
        page = context.new_page()
        page.set_default_timeout(15_000)
        self.pages.append(page)
        return page

    def go(self, page: Any, path: str) -> None:
        page.goto(self.base + path)
        self.check()

    def check(self) -> None:
        for page in self.pages:
            html = page.content()
            for value in self.pii:
                assert value not in html, f"buyer PII in clear on {page.url}"

    def shot(self, page: Any, name: str) -> None:
        self.check()
        self.shots += 1
        page.screenshot(path=str(self.folder / f"{self.shots:02d}-{name}.png"), full_page=True)


def first_owner(runner: Any, slug: str, *tenant_args: str) -> tuple[str, str]:
    """A tenant made with ``tenants create`` and its first owner made with ``users create``: their e-mail and
    what creating the tenant printed."""
    created = runner.invoke(args=["tenants", "create", slug, "--name", "Sakura Trading 桜商事", *tenant_args])
    assert created.exit_code == 0, created.output
    email = unique_email("owner")
    result = runner.invoke(
        args=["users", "create", "--tenant", slug, "--email", email, "--name", "Aiko Owner"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    return email, created.output


def totp_secret(page: Any) -> str:
    """The TOTP secret the enrolment page shows."""
    return str(page.get_by_test_id("totp-secret").inner_text()).replace(" ", "")


def enrol(journey: Journey, page: Any, email: str, clock: Clock) -> Authenticator:
    """Sign in for the first time and set up TOTP; the page is left on the recovery codes."""
    journey.go(page, "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]:not([name])")
    page.wait_for_url(re.compile(r"/enrol$"))
    totp = Authenticator(totp_secret(page), clock)
    page.fill("input[name=code]", totp.code())
    page.click("button[type=submit]:not([name])")
    page.get_by_test_id("recovery-codes").wait_for()
    return totp
