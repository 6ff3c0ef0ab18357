"""What a newcomer hit walking through the portal as each demo role (issue 10, item 7), each point checked in
Chromium: layout, wording, navigation, confirmations and the session's edges.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from renkei.hub.access.people import Role
from tests.browser.support import (
    Portal,
    check_page,
    designate,
    enter_code,
    login_with_totp,
    logout,
    new_context,
    password_step,
)

PHONE = {"width": 390, "height": 844}
RAW_PYDANTIC = ("List should have", "unable to parse", "less than or equal", "Field required", "Value error")


def apply(page: Page, purpose: str, *, period: str = "juki:2026-03-31", action: str = "申請する") -> int:
    """Fill in the application form as an analyst does and press ``action``; returns the application's id."""
    page.goto("/applications/new")
    page.locator(f'input[value="{period}"]').check()
    page.get_by_label("目的").fill(purpose)
    page.get_by_label("想定する成果物").fill("区別の転出率の集計表")
    page.get_by_role("button", name=action).click()
    page.wait_for_url(re.compile(r"/applications/\d+\?done="))
    found = re.search(r"/applications/(\d+)", page.url)
    assert found, page.url
    return int(found.group(1))


def checkbox_layout(page: Page) -> list[dict[str, float]]:
    """For each checkbox label: how far the box is from the label's left edge, and the two heights."""
    layout: list[dict[str, float]] = page.evaluate(
        """() => [...document.querySelectorAll("label.choice")].map(label => {
            const box = label.querySelector("input").getBoundingClientRect();
            const whole = label.getBoundingClientRect();
            return {dx: box.left - whole.left, box: box.height, label: whole.height};
        })"""
    )
    return layout


def wrapped_cells(page: Page) -> list[str]:
    """Table headings and one-line cells (ids, dates, states) that the browser broke over several lines."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("th, td.nowrap")].filter(cell => {
            const text = document.createRange();
            text.selectNodeContents(cell);  // the text's own height, not the row's
            return text.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(cell).lineHeight);
        }).map(cell => cell.textContent.trim())"""
    )
    return found


def overflow(page: Page) -> dict[str, Any]:
    sizes: dict[str, Any] = page.evaluate(
        """() => ({page: document.documentElement.scrollWidth,
                   main: document.querySelector("main").getBoundingClientRect().right})"""
    )
    return sizes


def test_an_analyst_applies_with_a_form_that_reads_right(page: Page, portal: Portal) -> None:
    analyst = portal.staff[Role.ANALYST]
    login_with_totp(page, portal, analyst)
    expect(page.get_by_role("link", name="ホーム")).to_have_attribute("aria-current", "page")
    page.goto("/applications/new")
    for box in checkbox_layout(page):  # each checkbox before its text, on the same line
        assert box["dx"] < 8 and box["label"] < 2.5 * box["box"], box  # 4 px: the checkbox's own margin
    expect(page.get_by_text("所管課にデータ管理者がいないため")).to_have_count(1)  # kokuho: no steward
    check_page(page, "application-form")

    page.get_by_label("目的").fill("転出傾向の分析（データセットを選び忘れた）")
    page.get_by_label("想定する成果物").fill("集計表")
    page.get_by_role("button", name="申請する").click()
    problem = page.locator(".problem")
    expect(problem).to_contain_text("「利用するデータセット」を 1 つ以上選んでください")
    for raw in RAW_PYDANTIC:
        expect(problem).not_to_contain_text(raw)
    expect(page.get_by_label("目的")).to_have_value("転出傾向の分析（データセットを選び忘れた）")
    check_page(page, "application-form-invalid")
    page.goto("/applications/new?lang=en")
    page.get_by_label("Purpose").fill("Out-migration by ward")
    page.get_by_label("Intended outputs").fill("Tables")
    page.get_by_role("button", name="Submit application").click()
    english = page.locator(".problem p").first.inner_text()
    assert english.startswith("Invalid input: Choose at least 1 for Datasets"), english
    page.goto("/applications/new?lang=ja")

    draft = apply(page, "下書きのまま置いておく申請", action="下書き保存")
    expect(page.get_by_role("status")).to_contain_text(f"申請 {draft} を下書きとして保存しました")
    expect(page.locator("td .state")).to_have_text(["未提出"])  # not 審査待ち: nobody has it yet
    check_page(page, "application-draft")
    page.get_by_role("link", name="下書きを直す").click()  # a draft can be rewritten
    expect(page.get_by_label("目的")).to_have_value("下書きのまま置いておく申請")
    expect(page.locator('input[value="juki:2026-03-31"]')).to_be_checked()
    page.locator('input[value="juki:2025-03-31"]').check()
    page.get_by_label("目的").fill("下書きを書き直した申請")
    check_page(page, "application-edit")
    page.get_by_role("button", name="下書き保存").click()
    expect(page.get_by_role("status")).to_contain_text(f"申請 {draft} を下書きとして保存しました")
    expect(page.locator("dl.facts")).to_contain_text("下書きを書き直した申請")
    expect(page.locator("main table")).to_contain_text("juki 2025-03-31 v1")

    submitted = apply(page, "区ごとの転出傾向の分析")
    expect(page.get_by_role("status")).to_contain_text(f"申請 {submitted} を提出しました")
    expect(page.locator("td .state")).to_have_text(["審査待ち"])
    page.get_by_label("取下げの理由（任意）").fill("別の方法で分析します")
    page.get_by_role("button", name="取り下げる").click()
    expect(page.get_by_role("status")).to_contain_text(f"申請 {submitted} を取り下げました")
    expect(page.locator("td .state")).to_have_text(["審査なし（申請は終了）"])
    check_page(page, "application-withdrawn")

    page.goto("/applications")
    expect(page.locator("td .state").first).to_have_text("取下げ")
    page.set_viewport_size(PHONE)
    check_page(page, "applications-390px")
    assert wrapped_cells(page) == []
    sizes = overflow(page)
    assert sizes["page"] <= PHONE["width"] and sizes["main"] <= PHONE["width"], sizes


