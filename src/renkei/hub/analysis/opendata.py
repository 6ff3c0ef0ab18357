"""Open data (オープンデータ公開): a released builder table published with differential privacy.

- :func:`preview_opendata`: the table as it would be published at ``epsilon``: one example draw of the noisy
  counts, the error per cell at the policy's confidence, the ε it would spend and the budget left. It spends
  nothing and records nothing but its ``opendata.preview`` decision. The published values are drawn afresh at
  publishing: were a preview's draw published, one could preview until a draw looked right, and the choice
  would leak what the noise hides. The example draw is shown only to those who may publish (stewards of the
  department owning all the table's data, who hold it anyway); the table's requester sees the cells, the
  error and the budget, never a draw — averaging repeated previews would give back the true counts, which
  disclosure control hid from them.
- :func:`publish_opendata`: spends ε on every dataset and 年度 the table reads, in one transaction of
  conditional UPDATEs (:func:`_spend`: the row changes only if the budget still holds it, so concurrent
  publishers never overspend), draws the noise (OpenDP, :mod:`renkei.hub.disclosure.dp`), suppresses cells
  whose noisy value is below the policy's threshold, and writes a CSV (UTF-8 with BOM) with its release
  record (JSON). Audited as ``opendata.publish``, refusals included.

Only person counts (人数) are published with noise: one person's records in one snapshot fall in exactly one
base cell, so the table's L1 sensitivity is the number of snapshots of one dataset in one 年度 it reads. The
margins (計) are left out (each would need its own share of ε); household links are refused (one person's
record could move a whole household). Who may is decided by ``authorize()`` (rules below).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    CursorResult,
    ForeignKey,
    LargeBinary,
    String,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.authz import (
    Action,
    Actor,
    InvalidTransition,
    Principal,
    Resource,
    ResourceType,
    Verdict,
    allow,
    check,
    deny,
    resolve_principal,
    rule,
)
from renkei.hub.access.people import Role
from renkei.hub.analysis.errors import AnalysisError
from renkei.hub.analysis.ledger import Release, ReleaseKind, ReleaseStatus
from renkei.hub.audit import AuditLog, UTCDateTime
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset, Snapshot
from renkei.hub.db import Base
from renkei.hub.disclosure.dp import Mechanism, mechanism
from renkei.hub.disclosure.policy import load_policy
from renkei.hub.tables.compile import DIMENSION_LABELS, MEASURE_LABELS
from renkei.hub.tables.display import SUPPRESSED, TOTAL, label
from renkei.hub.tables.files import Cell, to_csv
from renkei.hub.tables.request import Category, TableRequest

MICRO = 1_000_000  # ε is kept in millionths, so that adding and comparing it in SQL is exact
MIN_EPSILON = 0.001
MAX_CELLS = 100_000  # every combination of the dimensions' values is published, empty ones included
FISCAL_YEAR_START = 4  # 年度: April to March, as the city's own statistics and budgets


class PrivacyBudgetExceededError(RenkeiError):
    """Publishing would spend more of a dataset's privacy budget for a 年度 than is left."""


class OpenDataHub(Protocol):
    """What the service needs of :class:`renkei.hub.home.Hub` (tests pass a smaller one)."""

    @property
    def home(self) -> Path: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def settings(self) -> Any: ...

    def session(self) -> AbstractContextManager[Session]: ...


# --- the catalog's tables -------------------------------------------------------------------------------


