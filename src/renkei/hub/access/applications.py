"""Data-use applications (データ利用承認申請) and their workflow.

An analyst applies for snapshots of one or more datasets: named periods (as-of dates), or every period up to
the application date. The application states the purpose (目的), the intended outputs (想定する成果物), the
period of use and whether row-level viewing (個票閲覧) is needed. It has one part per owning department
(所管課), and a steward of that department decides only that part.

The workflow is data (airlock style). Tests check that it is total and closed:

- ``VALID_TRANSITIONS`` is the graph of application states;
- ``TRANSITION_AUDIT_EVENT`` names each edge, and that name is also its audit action;
- ``EVENT_PARTIES`` says who may take each kind of edge, and ``STATE_OWNERS`` who may move an application out
  of each state;
- ``PART_TRANSITIONS`` and ``PART_EVENT`` do the same for a department's part.

:func:`check_transition` applies the maps. It also enforces separation of duties: nobody approves or rejects
their own application, whatever role they hold by then. A move is first decided by ``authz.authorize()``. It
is then checked again under a lock on the application, applied, and audited in the same transaction.

A part asking for row-level viewing (個票閲覧) of a snapshot whose re-identification risk report is flagged
(:mod:`renkei.hub.assessment`, docs/risk.md) needs two approvals by two stewards of its department: the first
leaves it pending (the application partially approved), and its giver cannot give the second.

Grants are issued only when every part is approved, because the purpose was approved as a whole. For the same
reason one department's rejection or revocation ends the application. Grants end when the application is
withdrawn or revoked, and when the period of use ends.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Boolean, Date, Enum, ForeignKey, String, Text, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from renkei.clock import SYSTEM_CLOCK, Clock, city_today
from renkei.errors import RenkeiError
from renkei.hub.access.authz import (
    Action,
    Actor,
    Forbidden,
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
from renkei.hub.access.grants import Grant, end_grants
from renkei.hub.access.people import Role, User
from renkei.hub.assessment import flagged_snapshots
from renkei.hub.audit import AuditLog, UTCDateTime
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset, Department, Snapshot
from renkei.hub.db import Base

MAX_TEXT = 4000  # purpose, outputs
MAX_COMMENT = 1000  # a decision's comment goes into the audit entry's reason (1024 characters at most)
CLOCK_ACTOR = Actor("system:clock")


class ApplicationState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    PARTIALLY_APPROVED = "partially_approved"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    REVOKED = "revoked"


STATE_LABELS_JA = {
    ApplicationState.DRAFT: "作成中",
    ApplicationState.SUBMITTED: "申請中",
    ApplicationState.PARTIALLY_APPROVED: "一部承認",
    ApplicationState.APPROVED: "承認",
    ApplicationState.REJECTED: "却下",
    ApplicationState.WITHDRAWN: "取下げ",
    ApplicationState.EXPIRED: "期間満了",
    ApplicationState.REVOKED: "取消し",
}


class PartState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


PART_LABELS_JA = {
    PartState.PENDING: "審査待ち",
    PartState.APPROVED: "承認",
    PartState.REJECTED: "却下",
    PartState.REVOKED: "取消し",
}


class Party(enum.StrEnum):
    """Who may move an application, relative to it (a user can be several: see separation of duties)."""

    APPLICANT = "applicant"
    OWNING_STEWARD = "owning_steward"  # a steward of the department whose part is at stake
    ADMIN = "admin"
    CLOCK = "clock"  # time itself: the period of use ended
    FIRST_APPROVER = (
        "first_approver"  # gave the first of a part's two approvals (docs/risk.md); takes no event
    )


PARTY_LABELS_JA = {
    Party.APPLICANT: "申請者",
    Party.OWNING_STEWARD: "所管課のデータ管理者",
    Party.ADMIN: "基盤管理者",
    Party.CLOCK: "期間満了",
    Party.FIRST_APPROVER: "1人目の承認者",
}


class Event(enum.StrEnum):
    """A move of the workflow; the value is its audit action (and, but for expiry, its authz action)."""

    SUBMIT = AuditAction.APPLICATION_SUBMIT.value
    WITHDRAW = AuditAction.APPLICATION_WITHDRAW.value
    APPROVE = AuditAction.APPLICATION_APPROVE.value
    REJECT = AuditAction.APPLICATION_REJECT.value
    REVOKE = AuditAction.APPLICATION_REVOKE.value
    EXPIRE = AuditAction.APPLICATION_EXPIRE.value

    @property
    def audit_action(self) -> AuditAction:
        return AuditAction(self.value)


S = ApplicationState
P = PartState

VALID_TRANSITIONS: dict[ApplicationState, frozenset[ApplicationState]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.WITHDRAWN}),
    S.SUBMITTED: frozenset({S.PARTIALLY_APPROVED, S.APPROVED, S.REJECTED, S.WITHDRAWN, S.REVOKED}),
    S.PARTIALLY_APPROVED: frozenset({S.PARTIALLY_APPROVED, S.APPROVED, S.REJECTED, S.WITHDRAWN, S.REVOKED}),
    S.APPROVED: frozenset({S.WITHDRAWN, S.EXPIRED, S.REVOKED}),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.EXPIRED: frozenset(),
    S.REVOKED: frozenset(),
}

TRANSITION_AUDIT_EVENT: dict[tuple[ApplicationState, ApplicationState], Event] = {
    (S.DRAFT, S.SUBMITTED): Event.SUBMIT,
    (S.DRAFT, S.WITHDRAWN): Event.WITHDRAW,
    (S.SUBMITTED, S.PARTIALLY_APPROVED): Event.APPROVE,
    (S.SUBMITTED, S.APPROVED): Event.APPROVE,
    (S.SUBMITTED, S.REJECTED): Event.REJECT,
    (S.SUBMITTED, S.WITHDRAWN): Event.WITHDRAW,
    (S.SUBMITTED, S.REVOKED): Event.REVOKE,
    (S.PARTIALLY_APPROVED, S.PARTIALLY_APPROVED): Event.APPROVE,
    (S.PARTIALLY_APPROVED, S.APPROVED): Event.APPROVE,
    (S.PARTIALLY_APPROVED, S.REJECTED): Event.REJECT,
    (S.PARTIALLY_APPROVED, S.WITHDRAWN): Event.WITHDRAW,
    (S.PARTIALLY_APPROVED, S.REVOKED): Event.REVOKE,
    (S.APPROVED, S.WITHDRAWN): Event.WITHDRAW,
    (S.APPROVED, S.EXPIRED): Event.EXPIRE,
    (S.APPROVED, S.REVOKED): Event.REVOKE,
}

EVENT_PARTIES: dict[Event, frozenset[Party]] = {
    Event.SUBMIT: frozenset({Party.APPLICANT}),
    Event.WITHDRAW: frozenset({Party.APPLICANT}),
    Event.APPROVE: frozenset({Party.OWNING_STEWARD}),  # admins run the hub; they do not decide on data use
    Event.REJECT: frozenset({Party.OWNING_STEWARD}),
    Event.REVOKE: frozenset({Party.OWNING_STEWARD, Party.ADMIN}),
    Event.EXPIRE: frozenset({Party.CLOCK}),
}

STATE_OWNERS: dict[ApplicationState, frozenset[Party]] = {
    S.DRAFT: frozenset({Party.APPLICANT}),
    S.SUBMITTED: frozenset({Party.APPLICANT, Party.OWNING_STEWARD, Party.ADMIN}),
    S.PARTIALLY_APPROVED: frozenset({Party.APPLICANT, Party.OWNING_STEWARD, Party.ADMIN}),
    S.APPROVED: frozenset({Party.APPLICANT, Party.OWNING_STEWARD, Party.ADMIN, Party.CLOCK}),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.EXPIRED: frozenset(),
    S.REVOKED: frozenset(),
}

# These two lists include every state and are disjoint (validated in tests).
OPEN_STATES = frozenset({S.DRAFT, S.SUBMITTED, S.PARTIALLY_APPROVED, S.APPROVED})
FINAL_STATES = frozenset({S.REJECTED, S.WITHDRAWN, S.EXPIRED, S.REVOKED})

# Separation of duties: a decision on an application is never its applicant's.
DECISIONS = frozenset({Event.APPROVE, Event.REJECT})

PART_TRANSITIONS: dict[PartState, frozenset[PartState]] = {
    P.PENDING: frozenset({P.APPROVED, P.REJECTED}),
    P.APPROVED: frozenset({P.REVOKED}),
    P.REJECTED: frozenset(),
    P.REVOKED: frozenset(),
}

PART_EVENT: dict[tuple[PartState, PartState], Event] = {
    (P.PENDING, P.APPROVED): Event.APPROVE,
    (P.PENDING, P.REJECTED): Event.REJECT,
    (P.APPROVED, P.REVOKED): Event.REVOKE,
}

EVENT_ACTION: dict[Event, Action] = {
    Event.SUBMIT: Action.APPLICATION_SUBMIT,
    Event.WITHDRAW: Action.APPLICATION_WITHDRAW,
    Event.APPROVE: Action.APPLICATION_APPROVE,
    Event.REJECT: Action.APPLICATION_REJECT,
    Event.REVOKE: Action.APPLICATION_REVOKE,
}
ACTION_EVENT = {action: event for event, action in EVENT_ACTION.items()}


class ApplicationError(RenkeiError):
    """An application as written cannot be accepted (missing purpose, unknown dataset or period …)."""


class SeparationOfDuties(Forbidden):
    """Someone tried to decide on their own application."""


# --- tables -----------------------------------------------------------------------------------------------


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(Text)  # 目的
    outputs: Mapped[str] = mapped_column(Text)  # 想定する成果物
    use_start: Mapped[dt.date] = mapped_column(Date)
    use_end: Mapped[dt.date] = mapped_column(Date)  # inclusive
    row_level: Mapped[bool] = mapped_column(Boolean)  # 個票閲覧
    state: Mapped[ApplicationState] = mapped_column(Enum(ApplicationState, native_enum=False, length=24))
    applied_on: Mapped[dt.date] = mapped_column(Date)  # the application date: "every period up to" it
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime
    )  # every move writes it first, to lock the row
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_by: Mapped[str] = mapped_column(String(128), default="")
    close_reason: Mapped[str] = mapped_column(Text, default="")

    applicant: Mapped[User] = relationship()
    parts: Mapped[list[ApplicationPart]] = relationship(
        back_populates="application", order_by="ApplicationPart.id", cascade="all, delete-orphan"
    )

    @property
    def label(self) -> str:
        return f"application/{self.id}"


class ApplicationPart(Base):
    """One owning department's part of an application: its datasets, and its steward's decision."""

    __tablename__ = "application_parts"
    __table_args__ = (UniqueConstraint("application_id", "department_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    state: Mapped[PartState] = mapped_column(Enum(PartState, native_enum=False, length=16))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    # the first of two approvals, when the part needs a second (row-level over a flagged snapshot)
    first_approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    first_approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    application: Mapped[Application] = relationship(back_populates="parts")
    department: Mapped[Department] = relationship()
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    items: Mapped[list[ApplicationItem]] = relationship(
        order_by="ApplicationItem.id", cascade="all, delete-orphan"
    )

    @property
    def label(self) -> str:
        return f"application/{self.application_id}/part/{self.id}"


class ApplicationItem(Base):
    """One snapshot a part asks for; fixed when the application is made, so stewards see exactly what they grant."""

    __tablename__ = "application_items"
    __table_args__ = (UniqueConstraint("part_id", "snapshot_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("application_parts.id"), index=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"))

    snapshot: Mapped[Snapshot] = relationship()


# --- the workflow's rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    event: Event
    target: ApplicationState
    part_target: PartState | None  # a department's part changes too (decision, revocation of that part)


def check_transition(state: ApplicationState, target: ApplicationState, parties: frozenset[Party]) -> Event:
    """The event that moves an application from ``state`` to ``target``, if ``parties`` may make it."""
    if target not in VALID_TRANSITIONS[state]:
        raise InvalidTransition(
            f"「{STATE_LABELS_JA[state]}」の申請を「{STATE_LABELS_JA[target]}」にはできません",
            f"an application cannot go from {state} to {target}",
        )
    event = TRANSITION_AUDIT_EVENT[(state, target)]
    check_parties(event, parties)
    return event


def check_parties(event: Event, parties: frozenset[Party]) -> None:
    """Whether ``parties`` may make ``event`` at all: separation of duties, then the event's parties."""
    if event in DECISIONS and Party.APPLICANT in parties:
        raise SeparationOfDuties(
            "自分の申請は承認・却下できません", "nobody approves or rejects their own application"
        )
    if not parties & EVENT_PARTIES[event]:
        allowed = EVENT_PARTIES[event]
        raise Forbidden(
            f"この操作は{'・'.join(PARTY_LABELS_JA[p] for p in sorted(allowed))}が行います",
            f"{event} is for: {', '.join(sorted(allowed))}",
        )