def test_the_catalog_shows_each_dataset_and_its_columns_as_a_page(page: Page, portal: Portal) -> None:
    login_with_totp(page, portal, portal.staff[Role.ANALYST])
    page.get_by_role("link", name="データカタログ").click()
    expect(page.get_by_role("heading", name="国保年金医療課")).to_be_visible()
    check_page(page, "catalog")
    page.get_by_role("link", name=re.compile("住民基本台帳")).click()
    columns = page.locator("table").last
    expect(columns).to_contain_text("仮名ID化（個人）")
    expect(columns).to_contain_text("年齢化")
    expect(columns).to_contain_text("住所の丸め")
    expect(page.locator("main")).not_to_contain_text('{"')  # metadata as a page, not JSON
    check_page(page, "dataset-juki")
    favicon = page.request.get(
        "/favicon.ico"
    )  # as the browser fetches it (opening it shows Chromium's viewer)
    assert favicon.status == 200 and favicon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert favicon.body()[:4] == b"\x00\x00\x01\x00"  # an icon file


def test_a_steward_decides_with_confirmations_and_clear_wording(
    browser: Browser, page: Page, portal: Portal
) -> None:
    login_with_totp(page, portal, portal.staff[Role.ANALYST])
    first = apply(page, "子育て世帯の転入分析")
    second = apply(page, "高齢者の単身世帯の分析")

    steward_context = new_context(browser, portal)
    steward = steward_context.new_page()
    login_with_totp(steward, portal, portal.staff[Role.STEWARD])
    expect(steward.get_by_text(re.compile(r"\d+ 件の申請があなたの審査を待っています"))).to_be_visible()
    check_page(steward, "steward-home")
    steward.goto(f"/applications/{second}")  # left open while the same steward decides elsewhere
    stale = steward_context.new_page()
    stale.goto(f"/applications/{second}")

    steward.goto("/reviews")
    check_page(steward, "reviews")
    card = steward.locator("section.card", has=steward.get_by_role("link", name=f"利用申請 {first}"))
    card.get_by_label("承認のコメント（任意）").fill("目的・範囲とも妥当です")
    card.get_by_role("button", name="承認する").click()
    expect(steward.get_by_role("status")).to_contain_text(f"申請 {first} を承認しました")
    card = steward.locator("section.card", has=steward.get_by_role("link", name=f"利用申請 {second}"))
    card.get_by_label("却下の理由（必須）").fill("単身世帯の定義が不明確です")
    card.get_by_role("button", name="却下する").click()
    expect(steward.get_by_role("status")).to_contain_text(f"申請 {second} を却下しました")

    stale.get_by_role("button", name="承認する").click()  # the page still offers it; the state moved on
    expect(stale.locator(".problem")).to_contain_text("状態が変わったため、この操作はできません")
    expect(stale.locator(".problem")).to_contain_text("画面を読み込み直して")
    check_page(stale, "stale-approval")

    steward.goto(f"/applications/{first}")
    revoke = steward.get_by_role("button", name="市民課の承認を取り消す")  # says which approval it is
    expect(revoke).to_be_visible()
    check_page(steward, "application-approved")
    steward.goto("/grants")
    expect(
        steward.get_by_role("button", name=re.compile(r"分析 三郎の juki の利用承認を取り消す"))
    ).to_have_count(1)
    steward.get_by_label("取消しの理由（必須）").first.fill("目的外利用の疑い")
    steward.get_by_role("button", name=re.compile("の利用承認を取り消す")).first.click()
    expect(steward.get_by_role("status")).to_contain_text("を取り消しました")
    check_page(steward, "steward-grants")
    steward_context.close()

    page.goto("/grants")
    expect(page.locator("td .state").first).to_have_text("取消し")  # not "revoked"
    check_page(page, "analyst-grants")


