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


def chart_from_rows(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> dict[str, Any]:
    """A chart spec from a shown table's rows alone, for a release stored without one (its table was saved
    with no chart, or recorded before charts were kept): the shape chooses it.

    x = the first column, one series per value of the last dimension (or one series named after the measure);
    a line when every x is a date (a table over periods), else bars. Rows with 計 are margins, not drawn; ``X``
    (suppressed) is a gap. Only the published values in ``rows`` are read. A table of more than two dimensions
    gets none (its points would overlap).
    """
    if not 2 <= len(header) <= 3 or not rows:
        return {}
    dims = len(header) - 1
    inner = [r for r in rows if len(r) == len(header) and TOTAL not in r[:dims]]
    if not inner:
        return {}
    x_values = _distinct(r[0] for r in inner)
    series_values = _distinct(r[dims - 1] for r in inner) if dims > 1 else [header[-1]]
    lookup = {(r[0], r[dims - 1] if dims > 1 else header[-1]): r[-1] for r in inner}

    def value(cell: Cell | None) -> float | None:
        return float(cell) if isinstance(cell, int | float) and not isinstance(cell, bool) else None

    over_periods = all(isinstance(x, str) and _is_date(x) for x in x_values)
    return {
        "kind": "line" if over_periods and len(x_values) > 1 else "bar",
        "x": header[0],
        "categories": [str(x) for x in x_values],
        "series": [
            {"name": str(s), "values": [value(lookup.get((x, s))) for x in x_values]} for s in series_values
        ],
        "series_dimension": header[dims - 1] if dims > 1 else None,
    }


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


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
