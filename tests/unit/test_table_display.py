"""Showing a protected table: labels, 計, X for suppressed cells, a chart of inner cells only."""

from __future__ import annotations

import datetime as dt

from renkei.hub.tables.display import SUPPRESSED, TOTAL, ShownCell, chart_from_rows, label, show
from renkei.hub.tables.request import AgeBand, Category, Period, TableRequest

P = dt.date(2025, 1, 1)


def test_age_band_and_date_labels() -> None:
    band = AgeBand(width=5, top=100)
    assert label(band, 5) == "5〜9歳"
    assert label(band, 100) == "100歳以上"
    assert label(Period(), P) == "2025-01-01"
    assert label(Category(column="x"), None) == "不詳"


def test_rows_sort_numerically_with_totals_last_and_marks() -> None:
    request = TableRequest(
        dataset="juki", dimensions=[AgeBand(width=5), Category(column="性別")], chart="pyramid"
    )
    cells = [
        ShownCell((10, "男"), 31, "perturbed"),
        ShownCell((5, "男"), None, "suppressed"),
        ShownCell((TOTAL, "男"), 40, "perturbed"),
        ShownCell((5, "女"), 12, "perturbed"),
    ]
    table = show(request, ["年齢階級", "性別"], "人数", cells)
    assert table.header == ["年齢階級", "性別", "人数"]
    assert [r[0] for r in table.rows] == ["5〜9歳", "5〜9歳", "10〜14歳", TOTAL]
    assert table.rows[1] == ["5〜9歳", "男", SUPPRESSED]
    assert len(table.notes) == 2
    chart = table.chart
    assert chart["kind"] == "pyramid" and chart["categories"] == ["5〜9歳", "10〜14歳"]
    men = next(s for s in chart["series"] if s["name"] == "男")
    assert men["values"] == [None, 31]


def test_a_chart_from_shown_rows_alone_by_the_tables_shape() -> None:
    """A release stored without a chart (saved with none, or older) gets one from its published rows."""
    by_ward = chart_from_rows(["住所_ward", "人数"], [["中央区", 120], ["北区", SUPPRESSED], [TOTAL, 130]])
    assert by_ward["kind"] == "bar" and by_ward["categories"] == ["中央区", "北区"]  # 計 is not drawn
    assert by_ward["series"] == [{"name": "人数", "values": [120.0, None]}]  # X is a gap, never 0
    two = chart_from_rows(
        ["基準日", "性別", "人数"],
        [
            ["2025-01-01", "男", 3],
            ["2025-01-01", "女", 4],
            ["2026-01-01", "男", SUPPRESSED],
            [TOTAL, "男", 9],
        ],
    )
    assert two["kind"] == "line" and two["categories"] == ["2025-01-01", "2026-01-01"]
    assert two["series"] == [{"name": "男", "values": [3.0, None]}, {"name": "女", "values": [4.0, None]}]
    assert chart_from_rows(["a", "b", "c", "人数"], [["x", "y", "z", 1]]) == {}  # would overlap
    assert chart_from_rows(["人数"], [[1]]) == {} and chart_from_rows(["区", "人数"], []) == {}