def test_admin_and_auditor_land_on_pages_with_something_to_do(browser: Browser, portal: Portal) -> None:
    for role, name in ((Role.ADMIN, "admin"), (Role.AUDITOR, "auditor")):
        context = new_context(browser, portal)
        page = context.new_page()
        login_with_totp(page, portal, portal.staff[role])
        expect(page.get_by_role("heading", name="審査中の申請")).to_be_visible()
        expect(page.get_by_role("link", name="すべての利用申請")).to_be_visible()
        if role is Role.ADMIN:
            expect(page.get_by_role("heading", name="データ管理者のいない所管課")).to_be_visible()
            expect(page.locator("main")).to_contain_text("国保年金医療課")
        check_page(page, f"{name}-home")
        page.goto("/applications/new")  # not an analyst: told so before filling anything in
        expect(page.get_by_text("データの利用を申請できるのは分析担当の職員だけです")).to_be_visible()
        expect(page.locator("textarea")).to_have_count(0)
        page.goto("/applications")
        expect(page.get_by_role("heading", name="すべての利用申請")).to_be_visible()
        check_page(page, f"{name}-applications")
        page.get_by_role("link", name="監査ログ").click()
        login_id = portal.staff[role].login_id  # their own login, just now, is on the record
        page.get_by_label("利用者").fill(login_id)
        page.get_by_label("操作").fill("login")
        page.get_by_role("button", name="検索").click()
        expect(page).to_have_url(re.compile(rf"/audit\?actor={login_id}&action=login"))
        actions = set(page.locator("tbody tr td:nth-child(4)").all_inner_texts())
        assert {"login.password", "login.totp"} <= actions <= {"login.password", "login.totp"}, actions
        check_page(page, f"{name}-audit")
        context.close()


def test_an_analyst_opening_reviews_is_told_who_reviews(page: Page, portal: Portal) -> None:
    login_with_totp(page, portal, portal.staff[Role.ANALYST])
    page.goto("/home?lang=en")  # the English catalog, remembered for the next pages
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="Data catalog")).to_be_visible()
    expect(page.get_by_role("heading", name="My grants")).to_be_visible()
    check_page(page, "analyst-home-en")
    page.goto("/reviews")
    expect(page.get_by_text("Applications are decided by the data stewards")).to_be_visible()
    page.goto("/home?lang=ja")  # back to Japanese for the checks below
    page.goto("/reviews")
    expect(page.get_by_text("申請を審査するのは、データを所管する課のデータ管理者です")).to_be_visible()
    expect(page.get_by_role("link", name="監査ログ")).to_have_count(0)  # not offered, and refused if typed
    assert (response := page.goto("/audit")) is not None and response.status == 403


