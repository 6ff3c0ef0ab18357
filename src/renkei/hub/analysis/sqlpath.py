"""The SQL path: what a user-written query may show (rules 3 and 6) — never IDs, protected aggregates, or
capped rows to a row-level (個票閲覧) grant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import sqlglot
import sqlglot.expressions as exp
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Actor
from renkei.hub.analysis.errors import AnalysisError
from renkei.hub.analysis.ledger import (
    ReleaseKind,
    ReleaseStatus,
)
from renkei.hub.analysis.releases import notes_for, record_release, shown_value, snapshot_ids_of
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset
from renkei.hub.home import Hub
from renkei.hub.sql.control import Controllable, analyse
from renkei.hub.sql.lineage import LineageError, id_lineage
from renkei.hub.tables.display import ShownTable
from renkei.hub.tables.files import Cell, as_cell
from renkei.hub.tables.service import Cells
from renkei.hub.workspace.workspace import Workspace
from renkei.spec import Role as ColumnRole

MAX_SHOWN_ROWS = 1000  # 個票閲覧: the most rows a row-level result shows


class CountProtector(Protocol):
    """Disclosure control of plain person counts (the SQL path): protected values and the record."""

    def __call__(
        self, datasets: Sequence[str], cells: Cells
    ) -> tuple[list[float | None], dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class SqlResult:
    kind: Literal["aggregate", "rows", "review"]
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)
    release_id: int | None = None
    truncated: bool = False


def run_sql(
    hub: Hub,
    workspace: Workspace,
    actor: Actor,
    sql: str,
    protect: CountProtector,
    *,
    review_reason: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> SqlResult:
    """Show an SQL result as rule 3 and rule 6 allow: never IDs; aggregates protected; rows only to 個票 grants.

    With ``review_reason``, a result the hub cannot protect is kept for a steward's review instead."""
    schema = workspace.schema()
    with hub.session() as session:
        ids = id_columns(session, schema)
    try:
        lineage = id_lineage(sql, schema, ids)
    except LineageError as exc:
        raise AnalysisError(exc.ja, exc.en, None) from None
    if lineage.carries_ids:
        raise AnalysisError(
            f"列 {', '.join(lineage.carrying_names())} は仮名IDの値を含むため表示・出力できません（結合にのみ使えます）",
            f"column(s) {', '.join(lineage.carrying_names())} carry pseudonymous-ID values; IDs are for joining only",
            None,
        )
    controlled = analyse(sql, schema)
    if isinstance(controlled, Controllable):
        return _aggregate(hub, workspace, actor, sql, controlled, protect, clock)
    if review_reason is not None:
        return _to_review(hub, workspace, actor, sql, review_reason, clock)
    return _rows(workspace, sql, controlled.reason_ja, controlled.reason_en)


def _to_review(
    hub: Hub, workspace: Workspace, actor: Actor, sql: str, reason: str, clock: Clock
) -> SqlResult:
    """Keep a result the hub cannot protect for a steward's review; show nothing of it until approved."""
    if not reason.strip():
        raise AnalysisError("審査を依頼する理由を入力してください", "say why the result needs review", None)
    table = workspace.query(sql, max_rows=MAX_SHOWN_ROWS + 1)
    if table.num_rows > MAX_SHOWN_ROWS:
        raise AnalysisError(
            f"審査に出せる結果は {MAX_SHOWN_ROWS:,} 行までです（集計してください）",
            f"a result for review has at most {MAX_SHOWN_ROWS:,} rows; aggregate it",
            None,
        )
    shown = ShownTable(table.column_names, _cells(table.to_pylist()), [], [])
    views = _views_read(sql, workspace)
    with hub.session() as session:
        release = record_release(
            session, actor, kind=ReleaseKind.SQL, title="", definition={"sql": sql}, sql=sql,
            snapshot_ids=snapshot_ids_of(workspace), datasets=_datasets(workspace, views), shown=shown,
            record={"rules": "review by a steward of the owning department", "rows": table.num_rows},
            status=ReleaseStatus.REVIEW, clock=clock, true_counts=[], review_reason=reason,
        )  # fmt: skip
        session.commit()
        release_id = release.id
    hub.audit.append(
        actor=actor.name, action=AuditAction.TABLE_RELEASE, resource=f"release/{release_id}",
        details={"sql": sql, "status": ReleaseStatus.REVIEW, "reason": reason[:500]},
    )  # fmt: skip
    note = "審査を依頼しました。所管課のデータ管理者の承認後に出力できます / sent for review; exportable once approved"
    return SqlResult("review", table.column_names, [], [note], release_id)