class PrivacyBudget(Base):
    """ε spent on one dataset in one 年度 (the total is the setting ``opendata.epsilon_per_year``)."""

    __tablename__ = "privacy_budgets"
    __table_args__ = (UniqueConstraint("dataset_id", "fiscal_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    fiscal_year: Mapped[int] = mapped_column()  # 2025: 2025-04-01 to 2026-03-31 (令和7年度)
    spent_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class OpenDataRelease(Base):
    """A table published as open data: the file as published, its release record, what it spent."""

    __tablename__ = "opendata_releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    publisher_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    epsilon_micro: Mapped[int] = mapped_column(BigInteger)  # 0: published without differential privacy
    file_name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


def fiscal_year(day: dt.date) -> int:
    """The 年度 a date falls in: April 2025 to March 2026 is 2025."""
    return day.year if day.month >= FISCAL_YEAR_START else day.year - 1


# --- what the faces get ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetLine:
    dataset: str
    fiscal_year: int
    total: float
    spent: float  # before this table
    after: float  # left after publishing this table

    @property
    def left(self) -> float:
        return round(self.total - self.spent, 6)


@dataclass(frozen=True, slots=True)
class OpenDataTable:
    """A table as (it would be) published: long form, one row per cell, its error beside it."""

    release_id: int
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str]
    epsilon: float  # 0: no differential privacy
    error: float | None  # |noise| < error with probability ``confidence``, per cell
    confidence: float
    budgets: list[BudgetLine]
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishedOpenData:
    opendata_id: int
    table: OpenDataTable
    file_name: str
    content: bytes  # the CSV
    sha256: str
    record_name: str
    record_json: bytes


# --- the service ----------------------------------------------------------------------------------------


def preview_opendata(
    hub: OpenDataHub, actor: Actor, release_id: int, epsilon: float | None, *, clock: Clock = SYSTEM_CLOCK
) -> OpenDataTable:
    """The table as it would be published at ``epsilon`` (one example draw), its error and budget; spends
    nothing."""
    with hub.session() as session:
        resource = release_resource(release_id)
        check(session, hub.audit, actor, Action.OPENDATA_PREVIEW, resource, clock=clock)
        plan = _plan(hub, session, release_id, epsilon)
        principal = resolve_principal(session, actor)
        draws = (
            principal is not None
            and _may_publish(session, principal, Action.OPENDATA_PUBLISH, resource, clock).allowed
        )
    _refuse_if_over(plan)
    if plan.mechanism is None:
        return _table(plan, None)
    if not draws:  # the requester: repeated previews would average the noise away
        return _withheld(_table(plan, [plan.threshold] * len(plan.counts)))
    return _table(plan, plan.mechanism.release(plan.counts))


def publish_opendata(
    hub: OpenDataHub, actor: Actor, release_id: int, epsilon: float | None, *, clock: Clock = SYSTEM_CLOCK
) -> PublishedOpenData:
    """Spend ε on every dataset and 年度 the table reads (or refuse), draw the noise, write the file."""
    with hub.session() as session:
        decision = check(
            session, hub.audit, actor, Action.OPENDATA_PUBLISH, release_resource(release_id), clock=clock
        )
        plan = _plan(hub, session, release_id, epsilon)
    if plan.micro:
        _ensure_budget_rows(hub, plan, clock)
    with hub.session() as session:
        try:
            _spend(session, plan, clock)
        except PrivacyBudgetExceededError:
            session.rollback()
            hub.audit.append(
                actor=actor.name,
                action=AuditAction.OPENDATA_PUBLISH,
                resource=f"release/{release_id}",
                details={"outcome": "refused", "reason": "privacy_budget", "epsilon": plan.epsilon},
            )
            raise
        noisy = plan.mechanism.release(plan.counts) if plan.mechanism else None
        now = clock.now()
        table = _table(plan, noisy)
        budgets = _after_spending(session, plan)
        record = {
            **table.record,
            "published_at": now.isoformat(),
            "publisher": actor.name,
            "budget_after": [_budget_json(b) for b in budgets],
        }
        published = OpenDataRelease(
            release_id=release_id,
            publisher_id=actor.user_id,
            epsilon_micro=plan.micro,
            file_name="",
            sha256="",
            content=b"",
            record=record,
            created_at=now,
        )
        session.add(published)
        session.flush()
        file_name = f"renkei-opendata-{published.id}.csv"
        record_name = f"renkei-opendata-{published.id}.record.json"
        record_json = json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True).encode()
        record_sha = hashlib.sha256(record_json).hexdigest()
        notes = [*table.notes, f"公表記録 (release record): {record_name} SHA-256 {record_sha}"]
        content = to_csv(table.header, table.rows, notes)
        digest = hashlib.sha256(content).hexdigest()
        published.file_name, published.sha256, published.content = file_name, digest, content
        session.commit()
        opendata_id = published.id
    hub.audit.append(
        actor=actor.name,
        action=AuditAction.OPENDATA_PUBLISH,
        resource=f"opendata/{opendata_id}",
        details={
            "outcome": "published",
            "release": release_id,
            "epsilon": plan.epsilon,
            "budgets": [_budget_json(b) for b in budgets],
            "sha256": digest,
            "record_sha256": record_sha,
            "authz_seq": decision.audit_seq,
        },
    )
    shown = OpenDataTable(
        table.release_id, table.header, table.rows, notes, table.epsilon, table.error,
        table.confidence, budgets, record,
    )  # fmt: skip
    return PublishedOpenData(opendata_id, shown, file_name, content, digest, record_name, record_json)


