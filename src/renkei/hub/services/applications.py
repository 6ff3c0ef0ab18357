"""Data-use applications as the faces show and move them: read models, the review queue, one entry for moves.

The workflow itself (states, who may move what, the lock, the audit entry) is
:mod:`renkei.hub.access.applications`; this module loads what a face shows and hands each button to it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, object_session, selectinload

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access import applications as workflow
from renkei.hub.access.applications import (
    PART_LABELS_JA,
    STATE_LABELS_JA,
    Application,
    ApplicationForm,
    ApplicationItem,
    ApplicationPart,
    ApplicationState,
    Event,
    PartState,
    check_move,
    effective_state,
    needs_second_approval,
    parties_of,
)
from renkei.hub.access.authz import Action, Actor, Forbidden, Resource, ResourceType, resolve_principal
from renkei.hub.access.grants import Grant
from renkei.hub.access.people import Role, User
from renkei.hub.catalog import Snapshot
from renkei.hub.home import Hub
from renkei.hub.services.catalog import departments_with_steward
from renkei.hub.services.decisions import missing_as_not_found, permitted, require
from renkei.hub.services.grants import GrantDetail, grant_detail

MAX_LISTED = 100  # newest first; each listed object is decided, all in one audit entry
OPEN_FOR_REVIEW = (ApplicationState.SUBMITTED, ApplicationState.PARTIALLY_APPROVED)


@dataclass(frozen=True, slots=True)
class PartDetail:
    """One owning department's part: its decision and the snapshots it covers."""

    id: int
    department: str
    state: PartState
    state_label_ja: str
    decided_by: str | None
    decided_at: dt.datetime | None
    comment: str
    snapshots: tuple[str, ...]  # "juki 2026-03-31 v1"
    department_has_steward: bool  # False: nobody can decide this part
    second_approval: bool = False  # row-level over a flagged snapshot: two stewards approve (docs/risk.md)
    first_approved_by: str | None = None  # who gave the first of the two


@dataclass(frozen=True, slots=True)
class ApplicationDetail:
    id: int
    applicant: str  # login id
    applicant_name: str
    state: ApplicationState  # effective: an approved application past its period of use shows as expired
    state_label_ja: str
    purpose: str
    outputs: str
    use_start: dt.date
    use_end: dt.date
    row_level: bool
    applied_on: dt.date
    submitted_at: dt.datetime | None
    closed_at: dt.datetime | None
    closed_by: str
    close_reason: str
    parts: tuple[PartDetail, ...]


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    """A part awaiting the steward's decision, with the whole application it belongs to."""

    part_id: int
    department: str
    application: ApplicationDetail


@dataclass(frozen=True, slots=True)
class AvailableSteps:
    """Which buttons a page shows: the workflow's own rules, asked without recording a decision.

    Only a hint; the decision is taken (and recorded) when the button is pressed.
    """

    edit: bool = False
    submit: bool = False
    withdraw: bool = False
    revoke: bool = False
    approve: frozenset[int] = field(default_factory=frozenset)  # part ids
    reject: frozenset[int] = field(default_factory=frozenset)
    revoke_parts: frozenset[int] = field(default_factory=frozenset)


class Step(enum.StrEnum):
    """A button of the workflow; the ``…_PART`` steps act on one department's part, the others on the whole."""

    SUBMIT = "submit"
    WITHDRAW = "withdraw"  # the applicant; an optional reason
    REVOKE = "revoke"  # an admin revokes the whole application; a reason is required
    APPROVE_PART = "approve_part"  # an optional comment
    REJECT_PART = "reject_part"  # the comment (the reason) is required
    REVOKE_PART = "revoke_part"  # a reason is required


# Each step's workflow function, and the keyword its text goes to (None: it takes no text).
_STEPS: dict[Step, tuple[Callable[..., Application], str | None]] = {
    Step.SUBMIT: (workflow.submit, None),
    Step.WITHDRAW: (workflow.withdraw, "reason"),
    Step.REVOKE: (workflow.revoke_application, "reason"),
    Step.APPROVE_PART: (workflow.approve_part, "comment"),
    Step.REJECT_PART: (workflow.reject_part, "comment"),
    Step.REVOKE_PART: (workflow.revoke_part, "reason"),
}


# --- reading ------------------------------------------------------------------------------------------------


def show_application(
    hub: Hub, actor: Actor, application_id: int, *, clock: Clock = SYSTEM_CLOCK
) -> ApplicationDetail:
    with hub.session() as db:
        require(db, hub, actor, Action.APPLICATION_READ, application_resource(application_id), clock)
        return application_detail(db.get_one(Application, application_id), clock)


