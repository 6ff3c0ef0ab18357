"""Showing a protected table: labels, 計, X for suppressed cells, a chart of inner cells only."""

from __future__ import annotations

import datetime as dt

from renkei.hub.tables.display import SUPPRESSED, TOTAL, ShownCell, label, show
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
