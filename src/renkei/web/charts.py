"""Charts of released tables as server-rendered SVG: bar, line over periods, population pyramid.

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


@dataclass(frozen=True, slots=True)
class Chart:
    kind: str
    svg: Markup
    categories: list[str]
    series: list[tuple[str, list[float | None]]]


def chart_of(spec: dict[str, Any], title: str, desc: str, *, ident: str = "chart") -> Chart | None:
    """The chart a spec asks for (``None`` when it asks for none or has nothing to draw).

    ``ident`` prefixes the ids of its ``<title>`` and ``<desc>``, so several charts on one page (a dashboard)
    each name their own.
    """
    kind = str(spec.get("kind", "none"))
    categories = [str(c) for c in spec.get("categories", [])]
    series = [(str(s.get("name", "")), list(s.get("values", []))) for s in spec.get("series", [])]
    if kind == "none" or not categories or not series:
        return None
    if kind == "pyramid" and len(series) == 2:
        body = _pyramid(categories, series)
    elif kind == "line":
        body = _line(categories, series)
    else:
        kind = "bar"
        body = _bar(categories, series)
    # Every text drawn (categories, series names, title) went through escape(); numbers are formatted here.
    svg = Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-labelledby="{escape(ident)}-title {escape(ident)}-desc"'
        ' xmlns="http://www.w3.org/2000/svg" font-size="11">'
        f'<title id="{escape(ident)}-title">{escape(title)}</title>'
        f'<desc id="{escape(ident)}-desc">{escape(desc)}</desc>'
        f"{body}{_legend(series)}</svg>"
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