def application_page(
    hub: Hub, actor: Actor, application_id: int, *, clock: Clock = SYSTEM_CLOCK
) -> tuple[ApplicationDetail, AvailableSteps]:
    """The application and the steps the actor could take on it now."""
    with hub.session() as db:
        require(db, hub, actor, Action.APPLICATION_READ, application_resource(application_id), clock)
        application = db.get_one(Application, application_id)
        return application_detail(application, clock), _available_steps(db, actor, application)


def application_with_grants(
    hub: Hub, actor: Actor, application_id: int, *, clock: Clock = SYSTEM_CLOCK
) -> tuple[ApplicationDetail, list[GrantDetail]]:
    """The application and the grants it issued (the operator's view)."""
    with hub.session() as db:
        require(db, hub, actor, Action.APPLICATION_READ, application_resource(application_id), clock)
        application = db.get_one(Application, application_id)
        grants = db.scalars(
            select(Grant).where(Grant.application_id == application_id).order_by(Grant.id)
        ).all()
        return application_detail(application, clock), [grant_detail(g, clock) for g in grants]


def list_applications(
    hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK, open_for_review: bool = False
) -> list[ApplicationDetail]:
    """Every application, oldest first: one decision on the resource type (admins and auditors).

    ``open_for_review``: only those submitted or partially approved (the home page's list; stored and
    effective state agree on these, only an approved one can be shown as expired)."""
    with hub.session() as db:
        require(db, hub, actor, Action.APPLICATION_READ, Resource.of(ResourceType.APPLICATION), clock)
        query = select(Application).order_by(Application.id)
        if open_for_review:
            query = query.where(Application.state.in_(OPEN_FOR_REVIEW))
        applications = db.scalars(_shown(query))
        staffed = departments_with_steward(db)
        return [application_detail(a, clock, staffed) for a in applications]