def test_a_forced_password_change_offers_only_what_works(page: Page, portal: Portal) -> None:
    newcomer = designate(
        portal.world, "shinnin-analyst", "新任 五郎", Role.ANALYST, "政策調査課", must_change=True
    )
    login_with_totp(page, portal, newcomer)
    expect(page).to_have_url(re.compile(r"/password$"))
    assert page.locator("header nav a").all_inner_texts() == ["パスワード変更"]
    check_page(page, "password-forced")
    page.goto("/applications")
    expect(page.locator(".problem")).to_contain_text("パスワードの変更が必要です")
    check_page(page, "password-required-403")
    page.get_by_role("link", name="パスワード変更の画面へ").click()
    page.get_by_label("現在のパスワード").fill(newcomer.password)
    page.get_by_label("新しいパスワード").fill("坂の上の図書館で雨宿りをした午後")
    page.get_by_role("button", name="送信").click()
    expect(page.get_by_role("status")).to_contain_text("パスワードを変更しました")
    page.get_by_role("link", name="ホーム").first.click()
    # an analyst's menu: home, catalog, applications, new application, workspace, dashboards, exports, grants,
    # password
    expect(page.locator("header nav a")).to_have_count(9)


def test_after_logout_or_a_timeout_the_browser_shows_the_login_page(page: Page, portal: Portal) -> None:
    login_with_totp(page, portal, portal.staff[Role.ANALYST])
    page.goto("/grants")
    logout(page)
    page.go_back()  # Back after logout: the page is not kept (no-store), and asking again means logging in
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="ログイン")).to_be_visible()

    login_with_totp(page, portal, portal.staff[Role.ANALYST])
    portal.world.clock.advance(minutes=31)  # past the 30-minute idle timeout
    page.reload()
    expect(page).to_have_url(re.compile(r"/login\?session=ended$"))
    expect(page.get_by_role("status")).to_contain_text("セッションが終了しました")
    check_page(page, "login-session-ended")


def test_a_code_used_twice_says_to_wait_for_the_next_one(page: Page, portal: Portal) -> None:
    analyst = portal.staff[Role.ANALYST]
    login_with_totp(page, portal, analyst)
    logout(page)
    password_step(page, analyst)
    enter_code(page, portal, analyst)  # the same 30-second step: the same code
    expect(page.locator(".problem")).to_contain_text("この確認コードは使用済みです")
    expect(page.locator(".problem")).to_contain_text("次のコードが表示されるまで待って")
    check_page(page, "login-totp-reused")


def test_a_machine_without_the_terminal_certificate_is_told_once(browser: Browser, portal: Portal) -> None:
    stranger = new_context(browser, portal, certificate=False)
    page = stranger.new_page()
    page.goto("/login")
    expect(page.get_by_text("この端末は登録されていません")).to_have_count(1)
    password_step(page, portal.staff[Role.ANALYST])
    expect(page.get_by_text(re.compile("この端末は登録されていません"))).to_have_count(1)
    check_page(page, "login-unregistered")
    stranger.close()


def test_a_stale_form_keeps_what_was_typed(context: BrowserContext, page: Page, portal: Portal) -> None:
    analyst = portal.staff[Role.ANALYST]
    login_with_totp(page, portal, analyst)
    page.goto("/applications/new")
    page.locator('input[value="juki:2025-03-31"]').check()
    page.get_by_label("目的").fill("長い目的を書いている途中で、別のタブでログインし直した")
    page.get_by_label("想定する成果物").fill("集計表とグラフ")
    other = context.new_page()  # a second tab: logs out and in again, so the form's token is stale
    logout_and_login(other, portal)
    page.get_by_role("button", name="申請する").click()
    expect(page.locator(".problem")).to_contain_text("入力した内容はそのまま残してあります")
    expect(page.get_by_label("目的")).to_have_value("長い目的を書いている途中で、別のタブでログインし直した")
    expect(page.locator('input[value="juki:2025-03-31"]')).to_be_checked()
    check_page(page, "application-form-stale")
    page.get_by_role("button", name="申請する").click()
    expect(page.get_by_role("status")).to_contain_text("を提出しました")


def logout_and_login(page: Page, portal: Portal) -> None:
    page.goto("/home")
    logout(page)
    login_with_totp(page, portal, portal.staff[Role.ANALYST])


def test_the_skip_link_comes_first_and_leads_to_the_content(page: Page, portal: Portal) -> None:
    login_with_totp(page, portal, portal.staff[Role.ANALYST])
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="本文へ移動")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
