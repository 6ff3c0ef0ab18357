"""Releasing a builder table: build, protect, record in the ledger (公表台帳)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Actor
from renkei.hub.analysis.errors import AnalysisError, analyst_id
from renkei.hub.analysis.ledger import (
    Release,
    ReleaseKind,
    ReleaseStatus,
)
from renkei.hub.assessment import link_rates_for
from renkei.hub.audit_actions import AuditAction
from renkei.hub.disclosure.differencing import Release as LedgerEntry
from renkei.hub.disclosure.differencing import differencing_risks, population_contains
from renkei.hub.home import Hub
from renkei.hub.tables.display import ShownTable
from renkei.hub.tables.files import Cell, as_cell
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
    threshold: int,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[BuiltTable, Release]:
    """Build, protect and record one table. Differencing against the caller's earlier releases decides: a
    recoverable small group refuses the table; one masked only by perturbation sends it to review."""
    built = build_table(workspace, request, protect)
    counts = _cell_counts(built)
    with hub.session() as session:
        if (rates := link_rates_for(session, request, workspace.opened)) is not None:  # docs/risk.md
            built = replace(built, record={**built.record, "linkage": rates})
        risks = differencing_risks(
            _ledger_entry("new", request.model_dump(mode="json"), counts),
            _earlier(session, actor, request),
            threshold,
        )
        if any(r.action == "refuse" for r in risks):
            session.rollback()
            _audit(hub, actor, None, built, "refused", len(risks))
            raise AnalysisError(
                "以前に公表した集計表との差から少人数の集団が分かるため、この集計表は公表できません"
                "（条件や区分を変えてください）",
                "together with a table released earlier, this table would reveal a small group by differencing",
                None,
            )
        status = ReleaseStatus.REVIEW if risks else ReleaseStatus.RELEASED
        release = record_release(
            session,
            actor,
            kind=ReleaseKind.TABLE,
            title=request.title,
            definition=request.model_dump(mode="json"),
            sql=built.sql,
            snapshot_ids=snapshot_ids_of(workspace),
            datasets=sorted({request.dataset, *(link.dataset for link in request.links)}),
            shown=built.shown,
            record=built.record,
            status=status,
            clock=clock,
            true_counts=counts,
            review_reason="差分による少人数の特定のおそれ (differencing risk)" if risks else "",
        )
        session.commit()
        session.refresh(release)
        session.expunge(release)
    _audit(hub, actor, release.id, built, status, len(risks))
    return built, release


def _cell_counts(built: BuiltTable) -> list[dict[str, Any]]:
    """Each cell's coordinates (as JSON values), true count and shown status: the ledger's view of a table."""
    status = {c.coordinates: c.status for c in built.shown.cells}
    return [
        {"c": _jsonable([coordinates])[0], "n": n, "s": status.get(coordinates, "ok")}
        for coordinates, n in zip(built.cells.coordinates, built.cells.n, strict=True)
    ]


def _ledger_entry(release_id: str, request: dict[str, Any], cells: list[dict[str, Any]]) -> LedgerEntry:
    return LedgerEntry(
        release_id,
        request,
        {tuple(c["c"]): int(c["n"]) for c in cells},
        perturbed=any(c["s"] == "perturbed" for c in cells),
        suppressed=frozenset(tuple(c["c"]) for c in cells if c["s"] == "suppressed"),
    )


def _earlier(session: Session, actor: Actor, request: TableRequest) -> list[LedgerEntry]:
    """The caller's earlier builder releases that were shown (released or approved), of another population:
    tables of the same population relate only through margins, which each table's own suppression covers."""
    rows = session.scalars(
        select(Release).where(
            Release.user_id == actor.user_id,
            Release.kind == ReleaseKind.TABLE,
            Release.status.in_([ReleaseStatus.RELEASED, ReleaseStatus.APPROVED]),
        )
    )
    return [
        _ledger_entry(str(r.id), r.definition, r.cells)
        for r in rows
        if not _same_population(request, TableRequest.model_validate(r.definition))
    ]


def _same_population(a: TableRequest, b: TableRequest) -> bool:
    return population_contains(a, b) and population_contains(b, a)


def _audit(
    hub: Hub, actor: Actor, release_id: int | None, built: BuiltTable, status: str, risks: int
) -> None:
    hub.audit.append(
        actor=actor.name,
        action=AuditAction.TABLE_RELEASE,
        resource=f"release/{release_id}" if release_id is not None else "release",
        details={"sql": built.sql, "record_sha256": built.record_sha256(), "status": status, "risks": risks},
    )


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
    true_counts: list[dict[str, Any]],
    review_reason: str = "",
) -> Release:
    release = Release(
        user_id=analyst_id(actor),
        kind=kind,
        title=title,
        definition=definition,
        sql=sql,
        snapshot_ids=snapshot_ids,
        datasets=datasets,
        cells=true_counts,
        review_reason=review_reason,
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


def _jsonable(rows: Sequence[Sequence[Cell]]) -> list[list[Cell]]:
    return [[as_cell(v) for v in row] for row in rows]


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