def can_transition(state: ApplicationState, target: ApplicationState, parties: frozenset[Party]) -> bool:
    try:
        check_transition(state, target, parties)
    except Forbidden:
        return False
    return True


def check_part_transition(state: PartState, target: PartState) -> Event:
    if target not in PART_TRANSITIONS[state]:
        raise InvalidTransition(
            f"所管課の部分は「{PART_LABELS_JA[state]}」のため「{PART_LABELS_JA[target]}」にできません",
            f"a department's part cannot go from {state} to {target}",
        )
    return PART_EVENT[(state, target)]


def parties_of(
    principal: Principal, application: Application, part: ApplicationPart | None
) -> frozenset[Party]:
    """What the principal is to this application (and to ``part``, the department's part at stake)."""
    parties: set[Party] = set()
    if principal.user_id is not None and principal.user_id == application.applicant_id:
        parties.add(Party.APPLICANT)
    if principal.role is Role.STEWARD and part is not None and principal.department_id == part.department_id:
        parties.add(Party.OWNING_STEWARD)
    if principal.role is Role.ADMIN:
        parties.add(Party.ADMIN)
    if part is not None and principal.user_id is not None and principal.user_id == part.first_approved_by_id:
        parties.add(Party.FIRST_APPROVER)
    return frozenset(parties)


