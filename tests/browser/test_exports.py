"""Exports and table review in Chromium (issue 10): an analyst exports within quota after stepping up with TOTP,
a steward reviews a table after stepping up; the dashboards page shows a pinned table and its chart. Releases and the quota
are made with the hub's own functions (the workspace pages that make them are tested on their own)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from renkei.hub.access import totp
from renkei.hub.access.authz import Actor
from renkei.hub.access.people import Role
from renkei.hub.analysis.dashboards import pin, snapshots_key
from renkei.hub.analysis.ledger import DashboardTile, ReleaseStatus
from renkei.hub.analysis.saved import save_analysis
from renkei.hub.tables.request import Category, TableRequest
from tests.browser.support import Portal, check_page, designate, login_with_totp, new_context
from tests.web.support import STEP_UP_STALE, Person
from tests.web.test_exports_review import allow_downloads, grant, release


def test_an_analyst_exports_within_quota_after_stepping_up_and_a_steward_reviews(
    browser: Browser, page: Page, portal: Portal, tmp_path: Path
) -> None:
    world, steward = portal.world, portal.staff[Role.STEWARD]
    # An analyst of their own: the demo analyst's grants are counted by the other journeys.
    analyst = designate(
        world, "shutsuryoku-analyst", "出力 四郎", Role.ANALYST, "政策調査課", must_change=False
    )
    snapshot_id = grant(world, analyst)
    released = release(world, analyst, snapshot_id, title="区別の人口（2026年3月末）")
    in_review = release(
        world, analyst, snapshot_id, ReleaseStatus.REVIEW, title="区別・5歳階級の人口",
        reason="差分による少人数の特定のおそれ (differencing risk)",
    )  # fmt: skip
    allow_downloads(world, analyst, files_per_day=2)

    login_with_totp(page, portal, analyst)
    world.clock.advance(seconds=STEP_UP_STALE.total_seconds())  # the login's proof no longer counts
    page.goto("/exports")
    expect(page.get_by_text("出力の前に本人確認が必要です")).to_be_visible()
    expect(page.get_by_text("残り 2（上限 2）")).to_be_visible()
    expect(page.locator("td .state").first).to_have_text("審査中")
    check_page(page, "exports")
    page.get_by_role("button", name=f"集計表 {released} を CSV で出力").click()
    page.wait_for_url(re.compile(r"/step-up\?next=%2Fexports$"))
    check_page(page, "step-up")
    world.clock.advance(seconds=30)  # the next code: the login's was used
    page.get_by_label("確認コード").fill(_code(portal, analyst))
    page.get_by_role("button", name="確認する").click()
    expect(page.get_by_role("status")).to_contain_text("本人確認が済みました")
    with page.expect_download() as download:
        page.get_by_role("button", name=f"集計表 {released} を CSV で出力").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"renkei-release-{released}.csv"
    digest = hashlib.sha256(saved.read_bytes()).hexdigest()
    assert "中央区" in saved.read_bytes().decode("utf-8-sig")
    page.goto("/exports")
    expect(page.locator("code.hash")).to_have_text([digest])  # the hash of the file received
    expect(page.get_by_text("残り 1（上限 2）")).to_be_visible()
    check_page(page, "exports-downloaded")

    steward_context = new_context(browser, portal)
    reviewer = steward_context.new_page()
    login_with_totp(reviewer, portal, steward)
    world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
    reviewer.goto("/releases/review")
    card = reviewer.locator(
        "section.card", has=reviewer.get_by_role("heading", name=re.compile(f"集計表 {in_review}"))
    )
    expect(card).to_contain_text("差分による少人数の特定のおそれ")
    expect(card).to_contain_text(analyst.user.display_name)
    check_page(reviewer, "release-review")
    reviewer.get_by_role("link", name="本人確認をする").click()
    reviewer.wait_for_url(re.compile(r"/step-up\?next="))
    world.clock.advance(seconds=30)
    enter_code_on(reviewer, portal, steward)
    expect(reviewer.get_by_role("status")).to_contain_text("本人確認が済みました")
    card.get_by_label("判断の理由（必須）").fill("区ごとの人数は十分に大きく、差分の心配はありません")
    card.get_by_role("button", name=f"集計表 {in_review} を承認する").click()
    expect(reviewer.get_by_role("status")).to_contain_text(f"集計表 {in_review} を承認しました")
    check_page(reviewer, "release-reviewed")
    steward_context.close()

    page.goto("/exports")
    expect(page.locator("tr", has=page.get_by_text("区別・5歳階級の人口"))).to_contain_text("承認済み")


def test_the_dashboards_page_shows_a_pinned_table(page: Page, portal: Portal) -> None:
    world = portal.world
    analyst = designate(
        world, "dashboard-analyst", "集計 六郎", Role.ANALYST, "政策調査課", must_change=False
    )
    hub = world.app.state.portal.hub
    actor = Actor.for_user(analyst.user)
    snapshot_id = grant(world, analyst)
    request = TableRequest(dataset="juki", dimensions=[Category(column="住所_ward")], title="区別の人口")
    saved = save_analysis(hub, actor, "区別の人口（住民基本台帳）", request, clock=world.clock)
    pin(hub, actor, saved.id, "population", clock=world.clock)
    release_id = release(world, analyst, snapshot_id, title="区別の人口")
    with world.session() as session:
        key, _ = snapshots_key(session, analyst.user.id, saved.definition, world.clock)
        session.merge(DashboardTile(analysis_id=saved.id, release_id=release_id, snapshots_key=key,
                                    refreshed_at=world.clock.now()))  # fmt: skip
        session.commit()
    login_with_totp(page, portal, analyst)
    page.get_by_role("link", name="ダッシュボード").click()
    check_page(page, "dashboards")
    page.get_by_role("link", name=re.compile("^人口")).click()
    expect(page.get_by_role("heading", name="区別の人口（住民基本台帳）")).to_be_visible()
    expect(page.locator(".tiles table")).to_contain_text("中央区")
    # its chart, drawn on the server from the same protected cells: 中央区 a bar, 北区 (suppressed) an X
    chart = page.get_by_role("img", name="区別の人口（住民基本台帳）")
    expect(chart).to_be_visible()
    expect(chart.locator("rect title")).to_have_text(["人数 中央区: 120"])
    expect(chart.locator("text.gap")).to_have_text(["X"])
    check_page(page, "dashboard-population")


def _code(portal: Portal, person: Person) -> str:
    return totp.current_code(person.totp_secret, portal.world.clock.now())


def enter_code_on(page: Page, portal: Portal, person: Person) -> None:
    page.get_by_label("確認コード").fill(_code(portal, person))
    page.get_by_role("button", name="確認する").click()
