"""How a protected table is shown: rows with 計 for totals, a mark per controlled cell, and a chart spec.

Only published values reach this module; true counts never do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from renkei.hub.tables.files import Cell
from renkei.hub.tables.request import AgeBand, ChartKind, TableRequest

TOTAL = "計"
SUPPRESSED = "X"  # the mark e-Stat and the city's statistics books use for 秘匿
NOTES = {
    "suppressed": (
        "X: 秘匿（少数のため、または他の秘匿セルの復元を防ぐため）",
        "X: suppressed (small, or to protect another suppressed cell)",
    ),
    "perturbed": (
        "数値には撹乱（セルキー法）を施しています。合計は内訳の和と一致しないことがあります",
        "values are perturbed (cell key method); totals may differ from the sum of their parts",
    ),
}


@dataclass(frozen=True, slots=True)
class ShownCell:
    coordinates: tuple[Cell, ...]  # one value per dimension; TOTAL for a margin
    value: float | None  # None when suppressed
    status: str  # ok | perturbed | suppressed
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ShownTable:
    header: list[str]
    rows: list[list[Cell]]
    cells: list[ShownCell]
    notes: list[str]
    chart: dict[str, Any] = field(default_factory=dict)


def label(dimension: object, value: Cell) -> Cell:
    """A dimension value as users read it: 0–4歳, 100歳以上, dates as YYYY-MM-DD."""
    if value is None:
        return "不詳"
    if isinstance(dimension, AgeBand) and isinstance(value, int):
        if value >= dimension.top:
            return f"{dimension.top}歳以上"
        return f"{value}〜{value + dimension.width - 1}歳"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def show(
    request: TableRequest, dimensions: Sequence[str], measure: str, cells: Sequence[ShownCell]
) -> ShownTable:
    """The table as rows (totals last within their group) and the chart of its inner cells."""
    ordered = sorted(cells, key=lambda c: tuple(_sort_key(v) for v in c.coordinates))
    rows: list[list[Cell]] = []
    for cell in ordered:
        shown = SUPPRESSED if cell.value is None else _number(cell.value)
        coordinates = [
            v if v == TOTAL else label(d, v)
            for d, v in zip(request.dimensions, cell.coordinates, strict=True)
        ]
        rows.append([*coordinates, shown])
    statuses = {c.status for c in cells}
    notes = [f"{NOTES[s][0]} ({NOTES[s][1]})" for s in ("suppressed", "perturbed") if s in statuses]
    return ShownTable(
        [*dimensions, measure], rows, list(ordered), notes, chart_spec(request, dimensions, ordered)
    )


def chart_spec(
    request: TableRequest, dimensions: Sequence[str], cells: Sequence[ShownCell]
) -> dict[str, Any]:
    """A library-neutral chart: x = the first dimension, one series per value of the last one.

    Only the inner cells are drawn (margins are in the table); with more than two dimensions the middle ones
    must be filtered to one value by the caller, else the points overlap.
    """
    kind: ChartKind = request.chart
    if kind == "none":
        return {}
    inner = [c for c in cells if TOTAL not in c.coordinates]
    x_values = _distinct(c.coordinates[0] for c in inner)
    series_values = (
        _distinct(c.coordinates[-1] for c in inner) if len(dimensions) > 1 else [request.title or ""]
    )
    lookup = {
        (c.coordinates[0], c.coordinates[-1] if len(dimensions) > 1 else series_values[0]): c for c in inner
    }
    first, second = request.dimensions[0], request.dimensions[-1]
    series = []
    for s in series_values:
        points = [lookup.get((x, s)) for x in x_values]
        name = label(second, s) if len(dimensions) > 1 else s
        series.append({"name": name, "values": [None if p is None else p.value for p in points]})
    categories = [label(first, x) for x in x_values]
    return {
        "kind": kind,
        "x": dimensions[0],
        "categories": categories,
        "series": series,
        "series_dimension": dimensions[-1] if len(dimensions) > 1 else None,
    }


def _distinct(values: Any) -> list[Cell]:
    seen: list[Cell] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def _number(value: float) -> Cell:
    return int(value) if float(value).is_integer() else round(value, 2)


def _sort_key(value: Cell) -> tuple[int, Any]:
    if value == TOTAL:
        return (2, "")
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))
