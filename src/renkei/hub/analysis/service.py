"""The analysis path's service functions: the CLI, the API and the demo call these and nothing below them.

- :func:`release_table`: a builder request → protected table → ledger (or review when differencing is found);
- :func:`run_sql`: user SQL → refused (rule 3), a protected aggregate (rule 6), or capped rows (個票閲覧);
- :func:`export_release`: a released table → CSV/XLSX within quota, the file's hash in the audit log;
- :func:`decide_review`: a steward of the owning department approves or rejects a table sent to review.

Every function takes an open workspace (:mod:`renkei.hub.workspace`), so the sandbox, the grant checks and the
query audit are the workspace's; this module adds the disclosure rules and the ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Actor, check_read_catalog
from renkei.hub.access.cards import CardSettings
from renkei.hub.access.grants import active_grants
from renkei.hub.access.login import LoginService
from renkei.hub.access.terminals import Terminal
from renkei.hub.analysis.errors import AnalysisError
from renkei.hub.analysis.exports import ExportFile, export_release
from renkei.hub.analysis.ledger import (
    ReleaseKind,
    ReleaseStatus,
)
from renkei.hub.analysis.releases import release_table
from renkei.hub.analysis.review import decide_review, in_review_for
from renkei.hub.analysis.saved import save_analysis, saved_analyses
from renkei.hub.analysis.sqlpath import MAX_SHOWN_ROWS, CountProtector, SqlResult, run_sql
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset
from renkei.hub.disclosure.policy import load_policy
from renkei.hub.disclosure.protect import DisclosureControl, datasets_of, protect_cells
from renkei.hub.home import Hub
from renkei.hub.tables.compile import PERIOD
from renkei.hub.tables.display import ShownTable
from renkei.hub.tables.request import TableRequest
from renkei.hub.tables.service import CellProtector, Cells
from renkei.hub.workspace.workspace import Workspace

# --- faces' entry points: log in, open a workspace (or lease the session's), do one thing, close it ------

# Where a face gets its workspace: the CLI opens one per command (the default, :func:`open_workspace`); the
# portal leases its login session's (``SessionWorkspaces.lease``), which stays open for the next request.
WorkspaceSource = Callable[[Actor], AbstractContextManager[Workspace]]


def console_login(hub: Hub, login_id: str, terminal_name: str, password: str, code: str) -> Actor:
    """The portal's login (terminal, ID, password, TOTP) for console commands; the password must be changed
    in the portal first if it is a one-time password."""
    with hub.session() as session:
        # The active terminal of that name, else the last one revoked: LoginService refuses a revoked
        # terminal itself, and names it in the audit entry.
        terminal = session.scalars(
            select(Terminal)
            .where(Terminal.name == terminal_name)
            .order_by(Terminal.revoked_at.is_not(None), Terminal.revoked_at.desc())
        ).first()
        if terminal is not None:
            session.expunge(terminal)
    service = LoginService(
        hub.engine,
        hub.audit,
        kek=hub.kek,
        card_settings=CardSettings.from_settings(hub.settings.webauthn),
        timeouts=hub.settings.sessions,
    )
    pending = service.begin_login(terminal, login_id, password, "console")
    login = service.finish_login_with_totp(pending, code, terminal=terminal)
    if login.password_change_required:
        service.logout(login.token, terminal=terminal)
        hub.audit.append(  # refused as the portal refuses such a session's requests, and on the record as there
            actor=login.login_id,
            action=AuditAction.SESSION_PASSWORD_CHANGE_REQUIRED,
            resource="console",
            result="denied",
            reason="password_change_required",
            terminal=login.terminal_name,
            client_addr="console",
            details={"session_id": login.id},
        )
        raise AnalysisError(
            "初回のパスワード変更をポータルで済ませてください",
            "change your one-time password in the portal first",
            None,
        )
    return Actor.for_session(login, client_addr="console")


__all__ = [
    "MAX_SHOWN_ROWS",
    "AnalysisError",
    "CellProtector",
    "CountProtector",
    "ExportFile",
    "OutlinedView",
    "SqlResult",
    "TableOutcome",
    "WorkspaceSource",
    "console_login",
    "count_protector",
    "decide_review",
    "export_release",
    "in_review_for",
    "open_workspace",
    "release_table",
    "rerun_saved",
    "run_sql",
    "save_analysis",
    "saved_analyses",
    "sql_for",
    "table_for",
    "table_protector",
    "threshold_for",
    "workspace_outline",
]


@contextmanager
def open_workspace(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> Iterator[Workspace]:
    workspace = Workspace.open(hub, actor, clock=clock)
    try:
        yield workspace
    finally:
        workspace.close()


def table_protector(hub: Hub) -> CellProtector:
    return DisclosureControl(load_policy(hub.home, hub.settings.disclosure))


def threshold_for(hub: Hub, request: TableRequest) -> int:
    """The policy's smallest publishable group for the datasets behind ``request`` (the differencing check)."""
    return load_policy(hub.home, hub.settings.disclosure).for_datasets(datasets_of(request)).threshold


