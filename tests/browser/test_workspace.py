"""The analyst's workspace in Chromium: a linked table with its chart and marked cells, then the same through
the SQL editor (CodeMirror, with completion of the granted views), over real imported data.

This module has its own portal (the ``portal`` fixture below overrides the session's): the hub of
:func:`tests.web.analysis_support.analysis_world`, with juki and kaigo imported from a tiny synthetic city, served
by renkei's TLS server. The shared fixtures still check every page for requests leaving the portal and for
Content-Security-Policy refusals (CodeMirror included).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from renkei.hub.access.people import Role
from renkei.hub.access.terminals import CA_CERT_FILE
from renkei.web.server import TLSFiles, server_config
from tests.browser.support import Portal, check_page, login_with_totp, new_context
from tests.support.tls import free_port, running, self_signed
from tests.web.analysis_support import analysis_world
from tests.web.support import terminal_key_files


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    directory = tmp_path_factory.mktemp("workspace-portal")
    port = free_port()
    base_url = f"https://localhost:{port}"
    with analysis_world(directory, residents=600) as world:
        analyst = world.analyst()
        files = TLSFiles(
            *self_signed(directory, "localhost", server=True), client_ca=world.web.home / CA_CERT_FILE
        )
        config = server_config(
            world.web.app,
            host="127.0.0.1",
            port=port,
            tls=files,
            log_level="critical",
            configure_logging=False,
        )
        with running(config):
            yield Portal(
                world.web, base_url, {Role.ANALYST: analyst}, terminal_key_files(world.web.home, "term-01")
            )


COMPUTE_MS = 30_000  # a workspace opens (decrypts its snapshots) per request: slow on a loaded machine


def test_an_analyst_builds_a_linked_table_and_runs_it_as_sql(page: Page, portal: Portal) -> None:
    login_with_totp(page, portal, portal.staff[Role.ANALYST])
    page.get_by_role("link", name="分析").click()
    page.wait_for_url(re.compile(r"/workspace$"))
    expect(page.get_by_role("heading", name="利用できるデータ")).to_be_visible()
    check_page(page, "workspace")

    # population by ward × 5-year band, of the residents who are also care recipients (linked by pid)
    builder = page.locator("form.builder")
    builder.get_by_label("集計するデータセット").select_option("juki")
    builder.get_by_label("軸 1").select_option("column:住所_ward")
    builder.get_by_label("軸 2").select_option("age_band")
    builder.get_by_label("年齢階級の幅（歳）").fill("5")
    builder.get_by_label("連携するデータセット（仮名IDで突合）").select_option("kaigo")
    builder.get_by_label("グラフ").select_option("bar")
    builder.get_by_role("button", name="集計する").click()
    expect(page.get_by_role("heading", name=re.compile("集計結果"))).to_be_visible(timeout=COMPUTE_MS)
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    expect(chart.locator("title#chart-title")).to_have_count(1)
    marked = page.locator("table.result td.cell-suppressed, table.result td.cell-perturbed")
    assert marked.count() > 0
    expect(page.locator("dl.legend")).to_contain_text("秘匿")
    assert page.locator("table.result tr.total").count() > 0
    expect(page.get_by_text("この表の SQL")).to_be_visible()
    check_page(page, "workspace-table")

    # a long result is shown 50 rows at a time
    rows = page.locator("table.result tbody tr").count()
    assert rows > 50, rows
    pager = page.locator("nav.pager")
    expect(pager).to_contain_text(f"1〜50 行目（全 {rows} 行）")
    expect(page.locator("table.result tbody tr:visible")).to_have_count(50)
    expect(pager.get_by_role("button", name="前の 50 行")).to_be_disabled()
    pager.get_by_role("button", name="次の 50 行").click()
    expect(pager).to_contain_text(f"51〜{min(100, rows)} 行目")

    # sorting by the measure (a button in its heading); 計 rows stay last
    result = page.locator("table.result")
    result.get_by_role("button", name="人数").click()
    expect(result.locator("th").last).to_have_attribute("aria-sort", "ascending")
    inner = result.locator("tbody tr:not(.total) td:last-child").evaluate_all(
        "cells => cells.map(c => c.dataset.value === '' ? Infinity : Number(c.dataset.value))"
    )
    assert inner == sorted(inner)
    expect(result.locator("tbody tr").last).to_have_class("total")
    expect(pager).to_contain_text("1〜50 行目")  # a new order starts at its first page

    # the SQL editor: CodeMirror over the textarea, completing the granted views
    editor = page.locator(".sql-form .cm-content")
    expect(editor).to_be_visible()
    expect(page.locator("textarea.sql-editor")).to_be_hidden()
    editor.click()
    page.keyboard.type("SELECT count(*) FROM ka")
    completion = page.locator(".cm-tooltip-autocomplete")
    expect(completion).to_contain_text("kaigo")
    check_page(page, "workspace-sql-completion")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+A")
    # typing over the selection goes through CodeMirror (sql_editor.js): no style attribute for the CSP to refuse
    page.keyboard.type('SELECT "住所_ward", count(*) AS n FROM juki WHERE EXISTS ')
    page.keyboard.type(
        "(SELECT 1 FROM kaigo AS l WHERE l.period = juki.period AND l.pid = juki.pid) GROUP BY ALL"
    )
    page.keyboard.press("Escape")
    page.locator(".sql-form").get_by_role("button", name="実行する").click()
    expect(page.get_by_role("heading", name=re.compile("集計結果（保護済み）"))).to_be_visible(
        timeout=COMPUTE_MS
    )
    expect(page.locator("table.result tbody tr").first).to_be_visible()
    check_page(page, "workspace-sql")

    # the ward map (区の模式図): offered only for a table by ward alone, then nine ward tiles and its legend
    builder = page.locator("form.builder")
    chart_choice = builder.get_by_label("グラフ")
    builder.get_by_label("軸 1").select_option("column:住所_ward")
    builder.get_by_label("軸 2").select_option("age_band")
    expect(chart_choice.locator("option[value=wardmap]")).to_be_disabled()
    builder.get_by_label("軸 2").select_option("")
    builder.get_by_label("連携するデータセット（仮名IDで突合）").select_option("")
    expect(chart_choice.locator("option[value=wardmap]")).to_be_enabled()
    chart_choice.select_option("wardmap")
    builder.get_by_label("表題").fill("区別の人口（模式図）")
    builder.get_by_role("button", name="集計する").click()
    expect(page.get_by_role("heading", name=re.compile("集計結果"))).to_be_visible(timeout=COMPUTE_MS)
    wardmap = page.locator("svg.chart")
    expect(wardmap.locator("g.ward")).to_have_count(9)
    expect(wardmap.locator("g.legend rect")).to_have_count(7)  # five classes, X and no result
    expect(wardmap.locator("title#chart-title")).to_have_text("区別の人口（模式図）")
    expect(page.locator("figure.chart figcaption")).to_contain_text("実際の境界ではありません")
    check_page(page, "workspace-wardmap")


def test_the_sql_form_works_without_javascript(browser: Browser, portal: Portal) -> None:
    portal.world.clock.advance(seconds=30)
    profile = new_context(browser, portal, java_script_enabled=False)
    try:
        page = profile.new_page()
        person = portal.staff[Role.ANALYST]
        # without JavaScript the TOTP login still works (plain forms); then the plain textarea is the editor
        login_with_totp(page, portal, person)
        page.goto("/workspace")
        page.get_by_label("SQL", exact=True).fill('SELECT "住所_ward", count(*) AS n FROM juki GROUP BY ALL')
        page.locator(".sql-form").get_by_role("button", name="実行する").click()
        expect(page.get_by_role("heading", name=re.compile("集計結果（保護済み）"))).to_be_visible(
            timeout=COMPUTE_MS
        )
    finally:
        profile.close()
