"""Grants (利用承認・権限付与): one user's approved, time-bound right to use given snapshots of one dataset.

A grant is issued for each dataset of an application once every owning department has approved it. It
covers exactly the snapshots the stewards saw, and it is active from ``valid_from`` to the end of
``valid_until`` (Japan time) while not revoked. Expiry is a comparison with the clock on every decision, so
no job has to run. A steward of the owning department or an admin can revoke a grant at any time, and the
next decision sees it.

A dataset's folder access list (フォルダごとのアクセス制御) is derived from its grants: :func:`folder_acl`.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Column,
    CursorResult,
    Date,
    ForeignKey,
    String,
    Table,
    Text,
    and_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload
from sqlalchemy.sql.elements import ColumnElement

from renkei.clock import SYSTEM_CLOCK, Clock, city_today
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
    rule,
)
from renkei.hub.access.people import Role, User
from renkei.hub.audit import AuditLog, UTCDateTime
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset, Snapshot
from renkei.hub.db import Base

MAX_REASON = 1000


grant_snapshots = Table(
    "grant_snapshots",
    Base.metadata,
    Column("grant_id", ForeignKey("grants.id"), primary_key=True),
    Column("snapshot_id", ForeignKey("snapshots.id"), primary_key=True, index=True),
)


class GrantStatus(enum.StrEnum):
    SCHEDULED = "scheduled"  # approved, period of use not begun
    ACTIVE = "active"
    EXPIRED = "expired"  # the period of use has ended
    REVOKED = "revoked"  # revoked, or ended with its application (withdrawn, revoked)


class Grant(Base):
    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("application_parts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    row_level: Mapped[bool] = mapped_column(Boolean)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)  # inclusive: usable until the end of this day
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_by: Mapped[str] = mapped_column(String(128), default="")
    revoke_reason: Mapped[str] = mapped_column(Text, default="")

    user: Mapped[User] = relationship()
    dataset: Mapped[Dataset] = relationship()
    snapshots: Mapped[list[Snapshot]] = relationship(
        secondary=grant_snapshots, order_by=(Snapshot.period, Snapshot.version)
    )

    def status(self, today: dt.date) -> GrantStatus:
        if self.revoked_at is not None:
            return GrantStatus.REVOKED
        if today < self.valid_from:
            return GrantStatus.SCHEDULED
        if today > self.valid_until:
            return GrantStatus.EXPIRED
        return GrantStatus.ACTIVE


def _active_on(today: dt.date) -> ColumnElement[bool]:
    return and_(Grant.revoked_at.is_(None), Grant.valid_from <= today, Grant.valid_until >= today)


def _user_id(user: User | int) -> int:
    return user if isinstance(user, int) else user.id


def active_grants(session: Session, user: User | int, clock: Clock = SYSTEM_CLOCK) -> list[Grant]:
    """The user's grants usable now (not revoked, within the period of use)."""
    stmt = (
        select(Grant)
        .where(Grant.user_id == _user_id(user), _active_on(city_today(clock)))
        .order_by(Grant.id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(stmt))


def grants_on_snapshot(session: Session, user_id: int, snapshot_id: int) -> list[Grant]:
    """Every grant of the user that names the snapshot, whatever its status, oldest first."""
    stmt = (
        select(Grant)
        .join(grant_snapshots, grant_snapshots.c.grant_id == Grant.id)
        .where(Grant.user_id == user_id, grant_snapshots.c.snapshot_id == snapshot_id)
        .order_by(Grant.id)
        .execution_options(populate_existing=True)  # a revocation by another process must show at once
    )
    return list(session.scalars(stmt))


def end_grants(session: Session, application_id: int, by: str, reason: str, clock: Clock) -> int:
    """End every grant of an application that is not revoked yet (withdrawal, revocation); returns the count."""
    stmt = (
        update(Grant)
        .where(Grant.application_id == application_id, Grant.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoked_by=by, revoke_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    return cast(CursorResult[Any], session.execute(stmt)).rowcount


def revoke_grant(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    grant_id: int,
    *,
    reason: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Grant:
    """Revoke one grant (a steward of the dataset's owning department, or an admin); commits."""
    reason = _required_reason(reason)
    check(session, audit, actor, Action.GRANT_REVOKE, Resource.of(ResourceType.GRANT, grant_id), clock=clock)
    stmt = (
        update(Grant)
        .where(Grant.id == grant_id, Grant.revoked_at.is_(None))  # the row lock decides a race
        .values(revoked_at=clock.now(), revoked_by=actor.name, revoke_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], session.execute(stmt)).rowcount != 1:
        session.rollback()
        raise InvalidTransition(
            "この利用承認は既に取り消されています", f"grant {grant_id} is already revoked"
        )
    grant = session.get_one(Grant, grant_id, populate_existing=True)
    audit.append_in(
        session,
        actor=actor.name,
        action=AuditAction.GRANT_REVOKE,
        resource=f"grant/{grant.id}",
        reason=reason,
        terminal=actor.terminal,
        client_addr=actor.client_addr,
        details={"grant_id": grant.id, "application_id": grant.application_id, "dataset": grant.dataset.name},
    )
    session.commit()
    return grant


def _required_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise RenkeiError("取消しの理由を入力してください", "a revocation needs a reason")
    if len(reason) > MAX_REASON:
        raise RenkeiError(
            f"理由は {MAX_REASON} 文字以内にしてください", f"reason exceeds {MAX_REASON} characters"
        )
    return reason


# --- folder access lists ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AclEntry:
    grant_id: int
    login_id: str
    display_name: str
    row_level: bool
    valid_from: dt.date
    valid_until: dt.date
    snapshots: tuple[str, ...]  # "2026-03-31 v1"


@dataclass(frozen=True, slots=True)
class FolderAcl:
    """Who may use a dataset's folder now: the grant holders; and who decides on it: its stewards."""

    dataset: str
    owner: str
    stewards: tuple[str, ...]
    readers: tuple[AclEntry, ...]


def folder_acl(session: Session, dataset: Dataset, clock: Clock = SYSTEM_CLOCK) -> FolderAcl:
    """The folder's access list, derived from grants by the same test the data rules apply."""
    readers = session.scalars(
        select(Grant)
        .join(User, User.id == Grant.user_id)
        .where(Grant.dataset_id == dataset.id, _active_on(city_today(clock)), *_may_hold_data())
        .options(selectinload(Grant.snapshots), selectinload(Grant.user))
        .order_by(User.login_id, Grant.id)
    )
    stewards = session.scalars(
        select(User.login_id)
        .where(User.role == Role.STEWARD, User.department_id == dataset.owner_id, User.disabled.is_(False))
        .order_by(User.login_id)
    )
    return FolderAcl(
        dataset=dataset.name,
        owner=dataset.owner.name,
        stewards=tuple(stewards),
        readers=tuple(_acl_entry(g) for g in readers),
    )


def _may_hold_data() -> tuple[ColumnElement[bool], ...]:
    return (User.role == Role.ANALYST, User.disabled.is_(False))


def _acl_entry(grant: Grant) -> AclEntry:
    return AclEntry(
        grant_id=grant.id,
        login_id=grant.user.login_id,
        display_name=grant.user.display_name,
        row_level=grant.row_level,
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        snapshots=tuple(f"{s.period} v{s.version}" for s in grant.snapshots),
    )


# --- rules ------------------------------------------------------------------------------------------------


def data_role_refusal(principal: Principal, label: str = "") -> Verdict | None:
    """Data goes only to analysts, through grants; auditors never see data, whatever they hold."""
    if principal.role is Role.AUDITOR:
        return deny(
            "deny:auditor-no-data", "監査担当はデータを利用できません", "auditors never see data", label=label
        )
    if principal.role is not Role.ANALYST or principal.user_id is None:
        return deny(
            "deny:role",
            "データを利用できるのは利用承認を受けた分析担当だけです",
            f"data is for analysts with a grant, not for {principal.role}s",
            label=label,
        )
    return None


def snapshot_verdict(
    session: Session, principal: Principal, snapshot_id: int | None, clock: Clock, *, row_level: bool = False
) -> Verdict:
    """Allowed iff an active grant of the principal covers the snapshot (and includes rows if asked)."""
    snapshot = session.get(Snapshot, snapshot_id) if snapshot_id is not None else None
    if snapshot is None:
        return deny("deny:not-found", "スナップショットがありません", "no such snapshot")
    label = f"snapshot/{snapshot.resource}"
    refusal = data_role_refusal(principal, label)
    if refusal is not None:
        return refusal
    assert principal.user_id is not None  # data_role_refusal checked it
    today = city_today(clock)
    grants = grants_on_snapshot(session, principal.user_id, snapshot.id)
    active = [g for g in grants if g.status(today) is GrantStatus.ACTIVE]
    usable = [g for g in active if g.row_level or not row_level]
    if usable:
        found = usable[0]
        return allow(
            "grant",
            f"利用承認 {found.id} の範囲内です",
            f"grant {found.id} covers {snapshot.resource}",
            grant_ids=(found.id,),
            application_id=found.application_id,
            label=label,
        )
    if active:
        return deny(
            "deny:row-level",
            "この利用承認には個票閲覧が含まれていません",
            f"grant {active[0].id} does not include row-level viewing",
            grant_ids=tuple(g.id for g in active),
            label=label,
        )
    if grants:
        return _lapsed(grants[-1], today, label)
    return deny(
        "deny:no-grant",
        "このデータの利用承認がありません",
        f"no grant covers {snapshot.resource}",
        label=label,
    )


def _lapsed(grant: Grant, today: dt.date, label: str) -> Verdict:
    status = grant.status(today)
    ja, en = {
        GrantStatus.REVOKED: ("利用承認は取り消されています", f"grant {grant.id} was revoked"),
        GrantStatus.EXPIRED: (
            f"利用期間は {grant.valid_until} で終了しています",
            f"grant {grant.id} expired after {grant.valid_until}",
        ),
        GrantStatus.SCHEDULED: (
            f"利用期間は {grant.valid_from} からです",
            f"grant {grant.id} is valid from {grant.valid_from}",
        ),
    }[status]
    return deny(
        f"deny:grant-{status}",
        ja,
        en,
        grant_ids=(grant.id,),
        application_id=grant.application_id,
        label=label,
    )


@rule(Action.SNAPSHOT_READ, Action.SNAPSHOT_READ_ROWS, on=[ResourceType.SNAPSHOT])
def _may_read_snapshot(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    return snapshot_verdict(
        session, principal, resource.id, clock, row_level=action is Action.SNAPSHOT_READ_ROWS
    )


def _owning_steward(principal: Principal, dataset: Dataset) -> bool:
    return principal.role is Role.STEWARD and principal.department_id == dataset.owner_id


@rule(Action.GRANT_READ, Action.GRANT_REVOKE, on=[ResourceType.GRANT])
def _may_handle_grant(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    if resource.id is None:  # every grant: a list for those who oversee them
        if action is Action.GRANT_READ and principal.role in (Role.ADMIN, Role.AUDITOR):
            return allow(f"role:{principal.role}", "全件を閲覧できます", f"{principal.role}s see every grant")
        return deny(
            "deny:role",
            "全件の閲覧は基盤管理者と監査担当だけです",
            "only admins and auditors list every grant",
        )
    grant = session.get(Grant, resource.id, populate_existing=True)
    if grant is None:
        return deny("deny:not-found", "利用承認がありません", "no such grant")
    label = f"grant/{grant.id}"
    authority = _grant_authority(principal, action, grant)
    if authority is None:
        return deny(
            "deny:not-involved",
            "この利用承認を扱う権限がありません",
            f"{action} is not yours on this grant",
            label=label,
        )
    if action is Action.GRANT_REVOKE and grant.revoked_at is not None:
        return deny(
            "deny:revoked",
            "既に取り消されています",
            "grant already revoked",
            label=label,
            error=InvalidTransition,
        )
    return allow(*authority, label=label)


def _grant_authority(principal: Principal, action: Action, grant: Grant) -> tuple[str, str, str] | None:
    """(policy, ja, en) of the principal's standing on the grant for ``action``, or None."""
    if principal.role is Role.ADMIN:
        return "role:admin", "基盤管理者です", "admins oversee every grant"
    if _owning_steward(principal, grant.dataset):
        return "owning-steward", "所管課のデータ管理者です", "steward of the owning department"
    if action is Action.GRANT_READ and principal.role is Role.AUDITOR:
        return "role:auditor", "監査担当です", "auditors inspect every grant"
    if action is Action.GRANT_READ and principal.user_id == grant.user_id:
        return "holder", "本人の利用承認です", "the grant's holder"
    return None


@rule(Action.FOLDER_READ_ACL, on=[ResourceType.DATASET])
def _may_read_folder_acl(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    dataset = session.get(Dataset, resource.id) if resource.id is not None else None
    if dataset is None:
        return deny("deny:not-found", "データセットがありません", "no such dataset")
    label = f"dataset/{dataset.name}"
    if principal.role in (Role.ADMIN, Role.AUDITOR):
        return allow(
            f"role:{principal.role}", "閲覧できます", f"{principal.role}s see every folder's ACL", label=label
        )
    if _owning_steward(principal, dataset):
        return allow(
            "owning-steward", "所管課のデータ管理者です", "steward of the owning department", label=label
        )
    return deny(
        "deny:not-involved",
        "このフォルダの権限一覧は閲覧できません",
        "not this folder's steward",
        label=label,
    )
