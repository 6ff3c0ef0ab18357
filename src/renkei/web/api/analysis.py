"""``/api/v1/workspace``, ``/tables``, ``/query``, ``/exports``, ``/releases``: the analysis path.

Each route parses, calls one function of :mod:`renkei.hub.analysis.service` and renders. The workspace is
the login session's, kept between requests (:class:`renkei.hub.workspace.pool.SessionWorkspaces`): opening it
authorizes every granted snapshot (so a caller without grants decides nothing and is refused), each query
re-checks the grants, and only disclosure-controlled values come back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field

from renkei.hub.analysis import service
from renkei.hub.analysis.ledger import ExportFormat, Release
from renkei.hub.tables.files import Cell
from renkei.hub.tables.request import TableRequest
from renkei.web.context import SignedIn, SteppedUp
from renkei.web.models import View
from renkei.web.params import ReleaseId

router = APIRouter(tags=["analysis"])

MAX_SQL = 20_000
MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class TableView(View):
    release_id: int
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str]
    chart: dict[str, Any]
    sql: str  # the SQL the SQL path would run for the same table
    record: dict[str, Any]  # the release record: rules, parameters, versions


class QueryIn(View):
    sql: str = Field(min_length=1, max_length=MAX_SQL)
    review_reason: str | None = Field(None, min_length=1, max_length=2000, pattern=r"\S")  # keep for review


class QueryView(View):
    kind: Literal["aggregate", "rows", "review"]
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str]
    release_id: int | None
    truncated: bool


class ExportIn(View):
    release_id: int = Field(ge=1, le=2**31 - 1)
    format: ExportFormat = ExportFormat.XLSX


class ReviewIn(View):
    approve: bool
    comment: str = Field(min_length=1, max_length=2000, pattern=r"\S")


class ReleaseView(View):
    id: int
    status: str
    review_comment: str


@router.post("/tables", response_model=TableView)
def build_table(body: TableRequest, caller: SignedIn) -> TableView:
    """Build a disclosure-controlled table in the caller's workspace (集計表の作成)."""
    outcome = service.table_for(
        caller.portal.hub,
        caller.actor,
        body,
        clock=caller.portal.clock,
        workspaces=caller.portal.workspaces.lease,
    )
    shown = outcome.shown
    return TableView(
        release_id=outcome.release_id, header=shown.header, rows=shown.rows, notes=shown.notes,
        chart=shown.chart, sql=outcome.sql, record=outcome.record,
    )  # fmt: skip


@router.post("/query", response_model=QueryView)
def run_query(body: QueryIn, caller: SignedIn) -> QueryView:
    """Run one SELECT in the caller's sandbox; IDs are refused, aggregates protected, rows only for 個票閲覧."""
    result = service.sql_for(
        caller.portal.hub, caller.actor, body.sql, review_reason=body.review_reason, clock=caller.portal.clock,
        workspaces=caller.portal.workspaces.lease,
    )  # fmt: skip
    return QueryView(
        kind=result.kind, header=result.header, rows=result.rows, notes=result.notes,
        release_id=result.release_id, truncated=result.truncated,
    )  # fmt: skip


@router.post(
    "/exports", response_class=Response, responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}}}
)
def export(body: ExportIn, caller: SteppedUp) -> Response:
    """A released table as a file, within the caller's download permission and quota."""
    exported = service.export_release(caller.portal.hub, caller.actor, body.release_id, body.format,
                                      clock=caller.portal.clock)  # fmt: skip
    return Response(
        exported.content,
        media_type=MEDIA_TYPES[body.format],
        headers={
            "Content-Disposition": f'attachment; filename="{exported.file_name}"',
            "X-Content-SHA256": exported.sha256,
        },
    )


class ReleaseInReview(View):
    id: int
    requester_id: int
    datasets: list[str]
    sql: str
    header: list[str]
    rows: list[list[Cell]]
    reason: str
    created_at: dt.datetime


@router.get("/releases/review", response_model=list[ReleaseInReview])
def in_review(caller: SignedIn) -> list[ReleaseInReview]:
    """Tables waiting for the caller's decision (stewards of an owning department; others get none)."""
    return [_in_review(r) for r in service.in_review_for(caller.portal.hub, caller.actor)]


def _in_review(release: Release) -> ReleaseInReview:
    return ReleaseInReview(
        id=release.id, requester_id=release.user_id, datasets=release.datasets, sql=release.sql,
        header=release.shown["header"], rows=release.shown["rows"], reason=release.review_reason,
        created_at=release.created_at,
    )  # fmt: skip


@router.post("/releases/{release_id}/review", response_model=ReleaseView)
def review(release_id: ReleaseId, body: ReviewIn, caller: SteppedUp) -> ReleaseView:
    """A steward of an owning department (not the requester) approves or rejects a table in review."""
    release = service.decide_review(caller.portal.hub, caller.actor, release_id, approve=body.approve,
                                    comment=body.comment, clock=caller.portal.clock)  # fmt: skip
    return ReleaseView(id=release.id, status=release.status, review_comment=release.review_comment)


class WorkspaceViewOut(View):
    name: str
    dataset: str
    periods: list[dt.date]
    columns: dict[str, str]
    row_level: bool


@router.get("/workspace", response_model=list[WorkspaceViewOut])
def workspace(caller: SignedIn) -> list[WorkspaceViewOut]:
    """The views the caller's workspace holds now: one per granted dataset (with ``period``), their columns."""
    return [
        WorkspaceViewOut(
            name=v.name, dataset=v.dataset, periods=v.periods, columns=v.columns, row_level=v.row_level
        )
        for v in service.workspace_outline(caller.portal.hub, caller.actor, clock=caller.portal.clock)
    ]