def release_resource(release_id: int) -> Resource:
    return Resource(ResourceType.RELEASE.value, release_id, f"release/{release_id}")


# --- planning: the cells, the mechanism and the budgets of one table ------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    release_id: int
    request: TableRequest | None  # None: published without differential privacy
    shown: dict[str, Any]
    release_record: dict[str, Any]
    record_sha256: str
    coordinates: list[tuple[Cell, ...]]
    counts: list[int]
    mechanism: Mechanism | None
    epsilon: float
    micro: int
    threshold: int
    confidence: float
    budgets: list[BudgetLine]
    budget_keys: list[tuple[int, int]]  # (dataset id, 年度), sorted: rows are locked in this order
    total_micro: int
    sources: list[dict[str, Any]]


def _plan(hub: OpenDataHub, session: Session, release_id: int, epsilon: float | None) -> _Plan:
    release = session.get_one(Release, release_id, populate_existing=True)
    settings = hub.settings.opendata
    if release.kind != ReleaseKind.TABLE:
        raise AnalysisError(
            "オープンデータとして公開できるのは集計表作成で作った表だけです",
            "only tables made with the table builder can be published as open data",
            None,
        )
    periods = set(TableRequest.model_validate(release.definition).periods)
    # The workspace the table was built in had every granted snapshot open; the table read only its
    # datasets' snapshots of its periods (links are of the same period).
    snapshots = [
        row
        for row in session.execute(
            select(Snapshot.id, Snapshot.period, Snapshot.content_sha256, Dataset.id, Dataset.name)
            .join(Dataset, Snapshot.dataset_id == Dataset.id)
            .where(Snapshot.id.in_(release.snapshot_ids), Dataset.name.in_(release.datasets))
            .order_by(Dataset.name, Snapshot.period)
        )
        if not periods or row[1] in periods
    ]
    sources = [
        {"snapshot": s_id, "dataset": name, "period": period.isoformat(), "content_sha256": sha}
        for s_id, period, sha, _, name in snapshots
    ]
    policy = load_policy(hub.home, hub.settings.disclosure).for_datasets(release.datasets)
    common: dict[str, Any] = {
        "release_id": release.id,
        "shown": release.shown,
        "release_record": release.record,
        "record_sha256": release.record_sha256,
        "threshold": policy.threshold,
        "confidence": settings.confidence,
        "total_micro": round(settings.epsilon_per_year * MICRO),
        "sources": sources,
    }
    if epsilon is None:
        if settings.differential_privacy:
            raise AnalysisError(
                "方針により差分プライバシーが必要です。ε (--epsilon) を指定してください",
                "the policy requires differential privacy: give epsilon (--epsilon)",
                None,
            )
        return _Plan(
            request=None, coordinates=[], counts=[], mechanism=None, epsilon=0.0, micro=0, budgets=[],
            budget_keys=[], **common,
        )  # fmt: skip
    micro = round(epsilon * MICRO)
    if not MIN_EPSILON <= epsilon <= settings.epsilon_per_year or micro < 1:
        raise AnalysisError(
            f"ε は {MIN_EPSILON} 以上、年度の予算 {settings.epsilon_per_year} 以下で指定してください",
            f"epsilon must be at least {MIN_EPSILON} and at most the yearly budget {settings.epsilon_per_year}",
            None,
        )
    request = _eligible(release)
    per_year = Counter((dataset_id, fiscal_year(period)) for _, period, _, dataset_id, _ in snapshots)
    if not per_year:
        raise AnalysisError(
            "この集計表の元のスナップショットが見つかりません",
            "the table's source snapshots are not in the catalog",
            None,
        )
    keys = sorted(per_year)
    coordinates, counts = _base_cells(release, request)
    names = {dataset_id: name for _, _, _, dataset_id, name in snapshots}
    spent = {
        (b.dataset_id, b.fiscal_year): b.spent_micro
        for b in session.scalars(
            select(PrivacyBudget).where(PrivacyBudget.dataset_id.in_([k[0] for k in keys]))
        )
    }
    total = common["total_micro"]
    budgets = [
        BudgetLine(
            names[d],
            y,
            total / MICRO,
            spent.get((d, y), 0) / MICRO,
            (total - spent.get((d, y), 0) - micro) / MICRO,
        )
        for d, y in keys
    ]
    return _Plan(
        request=request, coordinates=coordinates, counts=counts,
        mechanism=mechanism(micro / MICRO, max(per_year.values())), epsilon=micro / MICRO, micro=micro,
        budgets=budgets, budget_keys=keys, **common,
    )  # fmt: skip


