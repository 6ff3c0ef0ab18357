"""Dashboards on a real hub: pinned saved tables run through the builder's disclosure control, kept while the
granted snapshots stay the same, run again when a new period is granted, and refused for anything but tables."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from renkei.hub.access.authz import Actor
from renkei.hub.analysis import dashboards
from renkei.hub.analysis.errors import AnalysisError
from renkei.hub.analysis.ledger import DashboardTile, Release, ReleaseStatus
from renkei.hub.analysis.saved import save_analysis
from renkei.hub.services.decisions import NotFoundError
from renkei.hub.tables.request import Category, TableRequest
from tests.integration.workspace_world import WorkspaceWorld, make_workspace_world

BY_WARD = TableRequest(dataset="juki", dimensions=[Category(column="住所_ward")], title="区別の人口")


@pytest.fixture(scope="module")
def ww(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceWorld:
    return make_workspace_world(tmp_path_factory.mktemp("dashboards"), residents=200)


def releases(ww: WorkspaceWorld) -> int:
    with ww.hub.session() as session:
        return int(session.scalar(select(func.count()).select_from(Release)) or 0)


def test_a_pinned_table_is_protected_kept_and_run_again_for_a_new_period(ww: WorkspaceWorld) -> None:
    user, actor = ww.analyst()
    first, second = ww.periods
    ww.grant(user, "juki", [first])
    saved = save_analysis(ww.hub, actor, "区別の人口", BY_WARD, clock=ww.clock)
    assert dashboards.pinnable(ww.hub, actor)[0].theme == ""
    dashboards.pin(ww.hub, actor, saved.id, "population", clock=ww.clock)
    assert [p.theme for p in dashboards.pinnable(ww.hub, actor)] == ["population"]

    shown = dashboards.dashboard(ww.hub, actor, "population", clock=ww.clock)
    (tile,) = shown.tiles
    assert tile.rerun and tile.status == ReleaseStatus.RELEASED and tile.periods == [first.isoformat()]
    with ww.hub.session() as session:
        release = session.get_one(Release, tile.release_id)
        assert tile.rows == release.shown["rows"] and tile.header == release.shown["header"]
        assert release.record  # the rules it passed: it went through disclosure control
        true_counts = {int(c["n"]) for c in release.cells}
    assert tile.rows and all(len(row) == len(tile.header) for row in tile.rows)
    # The chart is the release's own spec (the kind saved with the table, bar), of its shown cells only.
    assert tile.chart == release.shown["chart"] and tile.chart["kind"] == "bar"
    shown_values = {row[0]: row[-1] for row in tile.rows if row[0] != "計"}
    drawn = dict(zip(tile.chart["categories"], tile.chart["series"][0]["values"], strict=True))
    assert {k: ("X" if v is None else v) for k, v in drawn.items()} == shown_values
    assert dashboards.dashboard(ww.hub, actor, "childcare", clock=ww.clock).tiles == []

    before = releases(ww)
    again = dashboards.dashboard(ww.hub, actor, "population", clock=ww.clock).tiles[0]
    assert not again.rerun and again.release_id == tile.release_id and releases(ww) == before

    ww.grant(user, "juki", [second])  # a new period imported and granted
    newer = dashboards.dashboard(ww.hub, actor, "population", clock=ww.clock).tiles[0]
    assert newer.rerun and newer.release_id != tile.release_id and releases(ww) == before + 1
    assert newer.periods == [first.isoformat(), second.isoformat()]
    assert true_counts  # the true counts stay in the ledger; the tile holds only the shown cells
    with ww.hub.session() as session:
        assert session.get_one(DashboardTile, saved.id).release_id == newer.release_id


def test_only_own_saved_tables_are_pinned_to_known_themes(ww: WorkspaceWorld) -> None:
    user, actor = ww.analyst()
    _, other = ww.analyst()
    table = save_analysis(ww.hub, actor, "表", BY_WARD, clock=ww.clock)
    sql = save_analysis(ww.hub, actor, "SQL", "SELECT count(*) FROM juki", clock=ww.clock)
    with pytest.raises(AnalysisError, match="集計表の作成"):
        dashboards.pin(ww.hub, actor, sql.id, "population", clock=ww.clock)
    with pytest.raises(AnalysisError, match="テーマ"):
        dashboards.pin(ww.hub, actor, table.id, "weather", clock=ww.clock)
    with pytest.raises(NotFoundError):
        dashboards.pin(ww.hub, other, table.id, "population", clock=ww.clock)
    with pytest.raises(NotFoundError):
        dashboards.dashboard(ww.hub, actor, "weather", clock=ww.clock)
    with pytest.raises(Exception, match="指定職員"):
        dashboards.pinnable(ww.hub, Actor.cli("cli:root"))

    dashboards.pin(ww.hub, actor, table.id, "care", clock=ww.clock)
    (tile,) = dashboards.dashboard(ww.hub, actor, "care", clock=ww.clock).tiles  # no grant at all
    assert tile.release_id is None and tile.problem_ja and tile.rows == []
    dashboards.pin(ww.hub, actor, table.id, "", clock=ww.clock)
    assert dashboards.dashboard(ww.hub, actor, "care", clock=ww.clock).tiles == []
    assert user.id != 0
