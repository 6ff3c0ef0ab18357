"""Fixtures of the browser tests: one portal and one Chromium for the whole run, a fresh profile per test.

The tests need Debian's chromium and fonts-noto-cjk (``make browser-deps``, which ``.ci/run`` calls) and the
``playwright`` package of the dev extras. Playwright's own browser downloads are never used: Chromium is
launched from :data:`tests.browser.support.CHROMIUM`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.browser.support import CHROMIUM, Portal, csp_refusals, new_context, start_portal


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with start_portal(tmp_path_factory.mktemp("portal")) as running_portal:
        yield running_portal


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (Debian's chromium and fonts-noto-cjk)")
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser, portal: Portal) -> Iterator[BrowserContext]:
    """A fresh browser profile on the registered terminal (its client certificate), Japanese.

    Every request the pages make must go to the portal itself (nothing is loaded from elsewhere), and nothing
    on them may break the Content-Security-Policy (no inline script or style, no eval: htmx is configured so).
    """
    portal.world.clock.advance(seconds=30)  # a fresh TOTP step for each test's first login
    profile = new_context(browser, portal)
    elsewhere: list[str] = []
    profile.on("request", lambda r: None if _ours(r.url, portal) else elsewhere.append(r.url))
    refused = csp_refusals(profile)
    yield profile
    profile.close()
    assert elsewhere == [], "the pages loaded something from outside the portal"
    assert refused == [], "the pages broke their own Content-Security-Policy"


def _ours(url: str, portal: Portal) -> bool:
    return url.startswith((portal.base_url + "/", "data:", "blob:", "about:"))


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