_TARGETS = {
    Event.SUBMIT: S.SUBMITTED,
    Event.WITHDRAW: S.WITHDRAWN,
    Event.REJECT: S.REJECTED,
    Event.REVOKE: S.REVOKED,
    Event.EXPIRE: S.EXPIRED,
}
_PART_TARGETS = {Event.APPROVE: P.APPROVED, Event.REJECT: P.REJECTED, Event.REVOKE: P.REVOKED}


def plan_move(
    event: Event, application: Application, part: ApplicationPart | None, *, second_approval: bool = False
) -> Move:
    """Where ``event`` takes the application (and the part); approval completes it when it is the last part.

    ``second_approval``: the part needs two approvals; the first leaves it pending (no part target).
    """
    if event in DECISIONS and part is None:
        raise InvalidTransition(
            "承認・却下は所管課ごとの部分について行います", f"{event} decides one department's part"
        )
    if part is None:
        return Move(event, _TARGETS[event], None)
    if event is Event.APPROVE and second_approval and part.first_approved_by_id is None:
        return Move(event, S.PARTIALLY_APPROVED, None)
    if event is Event.APPROVE:
        rest_approved = all(p.state is P.APPROVED for p in application.parts if p.id != part.id)
        return Move(event, S.APPROVED if rest_approved else S.PARTIALLY_APPROVED, P.APPROVED)
    return Move(event, _TARGETS[event], _PART_TARGETS.get(event))


