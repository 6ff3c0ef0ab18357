"""The schematic ward map (区の模式図): nine ward tiles, five value classes, the suppressed and the missing
wards marked in text, its legend and caption; and the chart kind only for a table by ward alone."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from renkei.hub.tables.display import ShownCell, show
from renkei.hub.tables.request import AgeBand, Category, Period, TableRequest, is_by_ward
from renkei.sending.towns import KOBE_WARDS
from renkei.web.charts import (
    CLASSES,
    SEQUENTIAL,
    WARD_TILES,
    chart_of,
    class_breaks,
    value_class,
)
from renkei.web.errors import describe

POPULATION = {
    "東灘区": 213_641, "灘区": 136_088, "兵庫区": 106_956, "長田区": 94_000, "須磨区": 158_000,
    "垂水区": 215_000, "北区": 211_000, "中央区": 142_000, "西区": 240_000,
}  # fmt: skip


def spec(values: Mapping[str, float | None]) -> dict[str, object]:
    return {
        "kind": "wardmap", "x": "住所_ward", "categories": list(values),
        "series": [{"name": "人数", "values": list(values.values())}], "series_dimension": None,
    }  # fmt: skip


def tiles(svg: str) -> list[str]:
    return re.findall(r'<g class="ward[^"]*"[^>]*>.*?</g>', svg)


def test_the_tiles_are_the_nine_wards_of_kobe_in_two_rows() -> None:
    assert sorted(w for w, *_ in WARD_TILES) == sorted(KOBE_WARDS)
    coast = sorted((c, w) for w, row, c, _ in WARD_TILES if row == 1)
    assert [w for _, w in coast] == ["垂水区", "須磨区", "長田区", "兵庫区", "中央区", "灘区", "東灘区"]
    north = {w: (c, span) for w, row, c, span in WARD_TILES if row == 0}
    assert north == {"西区": (0, 2), "北区": (2, 5)}


def test_nine_tiles_each_with_its_name_value_and_class() -> None:
    chart = chart_of(spec(POPULATION), "区別人口", "住所_ward — 人数")
    assert chart is not None and chart.kind == "wardmap"
    svg = str(chart.svg)
    drawn = tiles(svg)
    assert len(drawn) == 9
    for ward, value in POPULATION.items():
        tile = next(t for t in drawn if f">{ward}</text>" in t)
        assert f">{value:,}</text>" in tile  # the value as text, not colour alone
        k = int(re.search(r'data-class="(\d)"', tile)[1])  # type: ignore[index]
        assert f'fill="{SEQUENTIAL[k - 1]}"' in tile
    classes = {int(k) for k in re.findall(r'data-class="(\d)"', svg)}
    assert classes <= set(range(1, CLASSES + 1)) and {1, CLASSES} <= classes  # lightest and darkest used
    darkest = next(t for t in drawn if ">西区</text>" in t)
    assert f'data-class="{CLASSES}"' in darkest and 'fill="#ffffff">240,000' in darkest  # readable on dark
    assert 'role="img"' in svg and '<title id="chart-title">区別人口</title>' in svg
    assert "実際の境界ではありません" in svg  # the caption, in the SVG and its <desc>
    assert re.search(r"<desc[^>]*>[^<]*模式図[^<]*</desc>", svg)


def test_the_legend_shows_the_five_class_breaks_and_the_marks() -> None:
    chart = chart_of(spec(POPULATION), "t", "d")
    assert chart is not None
    legend = re.search(r'<g class="legend">.*?</g>', str(chart.svg))
    assert legend is not None
    breaks = class_breaks(list(POPULATION.values()))
    assert len(breaks) == CLASSES + 1 and breaks[0] <= min(POPULATION.values()) <= max(POPULATION.values())
    assert max(POPULATION.values()) <= breaks[-1]
    for k in range(CLASSES):
        assert f">{breaks[k]:,.0f}〜{breaks[k + 1]:,.0f}</text>" in legend[0]
        assert f'fill="{SEQUENTIAL[k]}"' in legend[0]
    assert "X 秘匿" in legend[0] and "結果なし" in legend[0]


def test_a_suppressed_ward_is_hatched_with_the_x_mark_and_a_missing_one_says_so() -> None:
    values: dict[str, float | None] = {w: v for w, v in POPULATION.items() if w != "北区"}
    values["兵庫区"] = None
    values["不詳"] = 7
    chart = chart_of(spec(values), "t", "d", ident="tile-3-chart")
    assert chart is not None
    svg = str(chart.svg)
    drawn = tiles(svg)
    assert len(drawn) == 9
    suppressed = [t for t in drawn if "ward-suppressed" in t]
    assert len(suppressed) == 1 and ">兵庫区</text>" in suppressed[0]
    assert 'class="gap"' in suppressed[0] and ">X</text>" in suppressed[0] and "秘匿" in suppressed[0]
    assert 'fill="url(#tile-3-chart-hatch)"' in suppressed[0] and 'id="tile-3-chart-hatch"' in svg
    assert "data-class" not in suppressed[0]  # never a class, never zero
    missing = [t for t in drawn if "ward-missing" in t]
    assert len(missing) == 1 and ">北区</text>" in missing[0] and "結果なし" in missing[0]
    assert "図にない値: 不詳 7" in svg  # a value with no tile is still shown


def test_the_ward_map_in_english() -> None:
    chart = chart_of(spec({**POPULATION, "灘区": None}), "t", "d", language="en")
    assert chart is not None
    svg = str(chart.svg)
    assert "not their actual boundaries" in svg and "X suppressed" in svg and "〜" not in svg
    assert "東灘区" in svg  # the wards keep their names


def test_class_breaks_are_round_and_cover_the_values() -> None:
    assert class_breaks([94_000, 240_000]) == [90_000, 120_000, 150_000, 180_000, 210_000, 240_000]
    assert class_breaks([3, 1_234]) == [0, 250, 500, 750, 1_000, 1_250]
    assert class_breaks([0.1, 1.4]) == [0, 0.3, 0.6, 0.9, 1.2, 1.5]  # edges exact, not 0.8999…
    assert class_breaks([5, 5]) == [5, 6, 7, 8, 9, 10]
    assert class_breaks([]) == [0, 1, 2, 3, 4, 5]
    breaks = class_breaks([0.5, 1.7, 3.2])
    assert breaks[0] <= 0.5 and breaks[-1] >= 3.2 and len(breaks) == 6
    edges = [0, 10, 20, 30, 40, 50]
    assert [value_class(v, edges) for v in (0, 9.9, 10, 49, 50)] == [0, 0, 1, 4, 4]


def by(*dimensions: object, chart: str = "wardmap") -> TableRequest:
    return TableRequest.model_validate({"dataset": "juki", "dimensions": dimensions, "chart": chart})


def test_the_ward_map_only_for_a_table_by_ward_alone() -> None:
    assert is_by_ward([Category(column="住所_ward")])
    assert not is_by_ward([Category(column="住所_ward"), AgeBand()])
    assert not is_by_ward([Category(column="性別")]) and not is_by_ward([Period()])
    assert by({"kind": "column", "column": "住所_ward"}).chart == "wardmap"
    for dimensions in (
        [{"kind": "column", "column": "性別"}],
        [{"kind": "column", "column": "住所_ward"}, {"kind": "age_band"}],
        [{"kind": "period"}],
    ):
        with pytest.raises(ValidationError) as raised:
            by(*dimensions)
        errors = raised.value.errors()
        assert [(e["type"], e["loc"]) for e in errors] == [("chart_needs_wards", ("chart",))]
        problem = describe(RequestValidationError(errors))
        assert problem.status == 422
        assert (
            "「グラフ」の区の模式図は、区（住所_ward など）ひとつだけを軸にした集計表" in problem.message_ja
        )
        assert "Chart: the ward map is only for a table by ward alone" in problem.message_en
        assert "(chart)" in problem.message_en  # the field's location
    assert by({"kind": "column", "column": "性別"}, chart="bar").chart == "bar"  # the others as before


def test_the_builders_spec_of_a_table_by_ward() -> None:
    request = by({"kind": "column", "column": "住所_ward"})
    cells = [ShownCell((w,), float(v), "perturbed") for w, v in POPULATION.items()]
    cells[2] = ShownCell((cells[2].coordinates[0],), None, "suppressed")
    cells.append(ShownCell(("計",), 1_500_000.0, "perturbed"))
    table = show(request, ["住所_ward"], "人数", cells)
    assert table.chart["kind"] == "wardmap" and "計" not in table.chart["categories"]  # 計 is not drawn
    chart = chart_of(table.chart, "人口", "区別")
    assert chart is not None and len(tiles(str(chart.svg))) == 9
    assert str(chart.svg).count("ward-suppressed") == 1