def count_protector(hub: Hub) -> CountProtector:
    """Disclosure control of an SQL aggregate's person counts: the builder's rules for a table of counts."""
    policies = load_policy(hub.home, hub.settings.disclosure)

    def protect(datasets: Sequence[str], cells: Cells) -> tuple[list[float | None], dict[str, Any]]:
        protection = protect_cells(policies.for_datasets(datasets), "count", cells)
        by_coordinates = {c.coordinates: c.value for c in protection.shown}
        return [by_coordinates[c] for c in cells.coordinates], {
            **protection.record,
            "datasets": list(datasets),
        }

    return protect


@dataclass(frozen=True, slots=True)
class TableOutcome:
    shown: ShownTable
    sql: str
    release_id: int
    record: dict[str, Any]
    status: str = ReleaseStatus.RELEASED


IN_REVIEW_NOTE = (
    "この集計表は以前の公表との差分のおそれがあるため、所管課のデータ管理者の審査を待っています（数値は審査後に表示）"
    " / this table waits for a steward's review (differencing risk); values are shown once approved"
)


def _workspace(
    hub: Hub, actor: Actor, clock: Clock, workspaces: WorkspaceSource | None
) -> AbstractContextManager[Workspace]:
    return workspaces(actor) if workspaces is not None else open_workspace(hub, actor, clock=clock)


def table_for(
    hub: Hub,
    actor: Actor,
    request: TableRequest,
    *,
    clock: Clock = SYSTEM_CLOCK,
    workspaces: WorkspaceSource | None = None,
) -> TableOutcome:
    """Build and release one table in the actor's workspace (opened and closed for it, unless leased)."""
    with _workspace(hub, actor, clock, workspaces) as workspace:
        built, release = release_table(
            hub,
            workspace,
            actor,
            request,
            table_protector(hub),
            threshold=threshold_for(hub, request),
            clock=clock,
        )
    if release.status == ReleaseStatus.REVIEW:  # nothing of it is shown before a steward approves
        withheld = ShownTable(built.shown.header, [], [], [IN_REVIEW_NOTE])
        return TableOutcome(withheld, built.sql, release.id, {}, release.status)
    return TableOutcome(built.shown, built.sql, release.id, built.record, release.status)


def sql_for(
    hub: Hub,
    actor: Actor,
    sql: str,
    *,
    review_reason: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    workspaces: WorkspaceSource | None = None,
) -> SqlResult:
    with _workspace(hub, actor, clock, workspaces) as workspace:
        return run_sql(
            hub, workspace, actor, sql, count_protector(hub), review_reason=review_reason, clock=clock
        )


def rerun_saved(
    hub: Hub, actor: Actor, name: str, *, periods: Sequence[dt.date] = (), clock: Clock = SYSTEM_CLOCK
) -> TableOutcome | SqlResult:
    """Run a saved analysis again, on ``periods`` or on every period now granted (a new import included)."""
    saved = next((s for s in saved_analyses(hub, actor) if s.name == name), None)
    if saved is None:
        raise AnalysisError(f"保存した分析 {name} はありません", f"no saved analysis {name!r}", None)
    if saved.kind == ReleaseKind.SQL:
        return sql_for(hub, actor, str(saved.definition["sql"]), clock=clock)
    request = TableRequest.model_validate(saved.definition)
    if periods:
        request = request.model_copy(update={"periods": list(periods)})
    return table_for(hub, actor, request, clock=clock)


@dataclass(frozen=True, slots=True)
class OutlinedView:
    name: str
    dataset: str
    periods: list[dt.date]
    columns: dict[str, str]
    row_level: bool


def workspace_outline(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[OutlinedView]:
    """The views a workspace would open for the caller now, from the catalog and grants (nothing decrypted)."""
    with hub.session() as session:
        check_read_catalog(session, hub.audit, actor, clock=clock)
        if actor.user_id is None:
            return []
        views: dict[str, OutlinedView] = {}
        for grant in active_grants(session, actor.user_id, clock):
            dataset = grant.dataset
            view = views.setdefault(
                dataset.name,
                OutlinedView(
                    dataset.name, dataset.name, [], {**_columns(dataset), PERIOD: "DATE"}, grant.row_level
                ),
            )
            view.periods.extend(s.period for s in grant.snapshots if s.period not in view.periods)
        return [
            OutlinedView(v.name, v.dataset, sorted(v.periods), v.columns, v.row_level) for v in views.values()
        ]


def _columns(dataset: Dataset) -> dict[str, str]:
    return {field.name: str(field.type) for field in dataset.dataset_spec().output_schema}