def _eligible(release: Release) -> TableRequest:
    request = TableRequest.model_validate(release.definition)
    if request.measure.kind != "persons":
        raise AnalysisError(
            "差分プライバシーで公開できるのは人数の表だけです",
            "only tables of person counts (人数) are published with differential privacy",
            None,
        )
    if any(link.level == "household" for link in request.links):
        raise AnalysisError(
            "世帯単位の連携を含む表は差分プライバシーで公開できません（1人の記録が世帯全員を動かします）",
            "tables linked by household cannot be published with differential privacy "
            "(one person's record moves the whole household)",
            None,
        )
    return request


def _base_cells(release: Release, request: TableRequest) -> tuple[list[tuple[Cell, ...]], list[int]]:
    """Every combination of the dimensions' values (empty ones as 0: a missing cell would tell), no margins."""
    true = {
        tuple(c["c"]): int(c["n"])
        for c in release.cells
        if TOTAL not in c["c"] and len(c["c"]) == len(request.dimensions)
    }
    values: list[list[Cell]] = [
        sorted({k[i] for k in true}, key=_order) for i in range(len(request.dimensions))
    ]
    size = math.prod(len(v) for v in values)
    if size > MAX_CELLS:
        raise AnalysisError(
            f"セルが多すぎます（{size:,} > {MAX_CELLS:,}）。区分を減らしてください",
            f"too many cells ({size:,} > {MAX_CELLS:,}); use fewer categories",
            None,
        )
    coordinates = [tuple(c) for c in itertools.product(*values)] if true else []
    return coordinates, [true.get(c, 0) for c in coordinates]


def _order(value: Cell) -> tuple[int, str, float]:
    if value is None:
        return (2, "", 0.0)
    if isinstance(value, int | float):
        return (0, "", float(value))
    return (1, str(value), 0.0)


def _refuse_if_over(plan: _Plan) -> None:
    over = [b for b in plan.budgets if b.after < -1e-9]
    if over:
        b = over[0]
        raise PrivacyBudgetExceededError(
            f"{b.dataset} の {b.fiscal_year}年度のプライバシー予算が足りません"
            f"（残り ε={b.left:g}、この公開に ε={plan.epsilon:g}）",
            f"the privacy budget of {b.dataset} for fiscal year {b.fiscal_year} has epsilon {b.left:g} left; "
            f"this table needs {plan.epsilon:g}",
            None,
        )


def _ensure_budget_rows(hub: OpenDataHub, plan: _Plan, clock: Clock) -> None:
    """A row for each (dataset, 年度) the table reads, each in its own transaction: a concurrent publisher
    may insert the same row first, which is fine."""
    for dataset_id, year in plan.budget_keys:
        with hub.session() as session:
            exists = session.scalar(
                select(PrivacyBudget.id).where(
                    PrivacyBudget.dataset_id == dataset_id, PrivacyBudget.fiscal_year == year
                )
            )
            if exists is not None:
                continue
            session.add(
                PrivacyBudget(dataset_id=dataset_id, fiscal_year=year, spent_micro=0, updated_at=clock.now())
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()


def _spend(session: Session, plan: _Plan, clock: Clock) -> None:
    """ε on every (dataset, 年度), each a conditional UPDATE: it changes the row only if the budget still
    holds ε, so two publishers racing for the last of a budget cannot both succeed. The caller commits."""
    for dataset_id, year in plan.budget_keys:
        stmt = (
            update(PrivacyBudget)
            .where(
                PrivacyBudget.dataset_id == dataset_id,
                PrivacyBudget.fiscal_year == year,
                PrivacyBudget.spent_micro + plan.micro <= plan.total_micro,
            )
            .values(spent_micro=PrivacyBudget.spent_micro + plan.micro, updated_at=clock.now())
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], session.execute(stmt)).rowcount != 1:
            spent = session.scalar(
                select(PrivacyBudget.spent_micro).where(
                    PrivacyBudget.dataset_id == dataset_id, PrivacyBudget.fiscal_year == year
                )
            )
            name = session.scalar(select(Dataset.name).where(Dataset.id == dataset_id))
            left = (plan.total_micro - (spent or 0)) / MICRO
            raise PrivacyBudgetExceededError(
                f"{name} の {year}年度のプライバシー予算が足りません（残り ε={left:g}、この公開に ε={plan.epsilon:g}）",
                f"the privacy budget of {name} for fiscal year {year} has epsilon {left:g} left; "
                f"this table needs {plan.epsilon:g}",
                None,
            )


