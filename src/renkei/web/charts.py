"""Charts of released tables as server-rendered SVG: bar, line over periods, population pyramid, and the
schematic ward map (区の模式図: Kobe's nine wards as tiles in a grid, coloured by value class).

Drawn from the builder's library-neutral chart spec (:func:`renkei.hub.tables.display.chart_spec`), so only
published values are drawn. No script, no inline style (the CSP forbids both): colours are SVG presentation
attributes. A suppressed cell (``None``) is a gap marked ``X``, never a zero bar. Each chart has a ``<title>``
and ``<desc>``; the page shows the same numbers in a table next to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

PALETTE = ("#1f5fa8", "#c45a00", "#2e7d4f", "#a8324a", "#6a4fa8", "#5c5c5c", "#00808a", "#8a6d00")
WIDTH, HEIGHT = 760, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 40, 72
GAP_MARK = "X"

# 区の模式図: (ward, row, first column, columns spanned). Row 0 the north (西区, 北区), row 1 the coast from west
# to east. A tile-grid cartogram: the wards' relative positions, not their shapes or areas (no package this
# project reaches holds Kobe's ward boundaries; docs/web.md).
WARD_TILES: tuple[tuple[str, int, int, int], ...] = (
    ("西区", 0, 0, 2),
    ("北区", 0, 2, 5),
    ("垂水区", 1, 0, 1),
    ("須磨区", 1, 1, 1),
    ("長田区", 1, 2, 1),
    ("兵庫区", 1, 3, 1),
    ("中央区", 1, 4, 1),
    ("灘区", 1, 5, 1),
    ("東灘区", 1, 6, 1),
)
# ColorBrewer "Blues" (sequential, one hue: colour-blind safe), light to dark, with a text colour per class
# that keeps 4.5:1 contrast on it.
SEQUENTIAL = ("#eff3ff", "#bdd7e7", "#6baed6", "#2171b5", "#08306b")
SEQUENTIAL_TEXT = ("#1a1a1a", "#1a1a1a", "#1a1a1a", "#ffffff", "#ffffff")
CLASSES = len(SEQUENTIAL)
TILE_W, TILE_H, TILE_GAP, TILES_LEFT, TILES_TOP = 80, 96, 4, 16, 44
WARDMAP_HEIGHT = 320
# The ward map's own words, in the page's language (the other charts draw only the table's labels).
WARDMAP_WORDS: dict[str, dict[str, str]] = {
    "ja": {
        "caption": "模式図：区の位置関係を表したもので、実際の境界ではありません",
        "legend": "凡例（以上〜未満）",
        "suppressed": "秘匿",
        "missing": "結果なし",
        "missing_long": "この区は結果にありません",
        "others": "図にない値",
        "class": "階級",
        "range": "〜",
    },
    "en": {
        "caption": "Schematic: the wards' relative positions, not their actual boundaries",
        "legend": "Legend (≥ from, < to)",
        "suppressed": "suppressed",
        "missing": "no result",
        "missing_long": "this ward is not in the result",
        "others": "Not on the map",
        "class": "class",
        "range": "–",
    },
}


@dataclass(frozen=True, slots=True)
class Chart:
    kind: str
    svg: Markup
    categories: list[str]
    series: list[tuple[str, list[float | None]]]


def chart_of(
    spec: dict[str, Any], title: str, desc: str, *, ident: str = "chart", language: str = "ja"
) -> Chart | None:
    """The chart a spec asks for (``None`` when it asks for none or has nothing to draw).

    ``ident`` prefixes the ids of its ``<title>`` and ``<desc>`` (and the ward map's hatching), so several
    charts on one page (a dashboard) each name their own. ``language`` (ja, en) is the ward map's own words.
    """
    kind = str(spec.get("kind", "none"))
    categories = [str(c) for c in spec.get("categories", [])]
    series = [(str(s.get("name", "")), list(s.get("values", []))) for s in spec.get("series", [])]
    if kind == "none" or not categories or not series:
        return None
    height = HEIGHT
    if kind == "wardmap":
        words = WARDMAP_WORDS.get(language, WARDMAP_WORDS["ja"])
        body = _wardmap(categories, series[0][1], words, ident)
        desc = f"{desc} — {words['caption']}" if desc else words["caption"]
        height = WARDMAP_HEIGHT
    elif kind == "pyramid" and len(series) == 2:
        body = _pyramid(categories, series)
    elif kind == "line":
        body = _line(categories, series)
    else:
        kind = "bar"
        body = _bar(categories, series)
    # Every text drawn (categories, series names, title) went through escape(); numbers are formatted here.
    legend = "" if kind == "wardmap" else _legend(series)
    svg = Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img"'
        f' aria-labelledby="{escape(ident)}-title {escape(ident)}-desc"'
        ' xmlns="http://www.w3.org/2000/svg" font-size="11">'
        f'<title id="{escape(ident)}-title">{escape(title)}</title>'
        f'<desc id="{escape(ident)}-desc">{escape(desc)}</desc>'
        f"{body}{legend}</svg>"
    )
    return Chart(kind, svg, categories, series)


def nice_max(value: float) -> float:
    """The top of the axis: 1, 2, 2.5 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _values(series: Sequence[tuple[str, list[float | None]]]) -> list[float]:
    return [v for _, values in series for v in values if v is not None]


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _y_axis(top: float, plot_h: float) -> str:
    parts = []
    for i in range(6):
        value = top * i / 5
        y = TOP + plot_h - plot_h * i / 5
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d4da"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#333">{_number(value)}</text>'
        )
    return "".join(parts)


