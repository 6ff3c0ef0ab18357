"""The analysis path's service functions: the CLI, the API and the demo call these and nothing below them.

- :func:`release_table`: a builder request → protected table → ledger (or review when differencing is found);
- :func:`run_sql`: user SQL → refused (rule 3), a protected aggregate (rule 6), or capped rows (個票閲覧);
- :func:`export_release`: a released table → CSV/XLSX within quota, the file's hash in the audit log;
- :func:`decide_review`: a steward of the owning department approves or rejects a table sent to review.

Every function takes an open workspace (:mod:`renkei.hub.workspace`), so the sandbox, the grant checks and the
query audit are the workspace's; this module adds the disclosure rules and the ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import sqlglot
import sqlglot.expressions as exp
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.authz import Actor, Forbidden
from renkei.hub.access.login import LoginService
from renkei.hub.access.people import Role, User
from renkei.hub.access.quotas import reserve_export
from renkei.hub.access.terminals import Terminal
from renkei.hub.analysis.ledger import Export, ExportFormat, Release, ReleaseKind, ReleaseStatus
from renkei.hub.catalog import Dataset
from renkei.hub.disclosure.policy import load_policy
from renkei.hub.disclosure.protect import DisclosureControl, protect_cells
from renkei.hub.home import Hub
from renkei.hub.sql.control import Controllable, analyse
from renkei.hub.sql.lineage import LineageError, id_lineage
from renkei.hub.tables.display import ShownTable
from renkei.hub.tables.files import Cell, to_csv, to_xlsx
from renkei.hub.tables.request import TableRequest
from renkei.hub.tables.service import BuiltTable, CellProtector, Cells, build_table
from renkei.hub.workspace.workspace import Workspace
from renkei.spec import Role as ColumnRole

MAX_SHOWN_ROWS = 1000  # 個票閲覧: the most rows a row-level result shows


class AnalysisError(RenkeiError):
    exit_code = 2


class CountProtector(Protocol):
    """Disclosure control of plain person counts (the SQL path): protected values and the record."""

    def __call__(
        self, datasets: Sequence[str], cells: Cells
    ) -> tuple[list[float | None], dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class SqlResult:
    kind: Literal["aggregate", "rows"]
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)
    release_id: int | None = None
    truncated: bool = False


# --- faces' entry points: log in, open a workspace, do one thing, close it -------------------------------


def console_login(hub: Hub, login_id: str, terminal_name: str, password: str, code: str) -> Actor:
    """The portal's login (terminal, ID, password, TOTP) for console commands; the password must be changed
    in the portal first if it is a one-time password."""
    with hub.session() as session:
        terminal = session.scalars(
            select(Terminal).where(Terminal.name == terminal_name, Terminal.revoked_at.is_(None))
        ).first()
        if terminal is not None:
            session.expunge(terminal)
    service = LoginService(hub.engine, hub.audit)
    pending = service.begin_login(terminal, login_id, password, "console")
    login = service.finish_login_with_totp(pending, code, terminal=terminal)
    if login.password_change_required:
        service.logout(login.token, terminal=terminal)
        raise AnalysisError(
            "初回のパスワード変更をポータルで済ませてください",
            "change your one-time password in the portal first",
            None,
        )
    return Actor.for_session(login, client_addr="console")


@contextmanager
def open_workspace(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> Iterator[Workspace]:
    workspace = Workspace.open(hub, actor, clock=clock)
    try:
        yield workspace
    finally:
        workspace.close()


def table_protector(hub: Hub) -> CellProtector:
    return DisclosureControl(load_policy(hub.home))


def count_protector(hub: Hub) -> CountProtector:
    """Disclosure control of an SQL aggregate's person counts: the builder's rules for a table of counts."""
    policies = load_policy(hub.home)

    def protect(datasets: Sequence[str], cells: Cells) -> tuple[list[float | None], dict[str, Any]]:
        protection = protect_cells(policies.for_datasets(datasets), "count", cells)
        by_coordinates = {c.coordinates: c.value for c in protection.shown}
        return [by_coordinates[c] for c in cells.coordinates], {
            **protection.record,
            "datasets": list(datasets),
        }

    return protect


def _snapshot_ids(workspace: Workspace) -> list[int]:
    return [o.snapshot_id for o in workspace.opened]


def _row_level(workspace: Workspace, views: Sequence[str]) -> bool:
    """Whether every view the query reads is covered by a row-level grant (個票閲覧)."""
    infos = {v.name: v for v in workspace.views()}
    return bool(views) and all(infos[v].row_level for v in views if v in infos)


def _datasets(workspace: Workspace, views: Sequence[str]) -> list[str]:
    infos = {v.name: v for v in workspace.views()}
    return sorted({infos[v].dataset for v in views if v in infos})


@dataclass(frozen=True, slots=True)
class TableOutcome:
    shown: ShownTable
    sql: str
    release_id: int
    record: dict[str, Any]


def table_for(hub: Hub, actor: Actor, request: TableRequest, *, clock: Clock = SYSTEM_CLOCK) -> TableOutcome:
    """Open the actor's workspace, build and release one table, close the workspace."""
    with open_workspace(hub, actor, clock=clock) as workspace:
        built, release = release_table(hub, workspace, actor, request, table_protector(hub), clock=clock)
    return TableOutcome(built.shown, built.sql, release.id, built.record)