def check_move(
    event: Event,
    application: Application,
    part: ApplicationPart | None,
    parties: frozenset[Party],
    *,
    second_approval: bool = False,
) -> Move:
    """Plan ``event`` and check it against both state machines and the parties; raise if it is not allowed.

    Who asks is checked first, so that a stranger learns nothing about the application's state.
    """
    check_parties(event, parties)
    if event is Event.APPROVE and second_approval and Party.FIRST_APPROVER in parties:
        raise SeparationOfDuties(
            "2人目の承認は、1人目とは別のデータ管理者が行います",
            "the second approval of a part is another steward's than the first",
        )
    move = plan_move(event, application, part, second_approval=second_approval)
    if part is not None and move.part_target is not None:
        check_part_transition(part.state, move.part_target)
    elif part is not None and event is Event.APPROVE:  # a first approval: only of a pending part
        check_part_transition(part.state, P.APPROVED)
    check_transition(application.state, move.target, parties)  # its event is ``event``: see the tests
    return move


def needs_second_approval(session: Session, application: Application, part: ApplicationPart | None) -> bool:
    """Whether ``part`` asks for row-level viewing of a snapshot whose risk report is flagged (docs/risk.md)."""
    if part is None or not application.row_level:
        return False
    return bool(flagged_snapshots(session, [item.snapshot_id for item in part.items]))


def effective_state(application: Application, clock: Clock = SYSTEM_CLOCK) -> ApplicationState:
    """The state to show: an approved application whose period of use has ended is expired, recorded or not."""
    if application.state is S.APPROVED and city_today(clock) > application.use_end:
        return S.EXPIRED
    return application.state