def _x_labels(categories: Sequence[str], centre: Any) -> str:
    rotate = len(categories) > 8
    parts = []
    for i, category in enumerate(categories):
        x = centre(i)
        y = HEIGHT - BOTTOM + 16
        transform = f' transform="rotate(-40 {x:.1f} {y})"' if rotate else ""
        anchor = "end" if rotate else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{y}" text-anchor="{anchor}"{transform} fill="#333">{escape(category)}</text>'
        )
    return "".join(parts)


def _gap(x: float, y: float) -> str:
    return f'<text class="gap" x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="#a8324a">{GAP_MARK}</text>'


def _bar(categories: Sequence[str], series: Sequence[tuple[str, list[float | None]]]) -> str:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_max(max(_values(series), default=0))
    slot = plot_w / len(categories)
    bar_w = slot * 0.8 / len(series)
    parts = [_y_axis(top, plot_h)]
    for s, (name, values) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        for i, value in enumerate(values):
            x = LEFT + slot * i + slot * 0.1 + bar_w * s
            if value is None:
                parts.append(_gap(x + bar_w / 2, TOP + plot_h - 3))
                continue
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}"'
                f' fill="{colour}"><title>{escape(name)} {escape(categories[i])}: {_number(value)}</title></rect>'
            )
    parts.append(_x_labels(categories, lambda i: LEFT + slot * (i + 0.5)))
    return "".join(parts)


def _line(categories: Sequence[str], series: Sequence[tuple[str, list[float | None]]]) -> str:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_max(max(_values(series), default=0))
    step = plot_w / max(len(categories) - 1, 1)

    def x_of(i: int) -> float:
        return LEFT + (step * i if len(categories) > 1 else plot_w / 2)

    parts = [_y_axis(top, plot_h)]
    for s, (name, values) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        run: list[str] = []
        for i, value in enumerate([*values, None]):
            if value is None:  # a gap ends the line; it starts again after it
                if len(run) > 1:
                    parts.append(
                        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>'
                    )
                run = []
                if i < len(values):
                    parts.append(_gap(x_of(i), TOP + plot_h - 3))
                continue
            y = TOP + plot_h - plot_h * value / top
            run.append(f"{x_of(i):.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x_of(i):.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(name)} {escape(categories[i])}: {_number(value)}</title></circle>"
            )
    parts.append(_x_labels(categories, x_of))
    return "".join(parts)