def sql_for(hub: Hub, actor: Actor, sql: str, *, clock: Clock = SYSTEM_CLOCK) -> SqlResult:
    with open_workspace(hub, actor, clock=clock) as workspace:
        return run_sql(hub, workspace, actor, sql, count_protector(hub), clock=clock)


# --- the table builder -----------------------------------------------------------------------------------


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
        release = _record(
            session,
            actor,
            kind=ReleaseKind.TABLE,
            title=request.title,
            definition=request.model_dump(mode="json"),
            sql=built.sql,
            snapshot_ids=_snapshot_ids(workspace),
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


# --- the SQL path ----------------------------------------------------------------------------------------


def run_sql(
    hub: Hub,
    workspace: Workspace,
    actor: Actor,
    sql: str,
    protect: CountProtector,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> SqlResult:
    """Show an SQL result as rule 3 and rule 6 allow: never IDs; aggregates protected; rows only to 個票 grants."""
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
    return _rows(workspace, sql, controlled.reason_ja, controlled.reason_en)


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
    derived = workspace.control_query(controlled.control_sql).to_pylist()
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
        [key[position[c]] if c in position else _shown(value) for c in controlled.columns]
        for key, value in zip(ordered, values, strict=True)
    ]
    shown = ShownTable(header, rows, [], _notes(values, record))
    with hub.session() as session:
        release = _record(
            session,
            actor,
            kind=ReleaseKind.SQL,
            title="",
            definition={"sql": sql},
            sql=sql,
            snapshot_ids=_snapshot_ids(workspace),
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
        actor=actor.name, action="table.release", resource=f"release/{release_id}", details={"sql": sql}
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
    return SqlResult(
        "rows", table.column_names, [list(r.values()) for r in table.to_pylist()], [note], None, truncated
    )


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


# --- the ledger ------------------------------------------------------------------------------------------


def _record(
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


def _shown(value: float | None) -> Cell:
    if value is None:
        return "X"
    return int(value) if float(value).is_integer() else round(value, 1)


def _notes(values: Sequence[float | None], record: dict[str, Any]) -> list[str]:
    notes = [str(n) for n in record.get("notes", [])]
    if any(v is None for v in values) and not any(n.startswith("X") for n in notes):
        notes.append("X: 秘匿 (suppressed)")
    return notes


# --- exports ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportFile:
    export_id: int
    file_name: str
    content: bytes
    sha256: str


def export_release(
    hub: Hub, actor: Actor, release_id: int, fmt: ExportFormat, *, clock: Clock = SYSTEM_CLOCK
) -> ExportFile:
    """Write a released table as CSV or XLSX: only the requester's own released (or approved) tables, within
    the download permission and quota (one atomic reservation); the file's SHA-256 goes to the audit log."""
    with hub.session() as session:
        release = _own_release(session, actor, release_id)
        if release.status not in {ReleaseStatus.RELEASED, ReleaseStatus.APPROVED}:
            raise AnalysisError(
                f"集計表 {release_id} は審査中または却下のため出力できません（状態: {release.status}）",
                f"release {release_id} is {release.status}; only released or approved tables are exported",
                None,
            )
        shown = release.shown
        content = _file(fmt, shown, release.record)
        snapshot_ids = list(release.snapshot_ids)
    digest = hashlib.sha256(content).hexdigest()
    file_name = f"renkei-release-{release_id}.{fmt.value}"
    with hub.session() as session:
        reservation = reserve_export(
            session, hub.audit, actor, snapshot_ids, len(shown["rows"]), len(content), clock=clock
        )
        export = Export(
            release_id=release_id,
            user_id=actor.user_id,
            format=fmt.value,
            file_name=file_name,
            rows=len(shown["rows"]),
            bytes=len(content),
            sha256=digest,
            created_at=clock.now(),
        )
        session.add(export)
        session.commit()
        export_id = export.id
    hub.audit.append(
        actor=actor.name,
        action="export.file",
        resource=f"export/{export_id}",
        details={
            "release": release_id,
            "sha256": digest,
            "bytes": len(content),
            "reservation": _id(reservation),
        },
    )
    return ExportFile(export_id, file_name, content, digest)


def _id(reservation: object) -> object:
    return getattr(reservation, "id", None)


def _file(fmt: ExportFormat, shown: dict[str, Any], record: dict[str, Any]) -> bytes:
    header, rows, notes = shown["header"], shown["rows"], shown["notes"]
    if fmt is ExportFormat.CSV:
        return to_csv(header, rows, notes)
    return to_xlsx(header, rows, record, notes)


def _own_release(session: Session, actor: Actor, release_id: int) -> Release:
    release = session.get(Release, release_id)
    if release is None or release.user_id != actor.user_id:
        raise AnalysisError(
            f"集計表 {release_id} はありません（ご自身が作成したものだけを出力できます）",
            f"no release {release_id} of yours",
            None,
        )
    return release


# --- review ----------------------------------------------------------------------------------------------


def decide_review(
    hub: Hub, actor: Actor, release_id: int, *, approve: bool, comment: str, clock: Clock = SYSTEM_CLOCK
) -> Release:
    """A steward of an owning department (never the requester) approves or rejects a table in review."""
    if not comment.strip():
        raise AnalysisError("理由を入力してください", "give a reason", None)
    with hub.session() as session:
        release = session.get(Release, release_id)
        steward = session.get(User, actor.user_id) if actor.user_id is not None else None
        refusal = _review_refusal(session, release, steward)
        if refusal is not None:
            hub.audit.append(
                actor=actor.name,
                action="release.review",
                resource=f"release/{release_id}",
                details={"denied": refusal},
            )
            raise Forbidden(refusal, refusal)
        assert release is not None and steward is not None
        release.status = ReleaseStatus.APPROVED if approve else ReleaseStatus.REJECTED
        release.reviewer_id = steward.id
        release.review_comment = comment
        release.reviewed_at = clock.now()
        session.commit()
        session.refresh(release)
        session.expunge(release)
    hub.audit.append(
        actor=actor.name,
        action="release.review",
        resource=f"release/{release_id}",
        details={"decision": release.status, "comment": comment},
    )
    return release


def _review_refusal(session: Session, release: Release | None, steward: User | None) -> str | None:
    if release is None or release.status != ReleaseStatus.REVIEW:
        return "審査待ちの集計表ではありません / not a table in review"
    if steward is None or steward.role != Role.STEWARD or steward.disabled:
        return "審査はデータ管理者が行います / only stewards review"
    if steward.id == release.user_id:
        return "申請者本人は審査できません / the requester cannot review"
    owners = {d.owner_id for d in session.scalars(select(Dataset).where(Dataset.name.in_(release.datasets)))}
    if steward.department_id not in owners:
        return "所管課のデータ管理者のみが審査できます / only a steward of an owning department"
    return None