def _after_spending(session: Session, plan: _Plan) -> list[BudgetLine]:
    """The budgets as this transaction left them (another publisher may have spent since the plan)."""
    lines = []
    for (dataset_id, year), planned in zip(plan.budget_keys, plan.budgets, strict=True):
        spent = session.scalar(
            select(PrivacyBudget.spent_micro).where(
                PrivacyBudget.dataset_id == dataset_id, PrivacyBudget.fiscal_year == year
            )
        )
        left = (plan.total_micro - (spent or 0)) / MICRO
        lines.append(BudgetLine(planned.dataset, year, planned.total, (spent or 0) / MICRO, left))
    return lines


# --- the table as published ------------------------------------------------------------------------------


def _table(plan: _Plan, noisy: Sequence[int] | None) -> OpenDataTable:
    base: dict[str, Any] = {
        "source": {
            "release": plan.release_id,
            "release_record_sha256": plan.record_sha256,
            "snapshots": plan.sources,
        },
        "budget": [_budget_json(b) for b in plan.budgets],
        "fiscal_year": "4月〜翌年3月 (April to March)",
    }
    if "linkage" in plan.release_record:  # a linked table's link rates (docs/risk.md) travel with it
        base["linkage"] = plan.release_record["linkage"]
    if plan.request is None or plan.mechanism is None or noisy is None:
        shown = plan.shown
        as_is = {**base, "differential_privacy": None, "disclosure_control": plan.release_record}
        return OpenDataTable(
            plan.release_id, list(shown.get("header", [])), [list(r) for r in shown.get("rows", [])],
            list(shown.get("notes", [])), 0.0, None, plan.confidence, [], as_is,
        )  # fmt: skip
    request, dp = plan.request, plan.mechanism
    error = dp.accuracy(plan.confidence)
    shown_error = math.ceil(error * 10) / 10  # rounded up, so that the statement stays true
    dims = request.dimensions
    header = [d.column if isinstance(d, Category) else DIMENSION_LABELS[d.kind] for d in dims] + [
        MEASURE_LABELS["persons"],
        f"誤差（{plan.confidence:.0%}）",
    ]
    rows: list[list[Cell]] = []
    suppressed = 0
    for coordinates, value in zip(plan.coordinates, noisy, strict=True):
        hidden = value < plan.threshold
        suppressed += hidden
        rows.append(
            [label(d, _as_date(d, v)) for d, v in zip(dims, coordinates, strict=True)]
            + [SUPPRESSED if hidden else value, f"±{shown_error:g}"]
        )
    percent = f"{plan.confidence:.0%}"
    notes = [
        f"差分プライバシー: ε={plan.epsilon:g}, δ=0（OpenDP {dp.record(plan.confidence)['library_version']}、"
        "離散ラプラス機構） (differential privacy, discrete Laplace mechanism)",
        f"誤差: {percent} の確率で各セルの誤差の絶対値は {shown_error:g} 未満 "
        f"(each cell's error is below {shown_error:g} with {percent} probability)",
        f"{SUPPRESSED}: 雑音を加えた値が {plan.threshold} 未満のため秘匿 "
        f"(suppressed: the noisy value is below {plan.threshold})",
        "合計（計）は公開しません。セルの和の誤差はセルの数とともに大きくなります "
        "(no margins; a sum of cells has a larger error)",
    ]
    record = {
        **base,
        "differential_privacy": {
            **dp.record(plan.confidence),
            "privacy_unit": "one person's records in one snapshot; L1 sensitivity = snapshots of one "
            "dataset in one fiscal year read by the table",
        },
        "disclosure_control": {
            "rule": "suppress cells whose noisy value is below the threshold (post-processing)",
            "threshold": plan.threshold,
            "suppressed_cells": suppressed,
        },
        "cells": len(rows),
        "definition": request.model_dump(mode="json"),
    }
    return OpenDataTable(
        plan.release_id, header, rows, notes, plan.epsilon, error, plan.confidence, plan.budgets, record
    )