def _pyramid(categories: Sequence[str], series: Sequence[tuple[str, list[float | None]]]) -> str:
    """Age bands upwards, the first series to the left of the centre, the second to the right."""
    label_w = 80
    plot_h = HEIGHT - TOP - 40
    half = (WIDTH - LEFT - RIGHT - label_w) / 2
    centre_left = LEFT + half
    centre_right = centre_left + label_w
    top = nice_max(max(_values(series), default=0))
    row = plot_h / len(categories)
    parts = []
    for i, category in enumerate(categories):
        y = TOP + plot_h - row * (i + 1)
        parts.append(
            f'<text x="{centre_left + label_w / 2:.1f}" y="{y + row * 0.7:.1f}" text-anchor="middle"'
            f' fill="#333">{escape(category)}</text>'
        )
        for s, (name, values) in enumerate(series):
            value = values[i] if i < len(values) else None
            colour = PALETTE[s % len(PALETTE)]
            if value is None:
                x = centre_left - 8 if s == 0 else centre_right + 8
                parts.append(_gap(x, y + row * 0.7))
                continue
            w = half * value / top
            x = centre_left - w if s == 0 else centre_right
            parts.append(
                f'<rect x="{x:.1f}" y="{y + row * 0.1:.1f}" width="{w:.1f}" height="{max(row * 0.8, 1):.1f}"'
                f' fill="{colour}"><title>{escape(name)} {escape(category)}: {_number(value)}</title></rect>'
            )
    axis_y = TOP + plot_h + 14
    for value, anchor in ((top, "start"), (top / 2, "middle"), (0, "end")):
        parts.append(
            f'<text x="{centre_left - half * value / top:.1f}" y="{axis_y}" text-anchor="{anchor}"'
            f' fill="#333">{_number(value)}</text>'
            f'<text x="{centre_right + half * value / top:.1f}" y="{axis_y}"'
            f' text-anchor="{"end" if anchor == "start" else "middle" if anchor == "middle" else "start"}"'
            f' fill="#333">{_number(value)}</text>'
        )
    return "".join(parts)


def _legend(series: Sequence[tuple[str, list[float | None]]]) -> str:
    parts = []
    x = LEFT
    for s, (name, _) in enumerate(series[: len(PALETTE) * 2]):
        colour = PALETTE[s % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="12" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="22" fill="#333">{escape(name)}</text>'
        )
        x += 24 + 12 * max(len(name), 2)
    return "".join(parts)


def class_breaks(values: Sequence[float], classes: int = CLASSES) -> list[float]:
    """``classes + 1`` edges of equal classes on a round step (1, 2, 2.5, 3, 4, 5, 6 or 8 times a power of
    ten), from at or below the smallest value to at or above the largest."""
    if not values:
        return [float(i) for i in range(classes + 1)]
    low, high = min(values), max(values)
    span = high - low
    step = _round_step(span / classes if span > 0 else max(abs(high), 1.0) / classes)
    start = math.floor(low / step) * step
    while start + step * classes < high:  # flooring the start can leave the largest value above the top
        step = _round_step(step * 1.0001)
        start = math.floor(low / step) * step
    return [round(start + step * i, 9) for i in range(classes + 1)]


def _round_step(value: float) -> float:
    power = 10 ** math.floor(math.log10(value))
    return float(next(s * power for s in (1, 2, 2.5, 3, 4, 5, 6, 8, 10) if value <= s * power))


def value_class(value: float, breaks: Sequence[float]) -> int:
    """The class (0 lightest … len(breaks) - 2 darkest) of ``value``: lower edge included, upper not (the top
    class includes its upper edge)."""
    for i in range(len(breaks) - 2, 0, -1):
        if value >= breaks[i]:
            return i
    return 0


