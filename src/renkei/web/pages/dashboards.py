"""Dashboards (ダッシュボード): my saved tables pinned to a page per theme (人口, 子育て, 介護 …).

Each theme's page shows its tables through :func:`renkei.hub.analysis.dashboards.dashboard`: the stored
release while the granted snapshots are the same, else the table run again through the builder's disclosure
control (a new period appears by itself), with its chart drawn by :mod:`renkei.web.charts` from the same
protected cells. ``POST /dashboards/pin`` pins a saved table to a theme or takes it off.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from starlette.responses import HTMLResponse, RedirectResponse

from renkei.hub.access.people import Role
from renkei.hub.analysis import dashboards
from renkei.hub.services.decisions import NotFoundError
from renkei.web.charts import Chart, chart_of
from renkei.web.context import Caller, SignedIn
from renkei.web.i18n import language_of
from renkei.web.pages.common import done, page

router = APIRouter(include_in_schema=False)

ThemeKey = Annotated[str, Form(max_length=32)]


def _context(caller: Caller, theme: str) -> dict[str, Any]:
    analyst = _analyst(caller)
    return {
        "themes": list(dashboards.THEMES),
        "theme": theme,
        "pinnable": dashboards.pinnable(caller.hub, caller.actor) if analyst else [],
        "analyst": analyst,
    }


@router.get("/dashboards", response_class=HTMLResponse)
def overview(request: Request, caller: SignedIn) -> HTMLResponse:
    """The themes, and which of my saved tables sit on each."""
    return page(request, caller, "dashboards.html", board=None, charts={}, **_context(caller, ""))


@router.get("/dashboards/{theme}", response_class=HTMLResponse)
def board(request: Request, theme: Annotated[str, Path(max_length=32)], caller: SignedIn) -> HTMLResponse:
    """One theme's tables, each cell as disclosure control let it out."""
    if theme not in dashboards.THEMES:
        raise NotFoundError("そのダッシュボードはありません", "no such dashboard")
    shown = (
        dashboards.dashboard(caller.hub, caller.actor, theme, clock=caller.clock)
        if _analyst(caller)
        else None
    )
    charts = _charts(shown, language_of(request)) if shown is not None else {}
    return page(request, caller, "dashboards.html", board=shown, charts=charts, **_context(caller, theme))


def _charts(shown: dashboards.Dashboard, language: str) -> dict[int, Chart]:
    """Each tile's chart (the kind saved with its table, else chosen by its shape), by analysis id."""
    charts = {}
    for tile in shown.tiles:
        desc = " × ".join(tile.header[:-1]) + (f" — {tile.header[-1]}" if tile.header else "")
        ident = f"tile-{tile.analysis_id}-chart"
        chart = chart_of(tile.chart, tile.name, desc, ident=ident, language=language)
        if chart is not None:
            charts[tile.analysis_id] = chart
    return charts


def _analyst(caller: Caller) -> bool:
    return caller.signed_in.role is Role.ANALYST


@router.post("/dashboards/pin")
def pin(
    caller: SignedIn, analysis_id: Annotated[int, Form(ge=1, le=2**31 - 1)], theme: ThemeKey = ""
) -> RedirectResponse:
    saved = dashboards.pin(caller.hub, caller.actor, analysis_id, theme, clock=caller.clock)
    return done(
        f"/dashboards/{theme}" if theme else "/dashboards", "pinned" if theme else "unpinned", saved.id
    )