WITHHELD = "—"
WITHHELD_NOTE = (
    f"{WITHHELD}: 値は公開時に雑音を加えて決まります。公開する所管課のデータ管理者にだけ一例を示します"
    "（繰り返し見ると雑音の平均から元の値が分かるため） (values are drawn at publishing; an example is shown "
    "only to the stewards who may publish: repeated previews would average the noise away)"
)


def _withheld(table: OpenDataTable) -> OpenDataTable:
    """The preview without values: the cells, their error and the budget (for the table's requester)."""
    rows = [[*row[:-2], WITHHELD, row[-1]] for row in table.rows]
    record = {
        **table.record,
        "disclosure_control": {**table.record["disclosure_control"], "suppressed_cells": None},
    }
    return OpenDataTable(
        table.release_id, table.header, rows, [*table.notes, WITHHELD_NOTE], table.epsilon, table.error,
        table.confidence, table.budgets, record,
    )  # fmt: skip


def _as_date(dimension: object, value: Cell) -> Any:
    if getattr(dimension, "kind", "") == "period" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value


def _budget_json(b: BudgetLine) -> dict[str, Any]:
    return {
        "dataset": b.dataset,
        "fiscal_year": b.fiscal_year,
        "total": b.total,
        "spent": b.spent,
        "left_after": round(b.after, 6),
    }


# --- who may (authorize() rules) -------------------------------------------------------------------------

_SHOWN = (ReleaseStatus.RELEASED, ReleaseStatus.APPROVED)


@rule(Action.OPENDATA_PREVIEW, Action.OPENDATA_PUBLISH, on=[ResourceType.RELEASE])
def _may_publish(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    """Preview: the table's requester (analyst or steward) or a steward of a department owning one of its
    datasets. Publish: a steward of the department owning every dataset it reads, never the requester.
    Either only once the table is released or approved. Admins run the hub and do not decide."""
    release = session.get(Release, resource.id, populate_existing=True) if resource.id is not None else None
    publish = action is Action.OPENDATA_PUBLISH
    if publish and principal.role is not Role.STEWARD:  # before the release is looked at: says nothing of it
        return deny(
            "deny:role", "公開はデータ管理者が行います", "only stewards publish", label=resource.label
        )
    if release is None:
        return _hidden("deny:not-found", resource, publish)
    label_ = f"release/{release.id}"
    owners = set(session.scalars(select(Dataset.owner_id).where(Dataset.name.in_(release.datasets))))
    owning_steward = principal.role is Role.STEWARD and principal.department_id in owners
    requester = principal.user_id == release.user_id
    if not (owning_steward or requester):
        return _hidden("deny:not-owner", resource, publish)  # the same answer as for a release that is not
    if not publish:
        if not (owning_steward or principal.role in (Role.ANALYST, Role.STEWARD)):
            return _hidden("deny:not-owner", resource, publish)
    else:
        if requester:
            return deny(
                "deny:separation-of-duties",
                "作成者本人は公開できません",
                "the requester cannot publish their own table",
                label=label_,
            )
        if owners != {principal.department_id}:
            return deny(
                "deny:not-owner",
                "表が読むすべてのデータの所管課のデータ管理者だけが公開できます",
                "only a steward of the department owning every dataset the table reads publishes it",
                label=label_,
            )
    if release.status not in _SHOWN:
        return deny(
            "deny:state",
            "公表済みまたは承認済みの集計表ではありません",
            "not a released or approved table",
            label=label_,
            error=InvalidTransition,
        )
    if action is Action.OPENDATA_PREVIEW:
        return allow("requester-or-owning-steward", "作成者か所管課のデータ管理者です",
                     "the requester or a steward of an owning department", label=label_)  # fmt: skip
    return allow("owning-steward", "所管課のデータ管理者です", "a steward of the owning department",
                 label=label_)  # fmt: skip


__all__ = [
    "BudgetLine",
    "OpenDataRelease",
    "OpenDataTable",
    "PrivacyBudget",
    "PrivacyBudgetExceededError",
    "PublishedOpenData",
    "fiscal_year",
    "preview_opendata",
    "publish_opendata",
]


def _hidden(policy: str, resource: Resource, publish: bool) -> Verdict:
    """One answer for a release that does not exist and one the caller may not see: the id is no oracle."""
    what_ja, what_en = ("公開", "publish") if publish else ("公開前の確認", "preview")
    return deny(
        policy,
        f"{resource.label} はないか、{what_ja}の権限がありません（作成者か所管課のデータ管理者が行います）",
        f"no {resource.label}, or not one you may {what_en} (the requester or an owning steward does)",
        label=resource.label,
    )
