"""Dashboards (ダッシュボード): saved tables pinned to a page per theme, each cell disclosure-controlled.

A saved builder table (:mod:`renkei.hub.analysis.saved`) is pinned to one theme of :data:`THEMES` (人口, 子育て,
介護 …). Showing a theme runs each pinned table through the builder's own path — the caller's workspace
(grants decided by ``authorize()``), disclosure control, the differencing check and the release ledger
(:func:`renkei.hub.analysis.releases.release_table`) — and keeps the release it made as the tile
(:class:`~renkei.hub.analysis.ledger.DashboardTile`), keyed by the table's definition and the granted snapshots
it would read now (ids and versions). While that key holds, the tile shows its release again; a new period
imported into a grant, a new version or a grant ending changes the key, and the table is run again. Only a
release's protected cells are ever shown; a table the differencing check sends to review shows nothing until
a steward approves it. SQL analyses are not pinned (their results need not be tables the hub can protect).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.authz import Actor
from renkei.hub.access.grants import active_grants
from renkei.hub.analysis.errors import AnalysisError, analyst_id
from renkei.hub.analysis.ledger import DashboardTile, Release, ReleaseKind, ReleaseStatus, SavedAnalysis
from renkei.hub.analysis.releases import release_table
from renkei.hub.analysis.service import open_workspace, table_protector, threshold_for
from renkei.hub.audit_actions import AuditAction
from renkei.hub.home import Hub
from renkei.hub.services.decisions import NotFoundError
from renkei.hub.tables.display import chart_from_rows
from renkei.hub.tables.request import TableRequest

# The dashboard pages, in menu order: key → (Japanese, English).
THEMES: dict[str, tuple[str, str]] = {
    "population": ("人口", "Population"),
    "childcare": ("子育て", "Childcare"),
    "care": ("介護", "Long-term care"),
    "health": ("健康・医療", "Health"),
    "other": ("その他", "Other"),
}
SHOWN = frozenset({ReleaseStatus.RELEASED, ReleaseStatus.APPROVED})


@dataclass(frozen=True, slots=True)
class Tile:
    """One pinned table as the dashboard shows it: its release's protected cells, or why there are none."""

    analysis_id: int
    name: str
    release_id: int | None
    status: str  # the release's; "" when the table could not be run
    header: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)
    refreshed_at: dt.datetime | None = None
    rerun: bool = False  # run again for this view (new snapshots), not shown from the stored tile
    problem_ja: str = ""
    problem_en: str = ""
    chart: dict[str, Any] = field(default_factory=dict)  # the release's chart spec of its protected cells


@dataclass(frozen=True, slots=True)
class Pinnable:
    id: int
    name: str
    theme: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    theme: str
    tiles: list[Tile]


def pinnable(hub: Hub, actor: Actor) -> list[Pinnable]:
    """The caller's saved builder tables and the theme each is pinned to ("" for none)."""
    user_id = analyst_id(actor)
    with hub.session() as session:
        saved = session.scalars(
            select(SavedAnalysis)
            .where(SavedAnalysis.user_id == user_id, SavedAnalysis.kind == ReleaseKind.TABLE)
            .order_by(SavedAnalysis.name)
        )
        return [Pinnable(s.id, s.name, s.theme if s.theme in THEMES else "") for s in saved]


def pin(
    hub: Hub, actor: Actor, analysis_id: int, theme: str, *, clock: Clock = SYSTEM_CLOCK
) -> SavedAnalysis:
    """Pin one's saved table to ``theme`` (a key of :data:`THEMES`), or unpin it (``""``)."""
    user_id = analyst_id(actor)
    if theme and theme not in THEMES:
        raise AnalysisError(f"テーマ {theme} はありません", f"no theme {theme!r}", None)
    with hub.session() as session:
        saved = session.get(SavedAnalysis, analysis_id)
        if saved is None or saved.user_id != user_id:  # another's is not told from none, but on the record
            hub.audit.append(
                actor=actor.name,
                action=AuditAction.DASHBOARD_PIN,
                resource=f"analysis/{analysis_id}",
                result="denied",
                reason="no such saved analysis" if saved is None else "another user's saved analysis",
                terminal=actor.terminal,
                client_addr=actor.client_addr,
                details={"theme": theme},
            )
            raise NotFoundError("保存した分析がありません", "no such saved analysis of yours")
        if saved.kind != ReleaseKind.TABLE:
            raise AnalysisError(
                "ダッシュボードには「集計表の作成」で保存した表だけを置けます",
                "only tables saved from the table builder can be pinned to a dashboard",
                None,
            )
        saved.theme, saved.updated_at = theme, clock.now()
        session.commit()
        session.refresh(saved)
        session.expunge(saved)
    hub.audit.append(
        actor=actor.name,
        action=AuditAction.DASHBOARD_PIN,
        resource=f"analysis/{analysis_id}",
        terminal=actor.terminal,
        client_addr=actor.client_addr,
        details={"theme": theme},
    )
    return saved


