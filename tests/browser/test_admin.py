"""The admin's and the auditor's jobs in Chromium: the admin designates a user and registers a terminal; the
auditor opens the monthly inspection report. Each page is screenshotted and checked with axe-core."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from renkei.clock import JST
from renkei.hub.access.people import Role
from tests.browser.support import Portal, check_page, login_with_totp, new_context


def test_the_admin_designates_a_user_and_registers_a_terminal(browser: Browser, portal: Portal) -> None:
    context = new_context(browser, portal)
    page = context.new_page()
    login_with_totp(page, portal, portal.staff[Role.ADMIN])
    page.get_by_role("link", name="管理", exact=True).click()
    expect(page.get_by_role("heading", name="基盤の状態")).to_be_visible()
    expect(page.locator("main")).to_contain_text("disclosure.threshold")
    check_page(page, "admin-status")

    page.get_by_role("link", name="指名職員と部署").click()
    form = page.locator('form[action="/admin/users"]')
    form.get_by_label("利用者ID").fill("tanaka-newcomer")
    form.get_by_label("氏名").fill("田中 一郎（こども家庭局 こども未来課 子育て支援係）")
    form.locator('select[name="role"]').select_option("analyst")
    form.get_by_role("button", name="指名する").click()
    expect(page.get_by_role("status")).to_contain_text("tanaka-newcomer を指名しました")
    expect(page.locator("code.secret")).to_be_visible()
    check_page(page, "admin-designated")
    page.get_by_role("link", name="一覧に戻る").click()
    expect(page.get_by_role("cell", name="tanaka-newcomer", exact=True)).to_be_visible()
    check_page(page, "admin-users")

    page.get_by_role("navigation", name="管理メニュー").get_by_role("link", name="専用端末").click()
    page.get_by_label("端末名").fill("kobe-chuo-pc-12")
    page.get_by_role("button", name="登録して証明書を発行する").click()
    expect(page.get_by_role("status")).to_contain_text("端末 kobe-chuo-pc-12 を登録しました")
    fingerprint = page.locator("code.fingerprint").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint), fingerprint
    check_page(page, "admin-terminal-registered")
    page.get_by_role("link", name="一覧に戻る").click()
    expect(page.locator("main")).to_contain_text(fingerprint)
    check_page(page, "admin-terminals")
    context.close()


def test_the_auditor_opens_the_monthly_inspection_report(browser: Browser, portal: Portal) -> None:
    context = new_context(browser, portal)
    page = context.new_page()
    auditor = portal.staff[Role.AUDITOR]
    login_with_totp(page, portal, auditor)
    page.get_by_role("link", name="月次点検").click()
    month = f"{portal.world.entries()[-1].at.astimezone(JST):%Y-%m}"  # the audit log's own clock
    page.get_by_label("点検する月").fill(month)
    page.get_by_role("button", name="表示する").click()
    expect(page.get_by_role("heading", name=f"監査ログ月次点検報告書（{month}）")).to_be_visible()
    expect(page.locator("article.inspection")).to_contain_text(auditor.login_id)
    expect(page.get_by_role("link", name="PDF で保存")).to_have_attribute(
        "href", f"/audit/inspection.pdf?month={month}"
    )
    check_page(page, "auditor-inspection")
    page.emulate_media(media="print")  # what the printer gets: the report alone
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.get_by_role("button", name="表示する")).to_be_hidden()
    page.screenshot(path=str(_screenshots() / "auditor-inspection-print.png"), full_page=True)
    context.close()


def _screenshots() -> Path:
    from tests.browser.support import SCREENSHOTS  # noqa: PLC0415

    return SCREENSHOTS