def _aggregate(
    hub: Hub,
    workspace: Workspace,
    actor: Actor,
    sql: str,
    controlled: Controllable,
    protect: CountProtector,
    clock: Clock,
) -> SqlResult:
    answer = workspace.query(sql)
    user = answer.rename_columns(list(controlled.columns)).to_pylist()
    derived = workspace.control_query(
        controlled.control_sql_over(workspace.unique_units()), reusable=controlled.deterministic
    ).to_pylist()
    groups = controlled.group_columns
    by_group = {tuple(r[g] for g in groups): r for r in derived}
    if len(by_group) != len(user) or any(
        (found := by_group.get(tuple(r[g] for g in groups))) is None
        or any(r[c] != found["n"] for c in controlled.count_columns)
        for r in user
    ):
        raise AnalysisError(
            "集計の人数を基盤側で再計算した値と一致しないため、自動では表示できません（審査が必要です）",
            "the counts do not match the persons the hub re-derives (e.g. a join repeats rows); it needs review",
            None,
        )
    ordered = sorted(by_group, key=lambda key: tuple(str(v) for v in key))
    cells = Cells(
        coordinates=[tuple(key) for key in ordered],
        n=[by_group[key]["n"] for key in ordered],
        ckey=[by_group[key]["ckey"] for key in ordered],
        value=[float(by_group[key]["n"]) for key in ordered],
        top=[None] * len(ordered),
    )
    datasets = _datasets(workspace, _views_read(sql, workspace))
    values, record = protect(datasets, cells)
    header = answer.column_names
    position = {g: i for i, g in enumerate(groups)}
    rows: list[list[Cell]] = [
        [as_cell(key[position[c]]) if c in position else shown_value(value) for c in controlled.columns]
        for key, value in zip(ordered, values, strict=True)
    ]
    shown = ShownTable(header, rows, [], notes_for(values, record))
    with hub.session() as session:
        release = record_release(
            session,
            actor,
            kind=ReleaseKind.SQL,
            title="",
            definition={"sql": sql},
            sql=sql,
            snapshot_ids=snapshot_ids_of(workspace),
            datasets=datasets,
            shown=shown,
            record={**record, "cells": len(rows)},
            status=ReleaseStatus.RELEASED,
            clock=clock,
            true_counts=[{"c": [str(v) for v in key], "n": by_group[key]["n"]} for key in ordered],
        )
        session.commit()
        release_id = release.id
    hub.audit.append(
        actor=actor.name,
        action=AuditAction.TABLE_RELEASE,
        resource=f"release/{release_id}",
        details={"sql": sql},
    )
    return SqlResult("aggregate", header, rows, shown.notes, release_id)


def _rows(workspace: Workspace, sql: str, reason_ja: str, reason_en: str) -> SqlResult:
    views = _views_read(sql, workspace)
    if not _row_level(workspace, views):
        raise AnalysisError(
            f"この結果は自動の秘匿処理ができない形です（{reason_ja}）。個票閲覧の承認がないため表示できません。"
            "集計表作成機能を使うか、GROUP BY と count だけの集計にしてください",
            f"this result cannot be protected automatically ({reason_en}), and your grants do not include "
            "row-level viewing; use the table builder, or an aggregate of group columns and counts",
            None,
        )
    table = workspace.query(sql, max_rows=MAX_SHOWN_ROWS + 1)
    truncated = table.num_rows > MAX_SHOWN_ROWS
    table = table.slice(0, MAX_SHOWN_ROWS)
    note = "個票閲覧（表示のみ。出力には審査が必要です） / row-level view: display only; export needs review"
    return SqlResult("rows", table.column_names, _cells(table.to_pylist()), [note], None, truncated)


def _cells(records: Sequence[dict[str, Any]]) -> list[list[Cell]]:
    return [[as_cell(v) for v in record.values()] for record in records]


def _views_read(sql: str, workspace: Workspace) -> list[str]:
    schema = workspace.schema()
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return []
    return sorted({t.name for t in tree.find_all(exp.Table) if t.name in schema})


def id_columns(session: Session, schema: dict[str, dict[str, str]] | Any) -> dict[str, set[str]]:
    """Each view's pseudonymous-ID columns, from its dataset spec (person and link keys), never from names."""
    result: dict[str, set[str]] = {}
    for dataset in session.scalars(select(Dataset)):
        spec = dataset.dataset_spec()
        keys = {
            col.output_key_name() for _, col in spec.columns_with(ColumnRole.PERSON_KEY, ColumnRole.LINK_KEY)
        }
        for view in schema:
            if view == dataset.name or view.startswith(dataset.name + "_"):
                result[view] = keys
    return result


def _row_level(workspace: Workspace, views: Sequence[str]) -> bool:
    """Whether every view the query reads is covered by a row-level grant (個票閲覧)."""
    infos = {v.name: v for v in workspace.views()}
    return bool(views) and all(infos[v].row_level for v in views if v in infos)


def _datasets(workspace: Workspace, views: Sequence[str]) -> list[str]:
    infos = {v.name: v for v in workspace.views()}
    return sorted({infos[v].dataset for v in views if v in infos})