def state_diagram() -> str:
    """The workflow as a mermaid state diagram (docs/permissions.md shows it; a test keeps them equal)."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.DRAFT}: {AuditAction.APPLICATION_CREATE}"]
    for (source, target), event in TRANSITION_AUDIT_EVENT.items():
        lines.append(f"    {source} --> {target}: {event}")
    lines += [f"    {state} --> [*]" for state in ApplicationState if state in FINAL_STATES]
    return "\n".join(lines)


# --- making an application --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasetRequest:
    """One dataset asked for: the named periods (as-of dates), or every period up to the application date."""

    dataset: str
    periods: tuple[dt.date, ...] = ()
    all_periods: bool = False


@dataclass(frozen=True, slots=True)
class ApplicationForm:
    """What an applicant fills in, for a new application or a rewritten draft (checked by the workflow)."""

    purpose: str
    outputs: str
    use_start: dt.date
    use_end: dt.date
    row_level: bool
    requests: Sequence[DatasetRequest]


def create_application(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    form: ApplicationForm,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Application:
    """Record a draft application, one part per owning department; commits. Submit it with :func:`submit`."""
    today = city_today(clock)
    purpose, outputs, scope = _checked(session, form, today)
    check(
        session, audit, actor, Action.APPLICATION_CREATE, Resource.of(ResourceType.APPLICATION), clock=clock
    )
    assert actor.user_id is not None  # only analysts may create, and they are users
    now = clock.now()
    parts = _new_parts(scope)
    application = Application(
        applicant_id=actor.user_id,
        purpose=purpose,
        outputs=outputs,
        use_start=form.use_start,
        use_end=form.use_end,
        row_level=form.row_level,
        state=S.DRAFT,
        applied_on=today,
        created_at=now,
        updated_at=now,
        parts=parts,
    )
    session.add(application)
    session.flush()
    _record_draft(session, audit, actor, AuditAction.APPLICATION_CREATE, application)
    session.commit()
    return application


def edit_draft(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    application_id: int,
    form: ApplicationForm,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Application:
    """The applicant rewrites a draft: every field, and the datasets and periods (parts made afresh); commits.

    Checked like a new application; refused (409) once the draft was submitted or withdrawn.
    """
    today = city_today(clock)
    purpose, outputs, scope = _checked(session, form, today)
    resource = _application(application_id)
    check(session, audit, actor, Action.APPLICATION_EDIT, resource, clock=clock)
    application, _ = _lock(session, resource, clock)
    if application.state is not S.DRAFT:  # submitted between the decision and the lock
        session.rollback()
        raise InvalidTransition(
            "提出した申請は書き直せません", "an application can be edited only while it is a draft"
        )
    application.parts.clear()
    session.flush()  # the old parts go first: (application, department) is unique
    application.parts.extend(_new_parts(scope))
    application.purpose, application.outputs = purpose, outputs
    application.use_start, application.use_end = form.use_start, form.use_end
    application.row_level = form.row_level
    application.applied_on, application.updated_at = today, clock.now()
    session.flush()
    _record_draft(session, audit, actor, AuditAction.APPLICATION_EDIT, application)
    session.commit()
    return application


def _checked(
    session: Session, form: ApplicationForm, today: dt.date
) -> tuple[str, str, dict[int, list[Snapshot]]]:
    """A draft's texts (stripped) and its snapshots by owning department, or the ApplicationError saying why not."""
    purpose = _required_text(form.purpose, "目的", "purpose", MAX_TEXT)
    outputs = _required_text(form.outputs, "想定する成果物", "intended outputs", MAX_TEXT)
    _check_period_of_use(form.use_start, form.use_end, today)
    return purpose, outputs, _resolve_requests(session, form.requests, today)


def _new_parts(scope: dict[int, list[Snapshot]]) -> list[ApplicationPart]:
    return [
        ApplicationPart(
            department_id=dept, state=P.PENDING, items=[ApplicationItem(snapshot=s) for s in snaps]
        )
        for dept, snaps in scope.items()
    ]


def _record_draft(
    session: Session, audit: AuditLog, actor: Actor, action: AuditAction, application: Application
) -> None:
    """The audit entry of a draft written (created or rewritten): counts, never its texts."""
    audit.append_in(
        session,
        actor=actor.name,
        action=action,
        resource=application.label,
        terminal=actor.terminal,
        client_addr=actor.client_addr,
        details={
            "application_id": application.id,
            "parts": len(application.parts),
            "snapshots": sum(len(p.items) for p in application.parts),
            "row_level": application.row_level,
        },
    )