def snapshots_key(
    session: Session, user_id: int, definition: dict[str, Any], clock: Clock
) -> tuple[str, list[str]]:
    """The tile's key — the definition and the granted snapshots (id, version) of its datasets usable now —
    and those snapshots' periods."""
    request = TableRequest.model_validate(definition)
    datasets = {request.dataset, *(link.dataset for link in request.links)}
    snapshots = {
        (s.dataset.name, s.period.isoformat(), s.id, s.version)
        for g in active_grants(session, user_id, clock)
        if g.dataset.name in datasets
        for s in g.snapshots
    }
    body = json.dumps({"definition": definition, "snapshots": sorted(snapshots)}, sort_keys=True, default=str)
    periods = sorted({p for name, p, _, _ in snapshots if name == request.dataset})
    return hashlib.sha256(body.encode()).hexdigest(), periods


def dashboard(hub: Hub, actor: Actor, theme: str, *, clock: Clock = SYSTEM_CLOCK) -> Dashboard:
    """The theme's tiles: each pinned table from its stored release while its key holds, else run again (all
    stale tables in one workspace), each through the builder's disclosure control and the ledger."""
    if theme not in THEMES:
        raise NotFoundError("そのダッシュボードはありません", "no such dashboard")
    user_id = analyst_id(actor)
    with hub.session() as session:
        pinned = list(
            session.scalars(
                select(SavedAnalysis)
                .where(
                    SavedAnalysis.user_id == user_id,
                    SavedAnalysis.theme == theme,
                    SavedAnalysis.kind == ReleaseKind.TABLE,
                )
                .order_by(SavedAnalysis.name)
            )
        )
        plans = []
        for saved in pinned:
            key, periods = snapshots_key(session, user_id, saved.definition, clock)
            tile = session.get(DashboardTile, saved.id)
            kept = tile if tile is not None and tile.snapshots_key == key else None
            plans.append(_Plan(saved.id, saved.name, dict(saved.definition), key, periods, kept))
        shown = {p.analysis_id: _from_release(session, p, p.kept) for p in plans if p.kept is not None}
    stale = [p for p in plans if p.kept is None]
    if stale:
        shown.update(_run(hub, actor, stale, clock))
    return Dashboard(theme, [shown[p.analysis_id] for p in plans])


@dataclass(frozen=True, slots=True)
class _Plan:
    analysis_id: int
    name: str
    definition: dict[str, Any]
    key: str
    periods: list[str]
    kept: DashboardTile | None  # the stored tile, when its key still holds


def _from_release(session: Session, plan: _Plan, stored: DashboardTile, *, rerun: bool = False) -> Tile:
    release = session.get_one(Release, stored.release_id, populate_existing=True)
    shown = release.shown
    header = list(shown.get("header", []))
    visible = release.status in SHOWN  # in review or rejected: nothing of it is shown
    rows = list(shown.get("rows", [])) if visible else []
    chart: dict[str, Any] = {}
    if visible:  # the kind saved with the table; a table saved with none, or an older release: by its shape
        chart = dict(shown.get("chart") or {})
        if not chart.get("categories"):
            chart = chart_from_rows(header, rows)
    return Tile(
        plan.analysis_id,
        plan.name,
        release.id,
        release.status,
        header=header,
        rows=rows,
        notes=[str(n) for n in shown.get("notes", [])] if visible else [],
        periods=plan.periods,
        refreshed_at=stored.refreshed_at,
        rerun=rerun,
        chart=chart,
    )


def _run(hub: Hub, actor: Actor, plans: list[_Plan], clock: Clock) -> dict[int, Tile]:
    tiles: dict[int, Tile] = {}
    try:
        with open_workspace(hub, actor, clock=clock) as workspace:
            for plan in plans:
                try:
                    request = TableRequest.model_validate(plan.definition)
                    _, release = release_table(
                        hub, workspace, actor, request, table_protector(hub),
                        threshold=threshold_for(hub, request), clock=clock,
                    )  # fmt: skip
                except RenkeiError as exc:
                    tiles[plan.analysis_id] = _failed(plan, exc)
                    continue
                with hub.session() as session:
                    stored = session.get(DashboardTile, plan.analysis_id) or DashboardTile(
                        analysis_id=plan.analysis_id
                    )
                    stored.release_id, stored.snapshots_key = release.id, plan.key
                    stored.refreshed_at = clock.now()
                    session.add(stored)
                    session.commit()
                    tiles[plan.analysis_id] = _from_release(session, plan, stored, rerun=True)
    except RenkeiError as exc:  # the workspace would not open (no active grant, …): every stale tile says why
        for plan in plans:
            tiles.setdefault(plan.analysis_id, _failed(plan, exc))
    return tiles


def _failed(plan: _Plan, exc: RenkeiError) -> Tile:
    return Tile(
        plan.analysis_id, plan.name, None, "", periods=plan.periods, problem_ja=exc.ja, problem_en=exc.en
    )
