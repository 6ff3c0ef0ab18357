"""The analyst's workspace pages over real imported data: views, builder, SQL editor, saved analyses, charts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from renkei.hub.access.people import Role
from renkei.web.charts import chart_of, nice_max
from renkei.web.cookies import SESSION_COOKIE
from tests.web.analysis_support import AnalysisWorld, analysis_world
from tests.web.support import Person

LINKED = {
    "dataset": "juki", "dim1": "column:住所_ward", "dim2": "age_band", "band_width": "20", "band_top": "80",
    "measure": "persons", "link_dataset": "kaigo", "link_present": "present", "chart": "bar", "action": "run",
}  # fmt: skip
SQL_BY_WARD = 'SELECT "住所_ward", count(*) AS n FROM juki GROUP BY ALL'


@pytest.fixture(scope="module")
def aw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalysisWorld]:
    with analysis_world(tmp_path_factory.mktemp("workspace-pages"), residents=150) as world:
        yield world


@pytest.fixture(scope="module")
def analyst(aw: AnalysisWorld) -> Person:
    return aw.analyst()


def signed_in(aw: AnalysisWorld, person: Person) -> tuple[httpx.Client, str]:
    client = aw.web.client()
    token, csrf_token = aw.web.open_session(person)
    client.cookies.set(SESSION_COOKIE, token)
    return client, csrf_token


def post(client: httpx.Client, path: str, token: str, form: dict[str, Any]) -> httpx.Response:
    return client.post(path, data={**form, "csrf_token": token}, headers={"Accept": "text/html"})


def test_the_workspace_lists_the_granted_views(aw: AnalysisWorld, analyst: Person) -> None:
    client, _ = signed_in(aw, analyst)
    with client:
        page = client.get("/workspace")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert "<code>juki</code>" in text and "<code>kaigo</code>" in text
    for period in aw.data.periods:
        assert period.isoformat() in text
    assert "住所_ward" in text and 'href="/workspace" aria-current="page"' in text
    assert 'src="/static/workspace.js"' in text and "<script>" not in text


def test_without_grants_the_page_says_to_apply(aw: AnalysisWorld) -> None:
    client, _ = signed_in(aw, aw.web.person(Role.ANALYST))
    with client:
        page = client.get("/workspace")
    assert page.status_code == 200
    assert "いま利用できるデータはありません" in page.text and 'href="/applications/new"' in page.text
    assert 'action="/workspace/table"' not in page.text


def test_a_non_analyst_is_told_who_uses_it_and_refused_a_table(aw: AnalysisWorld) -> None:
    client, token = signed_in(aw, aw.web.person(Role.STEWARD))
    with client:
        page = client.get("/workspace")
        refused = post(client, "/workspace/table", token, LINKED)
    assert page.status_code == 200 and "分析担当が使います" in page.text
    assert 'href="/workspace"' not in page.text  # no menu entry for a steward
    assert refused.status_code == 409 and 'role="alert"' in refused.text


def test_a_linked_table_shows_marked_cells_totals_chart_sql_and_record(
    aw: AnalysisWorld, analyst: Person
) -> None:
    client, token = signed_in(aw, analyst)
    with client:
        page = post(client, "/workspace/table", token, LINKED)
    assert page.status_code == 200, page.text[:800]
    text = page.text
    assert "集計結果" in text and "公表番号" in text
    assert 'class="total"' in text  # 計 rows
    assert "cell-perturbed" in text or "cell-suppressed" in text
    assert "秘匿：" in text and "撹乱：" in text  # the legend
    assert "<svg" in text and '<title id="chart-title">' in text and "<desc" in text
    assert "EXISTS" in text and "kaigo" in text  # the compiled SQL
    assert "最小公表人数" in text and "SATRE" in text
    assert page.headers["cache-control"] == "no-store"
    # the form keeps what was chosen
    assert '<option value="age_band" selected>' in text and 'value="20"' in text


def test_a_suppressed_cell_is_a_gap_in_the_chart_never_a_zero() -> None:
    spec = {
        "kind": "bar", "x": "ward", "categories": ["中央区", "北区"],
        "series": [{"name": "男", "values": [12.0, None]}, {"name": "女", "values": [None, 7.0]}],
    }  # fmt: skip
    chart = chart_of(spec, "人口", "区別")
    assert chart is not None
    assert chart.svg.count("<rect") == 2 + 2  # two bars and two legend keys: no bar for the gaps
    assert chart.svg.count('class="gap"') == 2
    line = chart_of({**spec, "kind": "line"}, "人口", "区別")
    assert (
        line is not None and "<polyline" not in line.svg
    )  # each series has a single point either side of a gap
    pyramid = chart_of({**spec, "kind": "pyramid"}, "人口", "区別")
    assert pyramid is not None and pyramid.kind == "pyramid"
    assert chart_of({**spec, "kind": "none"}, "", "") is None
    assert [nice_max(v) for v in (0, 7, 12, 230, 1000)] == [1.0, 10.0, 20.0, 250.0, 1000.0]
    over_periods = {"kind": "line", "categories": ["2023", "2024", "2025", "2026"],
                    "series": [{"name": "計", "values": [3.0, 4.5, None, 6.0]}]}  # fmt: skip
    drawn = chart_of(over_periods, "推移", "基準日ごと")
    assert drawn is not None
    assert drawn.svg.count("<polyline") == 1 and drawn.svg.count("<circle") == 3  # broken at the gap
    assert drawn.svg.count('class="gap"') == 1
    two = chart_of(spec, "a", "b", ident="tile-7-chart")  # several on one page: each names its own title
    assert two is not None and 'aria-labelledby="tile-7-chart-title tile-7-chart-desc"' in two.svg
    assert '<title id="tile-7-chart-title">a</title>' in two.svg and 'id="chart-title"' not in two.svg
    escaped = chart_of({**spec, "categories": ["<script>", "北区"]}, "<b>", "&")
    assert escaped is not None and "<script>" not in escaped.svg and "&lt;b&gt;" in escaped.svg


def test_a_pyramid_from_the_builder(aw: AnalysisWorld, analyst: Person) -> None:
    client, token = signed_in(aw, analyst)
    form = {"dataset": "juki", "dim1": "age_band", "dim2": "column:性別", "band_width": "10", "chart": "pyramid",
            "action": "run", "title": "人口ピラミッド"}  # fmt: skip
    with client:
        page = post(client, "/workspace/table", token, form)
    assert page.status_code == 200, page.text[:800]
    assert "人口ピラミッド" in page.text and "<svg" in page.text


def test_a_ward_map_from_the_builder_and_refused_for_a_table_not_by_ward(
    aw: AnalysisWorld, analyst: Person
) -> None:
    client, token = signed_in(aw, analyst)
    form = {"dataset": "juki", "dim1": "column:住所_ward", "chart": "wardmap", "action": "run",
            "title": "区別の人口"}  # fmt: skip
    with client:
        page = post(client, "/workspace/table", token, form)
        refused = post(client, "/workspace/table", token, {**form, "dim2": "age_band"})
        by_sex = post(client, "/workspace/table", token, {**form, "dim1": "column:性別"})
        english = client.post(
            "/workspace/table?lang=en", data={**form, "csrf_token": token}, headers={"Accept": "text/html"}
        )
    assert page.status_code == 200, page.text[:800]
    text = page.text
    assert text.count('<g class="ward') == 9  # every ward a tile, in the result or not
    assert '<title id="chart-title">区別の人口</title>' in text and 'class="legend"' in text
    assert "模式図：区の位置関係を表したもので、実際の境界ではありません" in text
    assert '<option value="wardmap" selected>区の模式図（区ごとの表のみ）</option>' in text
    assert "グラフの数値" in text  # the same numbers as a table
    assert english.status_code == 200 and "not their actual boundaries" in english.text
    for wrong in (refused, by_sex):
        assert wrong.status_code == 422 and 'role="alert"' in wrong.text
        assert (
            "「グラフ」の区の模式図は、区（住所_ward など）ひとつだけを軸にした集計表にしか使えません"
            in wrong.text
        )
        assert "<svg" not in wrong.text


def test_the_api_refuses_a_ward_map_of_a_table_not_by_ward(aw: AnalysisWorld, analyst: Person) -> None:
    client, token = signed_in(aw, analyst)
    body = {"dataset": "juki", "dimensions": [{"kind": "column", "column": "性別"}], "chart": "wardmap"}
    with client:
        refused = client.post("/api/v1/tables", json=body, headers={"X-CSRF-Token": token})
    assert refused.status_code == 422
    problem = refused.json()
    text = json.dumps(problem, ensure_ascii=False)
    assert (
        "「グラフ」の区の模式図は" in text and "Chart: the ward map is only for a table by ward alone" in text
    )
    assert "body.chart" in text


def test_a_wrong_builder_form_names_the_field(aw: AnalysisWorld, analyst: Person) -> None:
    client, token = signed_in(aw, analyst)
    with client:
        page = post(client, "/workspace/table", token, {**LINKED, "band_width": "0"})
        same = post(client, "/workspace/table", token, {**LINKED, "dim2": "column:住所_ward"})
    assert page.status_code == 422 and "width" in page.text
    assert same.status_code == 422
    assert 'value="0"' in page.text  # the form as posted


@pytest.mark.parametrize(
    ("sql", "status", "expect"),
    [
        ('SELECT "住所_ward", count(*) AS n FROM juki GROUP BY ALL', 200, "集計結果（保護済み）"),
        ("SELECT pid FROM juki", 422, 'role="alert"'),
        ("", 422, "SQL"),
    ],
)
def test_the_sql_editor_shows_each_outcome(
    aw: AnalysisWorld, analyst: Person, sql: str, status: int, expect: str
) -> None:
    client, token = signed_in(aw, analyst)
    with client:
        page = post(client, "/workspace/query", token, {"sql": sql, "action": "run"})
    assert page.status_code == status, page.text[:800]
    assert expect in page.text
    assert sql.replace('"', "&#34;") in page.text  # the editor keeps the text


def test_rows_need_a_row_level_grant_and_are_capped_with_one(aw: AnalysisWorld) -> None:
    person = aw.web.person(Role.ANALYST)
    aw.data.grant(person.user, "juki", aw.data.periods, row_level=True)
    client, token = signed_in(aw, person)
    with client:
        page = post(
            client, "/workspace/query", token, {"sql": 'SELECT "住所_ward", age FROM juki', "action": "run"}
        )
    assert page.status_code == 200, page.text[:800]
    assert "個票（件数上限あり）" in page.text


def test_save_list_and_rerun_on_a_new_period(aw: AnalysisWorld) -> None:
    person = aw.analyst()
    client, token = signed_in(aw, person)
    with client:
        saved = post(client, "/workspace/table", token, {**LINKED, "action": "save", "name": "区別介護"})
        assert saved.status_code == 303
        location = saved.headers["location"]
        assert re.fullmatch(r"/workspace\?done=analysis_saved&id=\d+", location)  # no value in the URL
        listed = client.get(location)
        sql_saved = post(client, "/workspace/query", token,
                         {"sql": SQL_BY_WARD, "action": "save", "name": "総数"})  # fmt: skip
        nameless = post(client, "/workspace/table", token, {**LINKED, "action": "save", "name": " "})
        latest = aw.data.periods[-1].isoformat()
        rerun = post(client, "/workspace/rerun", token, {"name": "区別介護", "period": latest})
        rerun_sql = post(client, "/workspace/rerun", token, {"name": "総数", "period": ""})
        missing = post(client, "/workspace/rerun", token, {"name": "ない分析", "period": ""})
        bad_period = post(client, "/workspace/rerun", token, {"name": "区別介護", "period": "2025-13-40"})
    assert "を保存しました" in listed.text and "区別介護" in listed.text
    assert sql_saved.status_code == 303
    assert nameless.status_code == 422
    assert rerun.status_code == 200 and "集計結果" in rerun.text, rerun.text[:800]
    assert f'value="{latest}" checked' in rerun.text  # the builder shows the saved request, on that period
    assert rerun_sql.status_code == 200 and "集計結果（保護済み）" in rerun_sql.text
    assert missing.status_code == 422 and "ない分析" in missing.text
    assert bad_period.status_code == 422


@pytest.mark.parametrize("path", ["/workspace/table", "/workspace/query", "/workspace/rerun"])
def test_every_form_needs_the_csrf_token(aw: AnalysisWorld, analyst: Person, path: str) -> None:
    client, _ = signed_in(aw, analyst)
    with client:
        refused = client.post(
            path, data={**LINKED, "sql": "SELECT 1", "name": "x"}, headers={"Accept": "text/html"}
        )
    assert refused.status_code == 403


def test_the_page_in_english(aw: AnalysisWorld, analyst: Person, tmp_path: Path) -> None:
    client, _ = signed_in(aw, analyst)
    with client:
        page = client.get("/workspace?lang=en")
    assert "Analysis workspace" in page.text and "Table builder" in page.text


def test_a_range_filter_and_a_household_link(aw: AnalysisWorld, analyst: Person) -> None:
    client, token = signed_in(aw, analyst)
    form = {**LINKED, "filter_column": "age", "filter_op": "between", "filter_low": "65", "filter_high": "",
            "link_level": "household", "chart": "none"}  # fmt: skip
    with client:
        page = post(client, "/workspace/table", token, form)
        empty_range = post(client, "/workspace/table", token, {**form, "filter_low": ""})
    assert page.status_code == 200, page.text[:800]
    assert "BETWEEN" in page.text.upper() or "&gt;=" in page.text or ">=" in page.text
    assert "household_id" in page.text  # linked by household
    assert "<svg" not in page.text  # no chart asked for
    assert '<option value="household" selected>' in page.text
    assert empty_range.status_code == 422


def test_a_result_the_hub_cannot_protect_is_refused_or_sent_for_review(aw: AnalysisWorld) -> None:
    client, token = signed_in(aw, aw.analyst(granted=("juki",)))
    sums = 'SELECT "住所_ward", sum(age) AS total FROM juki GROUP BY 1'
    with client:
        refused = post(client, "/workspace/query", token, {"sql": sums, "action": "run"})
        sent = post(
            client,
            "/workspace/query",
            token,
            {"sql": sums, "review_reason": "年齢の合計を使う", "action": "run"},
        )
    assert refused.status_code == 422 and "個票閲覧" in refused.text
    assert sent.status_code == 200, sent.text[:800]
    assert "審査待ち" in sent.text and "審査に回しました" in sent.text and "公表番号" in sent.text
    assert 'value="年齢の合計を使う"' in sent.text
