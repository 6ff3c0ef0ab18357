"""Logging in from the registered terminal in real Chromium: with a TOTP code, and with the staff card.

The terminal's client certificate is presented in the TLS handshake (Playwright's ``client_certificates``);
the card is Chromium's virtual WebAuthn authenticator, driven by the portal's own ``webauthn.js``.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from renkei.hub.access.people import Role
from tests.browser.support import (
    Portal,
    axe_violations,
    check_page,
    csp_refusals,
    designate,
    enter_code,
    logout,
    new_context,
    password_step,
    virtual_card,
)


def test_a_designated_analyst_logs_in_with_a_totp_code(page: Page, portal: Portal) -> None:
    analyst = portal.staff[Role.ANALYST]
    page.goto("/login")
    expect(page.locator(".warning")).to_have_count(0)  # the terminal's certificate was recognised
    check_page(page, "login")
    password_step(page, analyst)
    expect(page.get_by_role("heading", name="確認コード")).to_be_visible()
    check_page(page, "login-totp")
    expect(page.get_by_label("確認コード")).to_be_focused()
    enter_code(page, portal, analyst)
    expect(page.locator("header .who")).to_contain_text("分析 三郎")
    expect(page.locator("header .who")).to_contain_text("term-01")
    check_page(page, "analyst-home")
    logout(page)


def test_the_admin_registers_a_staff_card_and_logs_in_with_it(page: Page, portal: Portal) -> None:
    # A second admin, so that the demo admin keeps TOTP for the other tests.
    admin = designate(portal.world, "card-admin", "政策 一子", Role.ADMIN, "政策調査課", must_change=False)
    ticket = portal.world.card_ticket(admin)  # what `renkei user card-ticket` hands over
    virtual_card(page)
    page.goto("/login")
    page.get_by_role("link", name=re.compile("職員証を登録する")).click()
    page.get_by_label("利用者ID").fill(admin.login_id)
    page.get_by_label("パスワード", exact=True).fill(admin.password)
    page.get_by_label("登録チケット").fill(ticket)
    check_page(page, "card-enroll")
    page.get_by_role("button", name="次へ").click()
    check_page(page, "card-enroll-ceremony")
    page.get_by_role("button", name="職員証を登録する").click()
    expect(page.get_by_text("職員証を登録しました")).to_be_visible()
    check_page(page, "card-enroll-done")

    password_step(page, admin)
    expect(page.get_by_role("heading", name="職員証による認証")).to_be_visible()
    check_page(page, "login-card")
    page.get_by_role("button", name="職員証で認証する").click()
    expect(page.locator("header .who")).to_contain_text("政策 一子")
    check_page(page, "admin-home")


def test_the_accessibility_check_finds_a_field_without_a_label(page: Page) -> None:
    """check_page's axe-core run is live: an unlabelled field on a page is a critical violation."""
    page.set_content('<!doctype html><html lang="ja"><title>t</title><main><input name="x"></main></html>')
    assert "label" in {v["id"] for v in axe_violations(page)}


def test_the_csp_check_sees_an_inline_script(browser: Browser, portal: Portal) -> None:
    """The fixtures' CSP check is live: an inline script on a portal page is refused and reported."""
    profile = new_context(browser, portal)
    refused = csp_refusals(profile)
    page = profile.new_page()
    page.goto("/login")
    with page.expect_console_message():  # Chromium's report of the refusal
        page.evaluate(
            "() => document.body.appendChild(document.createElement('script')).textContent = 'x = 1'"
        )
    profile.close()
    assert any("inline" in message for message in refused), refused