def my_applications(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[ApplicationDetail]:
    """The actor's own applications, newest first, each one decided (one audit entry for the list)."""
    with hub.session() as db:
        ids = db.scalars(
            select(Application.id)
            .where(Application.applicant_id == actor.user_id)
            .order_by(Application.id.desc())
            .limit(MAX_LISTED)
        ).all()
        visible = permitted(db, hub, actor, Action.APPLICATION_READ, ids, application_resource, clock)
        applications = db.scalars(
            _shown(select(Application).where(Application.id.in_(visible)).order_by(Application.id.desc()))
        )
        staffed = departments_with_steward(db)
        return [application_detail(a, clock, staffed) for a in applications]


def review_queue(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[ReviewEntry]:
    """Parts of the steward's department that await a decision they may take (never their own application)."""
    with hub.session() as db:
        principal = resolve_principal(db, actor)
        if principal is None or principal.role is not Role.STEWARD:  # only candidates; authorize() decides
            return []
        part_ids = db.scalars(
            select(ApplicationPart.id)
            .join(Application, Application.id == ApplicationPart.application_id)
            .where(
                ApplicationPart.state == PartState.PENDING,
                ApplicationPart.department_id == principal.department_id,
                Application.state.in_(OPEN_FOR_REVIEW),
                Application.applicant_id != principal.user_id,
            )
            .order_by(ApplicationPart.id)
            .limit(MAX_LISTED)
        ).all()
        mine = permitted(db, hub, actor, Action.APPLICATION_APPROVE, part_ids, part_resource, clock)
        entries = []
        staffed = departments_with_steward(db)
        for part_id in mine:
            part = db.get_one(ApplicationPart, part_id)
            entries.append(
                ReviewEntry(
                    part.id, part.department.name, application_detail(part.application, clock, staffed)
                )
            )
        return entries


# --- writing ------------------------------------------------------------------------------------------------


def create_application(
    hub: Hub,
    actor: Actor,
    form: ApplicationForm,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> ApplicationDetail:
    """A draft application (analysts); submit it with :data:`Step.SUBMIT`."""
    with hub.session() as db:
        application = workflow.create_application(
            db,
            hub.audit,
            actor,
            form,
            clock=clock,
        )
        return application_detail(application, clock)


def draft_for_editing(
    hub: Hub, actor: Actor, application_id: int, *, clock: Clock = SYSTEM_CLOCK
) -> tuple[ApplicationDetail, frozenset[tuple[str, dt.date]]]:
    """A draft its applicant may rewrite, and the (dataset, period) pairs it asks for now."""
    with hub.session() as db:
        require(db, hub, actor, Action.APPLICATION_EDIT, application_resource(application_id), clock)
        application = db.get_one(Application, application_id)
        chosen = frozenset(
            (item.snapshot.dataset.name, item.snapshot.period)
            for part in application.parts
            for item in part.items
        )
        return application_detail(application, clock), chosen


def edit_draft(
    hub: Hub,
    actor: Actor,
    application_id: int,
    form: ApplicationForm,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> ApplicationDetail:
    """The applicant rewrites their draft (checked as a new application; only while it is a draft)."""
    with hub.session() as db, missing_as_not_found():
        application = workflow.edit_draft(
            db,
            hub.audit,
            actor,
            application_id,
            form,
            clock=clock,
        )
        return application_detail(application, clock)


def take_step(
    hub: Hub, actor: Actor, step: Step, target_id: int, text: str = "", *, clock: Clock = SYSTEM_CLOCK
) -> ApplicationDetail:
    """Press one button: ``target_id`` is the application's id, or the part's for the ``…_PART`` steps.

    ``text`` is the reason or comment (ignored by :data:`Step.SUBMIT`); the workflow decides, re-checks under
    a lock, applies and audits in one transaction.
    """
    function, text_keyword = _STEPS[step]
    texts = {text_keyword: text} if text_keyword is not None else {}
    with hub.session() as db, missing_as_not_found():
        application = function(db, hub.audit, actor, target_id, clock=clock, **texts)
        return application_detail(application, clock)


# --- read models --------------------------------------------------------------------------------------------


def application_resource(application_id: int) -> Resource:
    return Resource(ResourceType.APPLICATION.value, application_id, f"application/{application_id}")


def part_resource(part_id: int) -> Resource:
    return Resource.of(ResourceType.APPLICATION_PART, part_id)


def application_detail(
    application: Application, clock: Clock, staffed: set[int] | None = None
) -> ApplicationDetail:
    """The read model; ``staffed`` (departments_with_steward) once for a list, not one query per application."""
    state = effective_state(application, clock)
    db = object_session_of(application)
    staffed = departments_with_steward(db) if staffed is None else staffed
    return ApplicationDetail(
        id=application.id,
        applicant=application.applicant.login_id,
        applicant_name=application.applicant.display_name,
        state=state,
        state_label_ja=STATE_LABELS_JA[state],
        purpose=application.purpose,
        outputs=application.outputs,
        use_start=application.use_start,
        use_end=application.use_end,
        row_level=application.row_level,
        applied_on=application.applied_on,
        submitted_at=application.submitted_at,
        closed_at=application.closed_at,
        closed_by=application.closed_by,
        close_reason=application.close_reason,
        parts=tuple(
            _part_detail(p, p.department_id in staffed, needs_second_approval(db, application, p))
            for p in application.parts
        ),
    )


def object_session_of(application: Application) -> Session:
    db = object_session(application)
    assert db is not None  # read models are built inside the session that loaded the object
    return db


def _part_detail(part: ApplicationPart, department_has_steward: bool, second_approval: bool) -> PartDetail:
    first = part.first_approved_by_id
    return PartDetail(
        id=part.id,
        department=part.department.name,
        state=part.state,
        state_label_ja=PART_LABELS_JA[part.state],
        decided_by=part.decided_by.login_id if part.decided_by is not None else None,
        decided_at=part.decided_at,
        comment=part.comment,
        snapshots=tuple(_snapshot_label(item.snapshot) for item in part.items),
        department_has_steward=department_has_steward,
        second_approval=second_approval,
        first_approved_by=_login_id(object_session_of(part.application), first)
        if first is not None
        else None,
    )


def _login_id(db: Session, user_id: int) -> str | None:
    user = db.get(User, user_id)
    return user.login_id if user is not None else None


def _snapshot_label(snapshot: Snapshot) -> str:
    return f"{snapshot.dataset.name} {snapshot.period.isoformat()} v{snapshot.version}"


def _shown(query: Select[Application]) -> Select[Application]:
    """Load everything an application's read model shows in a few queries (not one per part or item)."""
    return query.options(
        selectinload(Application.applicant),
        selectinload(Application.parts).selectinload(ApplicationPart.department),
        selectinload(Application.parts).selectinload(ApplicationPart.decided_by),
        selectinload(Application.parts)
        .selectinload(ApplicationPart.items)
        .selectinload(ApplicationItem.snapshot)
        .selectinload(Snapshot.dataset),
    )


def _available_steps(db: Session, actor: Actor, application: Application) -> AvailableSteps:
    principal = resolve_principal(db, actor)
    if principal is None:
        return AvailableSteps()

    def can(event: Event, part: ApplicationPart | None) -> bool:
        try:
            second = needs_second_approval(db, application, part)
            check_move(
                event, application, part, parties_of(principal, application, part), second_approval=second
            )
        except Forbidden:
            return False
        return True

    def parts(event: Event) -> frozenset[int]:
        return frozenset(p.id for p in application.parts if can(event, p))

    return AvailableSteps(
        edit=application.state is ApplicationState.DRAFT and application.applicant_id == principal.user_id,
        submit=can(Event.SUBMIT, None),
        withdraw=can(Event.WITHDRAW, None),
        revoke=can(Event.REVOKE, None),
        approve=parts(Event.APPROVE),
        reject=parts(Event.REJECT),
        revoke_parts=parts(Event.REVOKE),
    )