def _required_text(value: str, ja: str, en: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ApplicationError(f"{ja}を記入してください", f"{en} is required")
    if len(value) > limit:
        raise ApplicationError(f"{ja}は {limit} 文字以内にしてください", f"{en} exceeds {limit} characters")
    return value


def _check_period_of_use(start: dt.date, end: dt.date, today: dt.date) -> None:
    if end < start:
        raise ApplicationError(
            "利用期間の終了日が開始日より前です", "the period of use ends before it starts"
        )
    if end < today:
        raise ApplicationError("利用期間が既に終わっています", "the period of use has already ended")


def _resolve_requests(
    session: Session, requests: Sequence[DatasetRequest], today: dt.date
) -> dict[int, list[Snapshot]]:
    """The snapshots asked for, grouped by owning department (one part each)."""
    if not requests:
        raise ApplicationError("データセットを1つ以上選んでください", "apply for at least one dataset")
    names = [r.dataset for r in requests]
    if len(set(names)) != len(names):
        raise ApplicationError("同じデータセットが重複しています", "a dataset is listed twice")
    by_owner: dict[int, list[Snapshot]] = {}
    for request in requests:
        dataset, snapshots = _resolve(session, request, today)
        by_owner.setdefault(dataset.owner_id, []).extend(snapshots)
    return by_owner


def _resolve(session: Session, request: DatasetRequest, today: dt.date) -> tuple[Dataset, list[Snapshot]]:
    dataset = session.scalar(select(Dataset).where(Dataset.name == request.dataset))
    if dataset is None:
        raise ApplicationError(
            f"データセット {request.dataset} はありません", f"unknown dataset {request.dataset!r}"
        )
    if request.all_periods == bool(request.periods):
        raise ApplicationError(
            f"{request.dataset}: 基準日を指定するか「申請日までの全期間」を選んでください",
            f"{request.dataset}: name periods or ask for all periods up to the application date, not both",
        )
    query = select(Snapshot).where(Snapshot.dataset_id == dataset.id)
    query = query.where(
        Snapshot.period <= today if request.all_periods else Snapshot.period.in_(request.periods)
    )
    snapshots = list(session.scalars(query.order_by(Snapshot.period, Snapshot.version)))
    missing = sorted(set(request.periods) - {s.period for s in snapshots})
    if missing or not snapshots:
        when = ", ".join(map(str, missing)) or f"{today} まで"
        raise ApplicationError(
            f"{request.dataset}: 基準日 {when} のスナップショットがありません",
            f"{request.dataset}: no snapshot for {', '.join(map(str, missing)) or f'periods up to {today}'}",
        )
    return dataset, snapshots


# --- moves ------------------------------------------------------------------------------------------------


def submit(
    session: Session, audit: AuditLog, actor: Actor, application_id: int, *, clock: Clock = SYSTEM_CLOCK
) -> Application:
    """The applicant files a draft with every owning department."""
    return _perform(session, audit, actor, Event.SUBMIT, _application(application_id), clock=clock)


def withdraw(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    application_id: int,
    *,
    reason: str = "",
    clock: Clock = SYSTEM_CLOCK,
) -> Application:
    """The applicant withdraws (取下げ) the application, before or after approval; its grants end."""
    reason = _optional_comment(reason)
    return _perform(
        session, audit, actor, Event.WITHDRAW, _application(application_id), comment=reason, clock=clock
    )


def approve_part(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    part_id: int,
    *,
    comment: str = "",
    clock: Clock = SYSTEM_CLOCK,
) -> Application:
    """A steward of the part's department approves it; the last approval issues the grants."""
    comment = _optional_comment(comment)
    return _perform(session, audit, actor, Event.APPROVE, _part(part_id), comment=comment, clock=clock)


def reject_part(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    part_id: int,
    *,
    comment: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Application:
    """A steward of the part's department rejects it, saying why; the application is rejected."""
    comment = _required_text(comment, "却下の理由", "a rejection's comment", MAX_COMMENT)
    return _perform(session, audit, actor, Event.REJECT, _part(part_id), comment=comment, clock=clock)


def revoke_part(
    session: Session, audit: AuditLog, actor: Actor, part_id: int, *, reason: str, clock: Clock = SYSTEM_CLOCK
) -> Application:
    """A steward of the part's department (or an admin) revokes its approval; the application and its grants end."""
    reason = _required_text(reason, "取消しの理由", "a revocation's reason", MAX_COMMENT)
    return _perform(session, audit, actor, Event.REVOKE, _part(part_id), comment=reason, clock=clock)


def revoke_application(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    application_id: int,
    *,
    reason: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Application:
    """An admin revokes a whole application (pending or approved); its grants end."""
    reason = _required_text(reason, "取消しの理由", "a revocation's reason", MAX_COMMENT)
    return _perform(
        session, audit, actor, Event.REVOKE, _application(application_id), comment=reason, clock=clock
    )


def expire_due(session: Session, audit: AuditLog, clock: Clock = SYSTEM_CLOCK) -> list[int]:
    """Record the end of approved applications whose period of use is over (their grants stopped already)."""
    due = session.scalars(
        select(Application.id).where(Application.state == S.APPROVED, Application.use_end < city_today(clock))
    ).all()
    expired: list[int] = []
    for application_id in due:
        application, _ = _lock(session, _application(application_id), clock)
        try:
            move = check_move(Event.EXPIRE, application, None, frozenset({Party.CLOCK}))
        except InvalidTransition:
            session.rollback()  # withdrawn or revoked meanwhile
            continue
        _apply_and_record(session, audit, CLOCK_ACTOR, None, application, None, move, "", clock)
        expired.append(application_id)
    return expired


def _application(application_id: int) -> Resource:
    return Resource(ResourceType.APPLICATION.value, application_id, f"application/{application_id}")


def _part(part_id: int) -> Resource:
    return Resource.of(ResourceType.APPLICATION_PART, part_id)


def _optional_comment(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_COMMENT:
        raise ApplicationError(
            f"コメントは {MAX_COMMENT} 文字以内にしてください", f"comment exceeds {MAX_COMMENT} characters"
        )
    return text


def _perform(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    event: Event,
    resource: Resource,
    *,
    comment: str = "",
    clock: Clock,
) -> Application:
    check(session, audit, actor, EVENT_ACTION[event], resource, clock=clock)
    application, part = _lock(session, resource, clock)
    principal = resolve_principal(session, actor)
    try:
        if principal is None:
            raise Forbidden("利用者が無効になりました", "the user was disabled meanwhile")
        parties = parties_of(principal, application, part)
        move = check_move(
            event,
            application,
            part,
            parties,
            second_approval=needs_second_approval(session, application, part),
        )
    except Forbidden as exc:
        # Someone else moved the application between the decision and the lock; say so in the log too.
        session.rollback()
        audit.append(
            actor=actor.name,
            action=event.audit_action,
            resource=(part or application).label,
            result="denied",
            reason=f"changed meanwhile: {exc.en}",
            terminal=actor.terminal,
            client_addr=actor.client_addr,
        )
        raise
    _apply_and_record(session, audit, actor, principal.user_id, application, part, move, comment, clock)
    return application


def _lock(session: Session, resource: Resource, clock: Clock) -> tuple[Application, ApplicationPart | None]:
    """Lock the application by writing it first (a row lock on PostgreSQL, the write lock on SQLite), then read."""
    part = (
        session.get(ApplicationPart, resource.id) if resource.type == ResourceType.APPLICATION_PART else None
    )
    application_id = part.application_id if part is not None else resource.id
    session.execute(
        update(Application)
        .where(Application.id == application_id)
        .values(updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return session.get_one(Application, application_id), part


def _apply_and_record(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    user_id: int | None,
    application: Application,
    part: ApplicationPart | None,
    move: Move,
    comment: str,
    clock: Clock,
) -> None:
    """Apply the move, issue or end grants, and audit it in the same transaction; commits."""
    now = clock.now()
    source = application.state
    application.state = move.target
    if move.event is Event.SUBMIT:
        application.submitted_at = now
    if part is not None and move.part_target is not None:
        part.state = move.part_target
        if move.event in DECISIONS:
            part.decided_by_id, part.decided_at, part.comment = user_id, now, comment
    elif part is not None and move.event is Event.APPROVE:  # the first of two approvals
        part.first_approved_by_id, part.first_approved_at = user_id, now
    if move.event is Event.REVOKE and part is None:
        for each in application.parts:
            if each.state is P.APPROVED:
                each.state = P.REVOKED
    if move.target in FINAL_STATES:
        application.closed_at, application.closed_by, application.close_reason = now, actor.name, comment
    grants = _issue_grants(application, now) if move.target is S.APPROVED else []
    session.add_all(grants)
    ended = 0
    if move.target in (S.WITHDRAWN, S.REVOKED):
        ended = end_grants(session, application.id, actor.name, comment or str(move.event), clock)
    session.flush()
    details: dict[str, object] = {
        "application_id": application.id,
        "from": str(source),
        "to": str(move.target),
    }
    if part is not None:
        details |= {"part_id": part.id, "department": part.department.name, "part_to": str(move.part_target)}
        if move.event is Event.APPROVE and (
            move.part_target is None or part.first_approved_by_id is not None
        ):
            details["approval"] = "first of two" if move.part_target is None else "second of two"
    if grants or ended:
        details |= {"grants_issued": [g.id for g in grants], "grants_ended": ended}
    audit.append_in(
        session,
        actor=actor.name,
        action=move.event.audit_action,
        resource=(part or application).label,
        reason=comment,
        terminal=actor.terminal,
        client_addr=actor.client_addr,
        details=details,
    )
    session.commit()


def _issue_grants(application: Application, now: dt.datetime) -> list[Grant]:
    """One grant per dataset of every part, covering exactly the snapshots the application asked for."""
    grants: list[Grant] = []
    for part in application.parts:
        snapshots = sorted((item.snapshot for item in part.items), key=lambda s: s.dataset_id)
        for dataset_id, group in itertools.groupby(snapshots, key=lambda s: s.dataset_id):
            grants.append(
                Grant(
                    application_id=application.id,
                    part_id=part.id,
                    user_id=application.applicant_id,
                    dataset_id=dataset_id,
                    row_level=application.row_level,
                    valid_from=application.use_start,
                    valid_until=application.use_end,
                    issued_at=now,
                    snapshots=list(group),
                )
            )
    return grants


# --- rules ------------------------------------------------------------------------------------------------


def _load(session: Session, resource: Resource) -> tuple[Application | None, ApplicationPart | None]:
    """The application (and part) as stored now: another process may have moved it since it was read."""
    if resource.id is None:
        return None, None
    if resource.type == ResourceType.APPLICATION_PART:
        part = session.get(ApplicationPart, resource.id, populate_existing=True)
        application = part.application if part is not None else None
    else:
        part, application = None, session.get(Application, resource.id, populate_existing=True)
    if application is not None:
        _refresh_parts(session, application.id)
    return application, part


def _refresh_parts(session: Session, application_id: int) -> None:
    stmt = select(ApplicationPart).where(ApplicationPart.application_id == application_id)
    session.scalars(stmt.execution_options(populate_existing=True)).all()


@rule(Action.APPLICATION_CREATE, on=[ResourceType.APPLICATION])
def _may_create(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    if principal.role is Role.ANALYST and resource.id is None:
        return allow("role:analyst", "分析担当は申請できます", "analysts apply for data")
    return deny("deny:role", "申請できるのは分析担当だけです", "only analysts apply for data")


@rule(Action.APPLICATION_EDIT, on=[ResourceType.APPLICATION])
def _may_edit(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    application, _ = _load(session, resource)
    if application is None:
        return deny("deny:not-found", "申請がありません", "no such application")
    context = {"label": application.label, "application_id": application.id}
    if principal.user_id != application.applicant_id:
        return deny(
            "deny:not-applicant",
            "下書きを直せるのは申請者だけです",
            "only the applicant edits a draft",
            **context,
        )
    if application.state is not S.DRAFT:
        return deny(
            "deny:state",
            f"「{STATE_LABELS_JA[application.state]}」の申請は書き直せません（下書きのうちだけです）",
            f"an application can be edited only while it is a draft, not when {application.state}",
            error=InvalidTransition,
            **context,
        )
    return allow("applicant", "申請者の下書きです", "the applicant's own draft", **context)


def ever_submitted(application: Application) -> bool:
    """Whether the applicant has submitted it: a draft, or a draft withdrawn, is still the applicant's own."""
    return application.state not in (S.DRAFT, S.WITHDRAWN) or application.submitted_at is not None


@rule(Action.APPLICATION_READ, on=[ResourceType.APPLICATION])
def _may_read(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    overseer = principal.role in (Role.ADMIN, Role.AUDITOR)
    if resource.id is None:  # the list of every application
        if overseer:
            return allow(
                f"role:{principal.role}", "全件を閲覧できます", f"{principal.role}s see every application"
            )
        return deny(
            "deny:role",
            "全件の閲覧は基盤管理者と監査担当だけです",
            "only admins and auditors list every application",
        )
    application, _ = _load(session, resource)
    if application is None:
        return deny("deny:not-found", "申請がありません", "no such application")
    label, app_id = application.label, application.id
    if overseer:
        return allow(
            f"role:{principal.role}",
            "閲覧できます",
            f"{principal.role}s see every application",
            label=label,
            application_id=app_id,
        )
    if principal.user_id == application.applicant_id:
        return allow("applicant", "本人の申請です", "the applicant", label=label, application_id=app_id)
    departments = {p.department_id for p in application.parts}
    if principal.role is Role.STEWARD and principal.department_id in departments:
        if not ever_submitted(application):
            return deny(
                "deny:not-submitted",
                "提出前の申請は、所管課のデータ管理者も閲覧できません",
                "an application is the applicant's own until it is submitted",
                label=label,
                application_id=app_id,
            )
        return allow(
            "owning-steward",
            "所管課のデータ管理者です",
            "a steward of an owning department",
            label=label,
            application_id=app_id,
        )
    return deny(
        "deny:not-involved",
        "この申請は閲覧できません",
        "not involved in this application",
        label=label,
        application_id=app_id,
    )


@rule(*EVENT_ACTION.values(), on=[ResourceType.APPLICATION, ResourceType.APPLICATION_PART])
def _may_move(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    application, part = _load(session, resource)
    if application is None:
        return deny("deny:not-found", "申請がありません", "no such application")
    context = {"label": (part or application).label, "application_id": application.id}
    parties = parties_of(principal, application, part)
    event = ACTION_EVENT[action]
    try:
        check_move(
            event,
            application,
            part,
            parties,
            second_approval=needs_second_approval(session, application, part),
        )
    except InvalidTransition as exc:
        return deny("deny:state", exc.ja, exc.en, error=InvalidTransition, **context)
    except SeparationOfDuties as exc:
        return deny("deny:separation-of-duties", exc.ja, exc.en, error=SeparationOfDuties, **context)
    except Forbidden as exc:
        return deny("deny:party", exc.ja, exc.en, **context)
    party = min(parties & EVENT_PARTIES[event])
    return allow(
        f"workflow:{party}", f"{PARTY_LABELS_JA[party]}の操作です", f"{event} by the {party}", **context
    )
