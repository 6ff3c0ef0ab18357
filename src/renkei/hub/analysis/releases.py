"""Releasing a builder table: build, protect, record in the ledger (公表台帳)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Actor, Forbidden
from renkei.hub.analysis.ledger import (
    Release,
    ReleaseKind,
    ReleaseStatus,
)
from renkei.hub.home import Hub
from renkei.hub.tables.display import ShownTable
from renkei.hub.tables.files import Cell
from renkei.hub.tables.request import TableRequest
from renkei.hub.tables.service import BuiltTable, CellProtector, build_table
from renkei.hub.workspace.workspace import Workspace


def release_table(
    hub: Hub,
    workspace: Workspace,
    actor: Actor,
    request: TableRequest,
    protect: CellProtector,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[BuiltTable, Release]:
    """Build, protect and record one table; the ledger row says whether it was released or sent to review."""
    built = build_table(workspace, request, protect)
    datasets = sorted({request.dataset, *(link.dataset for link in request.links)})
    with hub.session() as session:
        release = record_release(
            session,
            actor,
            kind=ReleaseKind.TABLE,
            title=request.title,
            definition=request.model_dump(mode="json"),
            sql=built.sql,
            snapshot_ids=snapshot_ids_of(workspace),
            datasets=datasets,
            shown=built.shown,
            record=built.record,
            status=ReleaseStatus.RELEASED,
            clock=clock,
        )
        session.commit()
        session.refresh(release)
        session.expunge(release)
    hub.audit.append(
        actor=actor.name,
        action="table.release",
        resource=f"release/{release.id}",
        details={"sql": built.sql, "record_sha256": built.record_sha256(), "status": release.status},
    )
    return built, release


def record_release(
    session: Session,
    actor: Actor,
    *,
    kind: ReleaseKind,
    title: str,
    definition: dict[str, Any],
    sql: str,
    snapshot_ids: list[int],
    datasets: list[str],
    shown: ShownTable,
    record: dict[str, Any],
    status: ReleaseStatus,
    clock: Clock,
    true_counts: list[dict[str, Any]] | None = None,
) -> Release:
    if actor.user_id is None:
        raise Forbidden("分析は指定職員のみが行えます", "only designated staff analyse data")
    release = Release(
        user_id=actor.user_id,
        kind=kind,
        title=title,
        definition=definition,
        sql=sql,
        snapshot_ids=snapshot_ids,
        datasets=datasets,
        cells=true_counts if true_counts is not None else _true_counts(record),
        shown={
            "header": shown.header,
            "rows": _jsonable(shown.rows),
            "notes": shown.notes,
            "chart": shown.chart,
        },
        record=record,
        record_sha256=hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest(),
        status=status,
        created_at=clock.now(),
    )
    session.add(release)
    session.flush()
    return release


def _true_counts(record: dict[str, Any]) -> list[dict[str, Any]]:
    return list(record.pop("_true_counts", []))


def _jsonable(rows: Sequence[Sequence[Cell]]) -> list[list[Cell]]:
    return [[v if v is None or isinstance(v, int | float | str) else str(v) for v in row] for row in rows]


def shown_value(value: float | None) -> Cell:
    if value is None:
        return "X"
    return int(value) if float(value).is_integer() else round(value, 1)


def notes_for(values: Sequence[float | None], record: dict[str, Any]) -> list[str]:
    notes = [str(n) for n in record.get("notes", [])]
    if any(v is None for v in values) and not any(n.startswith("X") for n in notes):
        notes.append("X: 秘匿 (suppressed)")
    return notes


def snapshot_ids_of(workspace: Workspace) -> list[int]:
    return [o.snapshot_id for o in workspace.opened]