def _wardmap(
    categories: Sequence[str], values: Sequence[float | None], words: dict[str, str], ident: str
) -> str:
    """The nine wards as tiles (:data:`WARD_TILES`), each with its name and value as text (not colour alone);
    a suppressed ward hatched with the X mark; a ward missing from the result drawn empty and saying so."""
    by_ward = dict(zip(categories, values, strict=False))
    wards = {w for w, *_ in WARD_TILES}
    breaks = class_breaks([v for c, v in by_ward.items() if c in wards and v is not None])
    hatch = f"{escape(ident)}-hatch"
    parts = [
        f'<defs><pattern id="{hatch}" patternUnits="userSpaceOnUse" width="8" height="8"'
        ' patternTransform="rotate(45)"><rect width="8" height="8" fill="#e6e6e6"/>'
        '<line x1="0" y1="0" x2="0" y2="8" stroke="#9a9a9a" stroke-width="3"/></pattern></defs>'
    ]
    for ward, row, column, span in WARD_TILES:
        x = TILES_LEFT + column * (TILE_W + TILE_GAP)
        y = TILES_TOP + row * (TILE_H + TILE_GAP)
        w = span * TILE_W + (span - 1) * TILE_GAP
        cx, name = x + w / 2, escape(ward)
        if ward not in by_ward:
            parts.append(
                f'<g class="ward ward-missing"><title>{name}: {escape(words["missing_long"])}</title>'
                f'<rect x="{x}" y="{y}" width="{w}" height="{TILE_H}" fill="#ffffff" stroke="#767676"'
                ' stroke-dasharray="4 3"/>'
                f'<text x="{cx:.1f}" y="{y + 36}" text-anchor="middle" font-size="13" fill="#333">{name}</text>'
                f'<text x="{cx:.1f}" y="{y + 60}" text-anchor="middle" fill="#555">{escape(words["missing"])}'
                "</text></g>"
            )
            continue
        value = by_ward[ward]
        if value is None:
            parts.append(
                f'<g class="ward ward-suppressed"><title>{name}: {GAP_MARK} ({escape(words["suppressed"])})</title>'
                f'<rect x="{x}" y="{y}" width="{w}" height="{TILE_H}" fill="url(#{hatch})" stroke="#333"/>'
                f'<rect x="{cx - 32:.1f}" y="{y + 20}" width="64" height="58" fill="#ffffff" stroke="#767676"/>'
                f'<text x="{cx:.1f}" y="{y + 38}" text-anchor="middle" font-size="13" fill="#1a1a1a">{name}</text>'
                f"{_gap(cx, y + 56)}"
                f'<text x="{cx:.1f}" y="{y + 71}" text-anchor="middle" font-size="10" fill="#1a1a1a">'
                f"{escape(words['suppressed'])}</text></g>"
            )
            continue
        k = value_class(value, breaks)
        shown = _number(value)
        parts.append(
            f'<g class="ward" data-class="{k + 1}"><title>{name}: {shown}'
            f" ({escape(words['class'])} {k + 1}/{CLASSES}: {_range(breaks, k, words)})</title>"
            f'<rect x="{x}" y="{y}" width="{w}" height="{TILE_H}" fill="{SEQUENTIAL[k]}" stroke="#333"/>'
            f'<text x="{cx:.1f}" y="{y + 38}" text-anchor="middle" font-size="13" fill="{SEQUENTIAL_TEXT[k]}">'
            f"{name}</text>"
            f'<text x="{cx:.1f}" y="{y + 60}" text-anchor="middle" font-size="14" font-weight="bold"'
            f' fill="{SEQUENTIAL_TEXT[k]}">{shown}</text></g>'
        )
    parts.append(_class_legend(breaks, words, hatch))
    others = [
        f"{escape(c)} {GAP_MARK if v is None else _number(v)}" for c, v in by_ward.items() if c not in wards
    ]
    bottom = TILES_TOP + 2 * TILE_H + TILE_GAP
    if others:
        parts.append(
            f'<text class="others" x="{TILES_LEFT}" y="{bottom + 22}" fill="#333">'
            f"{escape(words['others'])}: {'、'.join(others)}</text>"
        )
    parts.append(
        f'<text class="caption" x="{TILES_LEFT}" y="{WARDMAP_HEIGHT - 14}" fill="#333">'
        f"{escape(words['caption'])}</text>"
    )
    return "".join(parts)


def _range(breaks: Sequence[float], k: int, words: dict[str, str]) -> str:
    return f"{_number(breaks[k])}{words['range']}{_number(breaks[k + 1])}"


def _class_legend(breaks: Sequence[float], words: dict[str, str], hatch: str) -> str:
    x = TILES_LEFT + 7 * (TILE_W + TILE_GAP) + 16
    parts = [
        f'<g class="legend"><text x="{x}" y="{TILES_TOP - 8}" fill="#333">{escape(words["legend"])}</text>'
    ]
    for k in range(CLASSES - 1, -1, -1):  # the darkest (largest) at the top
        y = TILES_TOP + (CLASSES - 1 - k) * 22
        parts.append(
            f'<rect x="{x}" y="{y}" width="18" height="16" fill="{SEQUENTIAL[k]}" stroke="#333"/>'
            f'<text x="{x + 24}" y="{y + 12}" fill="#333">{_range(breaks, k, words)}</text>'
        )
    y = TILES_TOP + CLASSES * 22 + 6
    parts.append(
        f'<rect x="{x}" y="{y}" width="18" height="16" fill="url(#{hatch})" stroke="#333"/>'
        f'<text x="{x + 24}" y="{y + 12}" fill="#333">{GAP_MARK} {escape(words["suppressed"])}</text>'
        f'<rect x="{x}" y="{y + 22}" width="18" height="16" fill="#ffffff" stroke="#767676"'
        ' stroke-dasharray="4 3"/>'
        f'<text x="{x + 24}" y="{y + 34}" fill="#333">{escape(words["missing"])}</text></g>'
    )
    return "".join(parts)
