"""What the portal does, shared by the JSON API and the pages; every decision goes through ``authorize()``.

Each function takes the :class:`Caller` that a route guard built, opens its own database session, asks
:mod:`renkei.hub.access.authz` (directly, or through the workflow functions of ``applications``/``grants``,
which call it themselves) and returns views. Lists of objects (own applications, own grants, the review
queue) are filtered object by object through the same choke point, so each listed object is an audited
decision and nothing is shown that a direct request would refuse. A decision that names a missing object
becomes 404; that is only ever said to a designated user, because authorize() checks the user first.

The functions block (database, argon2): routes are plain ``def`` functions, which FastAPI runs in threads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from renkei.hub.access import applications as workflow
from renkei.hub.access.applications import (
    PART_LABELS_JA,
    STATE_LABELS_JA,
    Application,
    ApplicationPart,
    ApplicationState,
    DatasetRequest,
    Event,
    PartState,
    check_move,
    effective_state,
    parties_of,
)
from renkei.hub.access.authz import (
    Action,
    Decision,
    Forbidden,
    Resource,
    ResourceType,
    authorize,
    resolve_principal,
)
from renkei.hub.access.cards import RegistrationStart
from renkei.hub.access.grants import Grant, city_today, folder_acl, revoke_grant
from renkei.hub.access.login import LoginFailedError, PendingLogin
from renkei.hub.access.people import Role
from renkei.hub.access.sessions import LoginSession
from renkei.hub.catalog import Dataset, Department, Snapshot
from renkei.web.context import Caller
from renkei.web.errors import CurrentPasswordWrongError, NotFoundError
from renkei.web.models import (
    AclEntryView,
    ApplicationIn,
    ApplicationView,
    ColumnView,
    DatasetSummary,
    DatasetView,
    FolderAclView,
    GrantView,
    MeView,
    PartView,
    ReviewItem,
    SnapshotView,
)

NOT_FOUND_POLICY = "deny:not-found"
MAX_LISTED = 100  # newest first; each listed object is one audited decision
OPEN_FOR_REVIEW = (ApplicationState.SUBMITTED, ApplicationState.PARTIALLY_APPROVED)


# --- decisions ----------------------------------------------------------------------------------------------


def require(db: Session, caller: Caller, action: Action, resource: Resource) -> Decision:
    """authorize(), raising the verdict's error when denied (NotFoundError when the object does not exist)."""
    portal = caller.portal
    decision = authorize(db, portal.hub.audit, caller.actor, action, resource, clock=portal.clock)
    verdict = decision.verdict
    if not verdict.allowed:
        if verdict.policy == NOT_FOUND_POLICY:
            raise NotFoundError()
        raise verdict.error(verdict.reason_ja, verdict.reason_en, decision)
    return decision


def allowed(db: Session, caller: Caller, action: Action, resource: Resource) -> bool:
    portal = caller.portal
    return authorize(db, portal.hub.audit, caller.actor, action, resource, clock=portal.clock).allowed


@contextmanager
def not_found_as_404() -> Iterator[None]:
    """For workflow functions that call check() themselves: a refusal for a missing object is a 404."""
    try:
        yield
    except Forbidden as exc:
        if exc.decision is not None and exc.decision.verdict.policy == NOT_FOUND_POLICY:
            raise NotFoundError() from None
        raise


def application_resource(application_id: int) -> Resource:
    return Resource(ResourceType.APPLICATION.value, application_id, f"application/{application_id}")


def part_resource(part_id: int) -> Resource:
    return Resource.of(ResourceType.APPLICATION_PART, part_id)


def grant_resource(grant_id: int) -> Resource:
    return Resource.of(ResourceType.GRANT, grant_id)


# --- the session --------------------------------------------------------------------------------------------


def me(caller: Caller, login: LoginSession | None = None) -> MeView:
    """The signed-in user (or ``login``, a session opened by this very request)."""
    login = login or caller.signed_in
    with caller.portal.db() as db:
        department = db.get(Department, login.department_id)
    return MeView(
        login_id=login.login_id,
        display_name=login.display_name,
        role=str(login.role),
        department=department.name if department is not None else "",
        terminal=login.terminal_name,
        session_expires_at=login.expires_at,
        password_change_required=login.password_change_required,
        csrf_token=login.csrf_token,
    )


def begin_login(caller: Caller, login_id: str, password: str) -> PendingLogin:
    return caller.portal.login.begin_login(caller.terminal, login_id, password, caller.client_addr)


def finish_login_with_card(
    caller: Caller, pending_token: str, assertion: str | dict[str, Any]
) -> LoginSession:
    return caller.portal.login.finish_login_with_card(
        pending_token, assertion, terminal=caller.terminal, replaces=caller.session_token or None
    )


def finish_login_with_totp(caller: Caller, pending_token: str, code: str) -> LoginSession:
    return caller.portal.login.finish_login_with_totp(
        pending_token, code, terminal=caller.terminal, replaces=caller.session_token or None
    )


def logout(caller: Caller) -> None:
    if caller.session_token:
        caller.portal.login.logout(
            caller.session_token, terminal=caller.terminal, client_addr=caller.client_addr
        )


def change_password(caller: Caller, current: str, new: str) -> LoginSession:
    try:
        return caller.portal.login.change_password(
            caller.session_token, current, new, terminal=caller.terminal, client_addr=caller.client_addr
        )
    except LoginFailedError:
        raise CurrentPasswordWrongError() from None


def begin_enrollment(caller: Caller, login_id: str, password: str, ticket: str) -> RegistrationStart:
    return caller.portal.login.begin_card_enrollment(
        caller.terminal, login_id, password, ticket, caller.client_addr
    )


def finish_enrollment(caller: Caller, handle: str, response: str | dict[str, Any]) -> dt.datetime:
    card = caller.portal.login.finish_card_enrollment(
        handle, response, terminal=caller.terminal, client_addr=caller.client_addr
    )
    return card.registered_at


# --- catalog ------------------------------------------------------------------------------------------------


def list_datasets(caller: Caller) -> list[DatasetSummary]:
    with caller.portal.db() as db:
        require(db, caller, Action.CATALOG_READ, Resource.of(ResourceType.CATALOG))
        datasets = db.scalars(
            select(Dataset)
            .options(selectinload(Dataset.owner), selectinload(Dataset.snapshots))
            .order_by(Dataset.name)
        )
        return [
            DatasetSummary(
                name=d.name,
                title=d.title,
                owner=d.owner.name,
                periods=sorted({s.period for s in d.snapshots}),
            )
            for d in datasets
        ]


def dataset_detail(caller: Caller, name: str) -> DatasetView:
    with caller.portal.db() as db:
        dataset = _dataset_named(db, name)
        require(db, caller, Action.CATALOG_READ, _dataset_resource(dataset, name))
        assert dataset is not None  # a missing dataset was refused as not found
        snapshots = db.scalars(
            select(Snapshot)
            .where(Snapshot.dataset_id == dataset.id)
            .order_by(Snapshot.period, Snapshot.version)
        )
        return DatasetView(
            name=dataset.name,
            title=dataset.title,
            description=dataset.description,
            owner=dataset.owner.name,
            snapshots=[
                SnapshotView(period=s.period, version=s.version, imported_at=s.imported_at) for s in snapshots
            ],
            columns=[ColumnView.model_validate(c) for c in dataset.columns],
        )


def _dataset_named(db: Session, name: str) -> Dataset | None:
    return db.scalar(select(Dataset).where(Dataset.name == name))


def _dataset_resource(dataset: Dataset | None, name: str) -> Resource:
    if dataset is not None:
        return Resource.dataset(dataset)
    return Resource(ResourceType.DATASET.value, None, f"dataset/{name[:63]}")


# --- applications -------------------------------------------------------------------------------------------


def create_application(caller: Caller, body: ApplicationIn) -> ApplicationView:
    requests = [DatasetRequest(r.dataset, tuple(r.periods), r.all_periods) for r in body.datasets]
    portal = caller.portal
    with portal.db() as db:
        application = workflow.create_application(
            db,
            portal.hub.audit,
            caller.actor,
            purpose=body.purpose,
            outputs=body.outputs,
            use_start=body.use_start,
            use_end=body.use_end,
            row_level=body.row_level,
            requests=requests,
            clock=portal.clock,
        )
        return application_view(application, caller)


def show_application(caller: Caller, application_id: int) -> ApplicationView:
    with caller.portal.db() as db:
        require(db, caller, Action.APPLICATION_READ, application_resource(application_id))
        return application_view(db.get_one(Application, application_id), caller)


@dataclass(frozen=True)
class Moves:
    """Which buttons a page shows: the workflow's own rules, asked without recording a decision.

    Only a hint; the decision is taken (and recorded) when the button is pressed.
    """

    submit: bool = False
    withdraw: bool = False
    revoke: bool = False
    approve: frozenset[int] = field(default_factory=frozenset)  # part ids
    reject: frozenset[int] = field(default_factory=frozenset)
    revoke_parts: frozenset[int] = field(default_factory=frozenset)


def application_page(caller: Caller, application_id: int) -> tuple[ApplicationView, Moves]:
    with caller.portal.db() as db:
        require(db, caller, Action.APPLICATION_READ, application_resource(application_id))
        application = db.get_one(Application, application_id)
        return application_view(application, caller), _moves(db, caller, application)


def _moves(db: Session, caller: Caller, application: Application) -> Moves:
    principal = resolve_principal(db, caller.actor)
    if principal is None:
        return Moves()

    def can(event: Event, part: ApplicationPart | None) -> bool:
        try:
            check_move(event, application, part, parties_of(principal, application, part))
        except Forbidden:
            return False
        return True

    def parts(event: Event) -> frozenset[int]:
        return frozenset(p.id for p in application.parts if can(event, p))

    return Moves(
        submit=can(Event.SUBMIT, None),
        withdraw=can(Event.WITHDRAW, None),
        revoke=can(Event.REVOKE, None),
        approve=parts(Event.APPROVE),
        reject=parts(Event.REJECT),
        revoke_parts=parts(Event.REVOKE),
    )


def my_applications(caller: Caller) -> list[ApplicationView]:
    login = caller.signed_in
    with caller.portal.db() as db:
        ids = db.scalars(
            select(Application.id)
            .where(Application.applicant_id == login.user_id)
            .order_by(Application.id.desc())
            .limit(MAX_LISTED)
        ).all()
        visible = [i for i in ids if allowed(db, caller, Action.APPLICATION_READ, application_resource(i))]
        return [application_view(a, caller) for a in _applications(db, visible)]


def review_queue(caller: Caller) -> list[ReviewItem]:
    """Parts of the steward's department that await a decision they may take (never their own application)."""
    login = caller.signed_in
    if login.role is not Role.STEWARD:  # only a candidate list; authorize() decides below
        return []
    with caller.portal.db() as db:
        part_ids = db.scalars(
            select(ApplicationPart.id)
            .join(Application, Application.id == ApplicationPart.application_id)
            .where(
                ApplicationPart.state == PartState.PENDING,
                ApplicationPart.department_id == login.department_id,
                Application.state.in_(OPEN_FOR_REVIEW),
                Application.applicant_id != login.user_id,
            )
            .order_by(ApplicationPart.id)
            .limit(MAX_LISTED)
        ).all()
        mine = [p for p in part_ids if allowed(db, caller, Action.APPLICATION_APPROVE, part_resource(p))]
        items = []
        for part_id in mine:
            part = db.get_one(ApplicationPart, part_id)
            items.append(
                ReviewItem(
                    part_id=part.id,
                    department=part.department.name,
                    application=application_view(part.application, caller),
                )
            )
        return items


def submit(caller: Caller, application_id: int) -> ApplicationView:
    portal = caller.portal
    with portal.db() as db, not_found_as_404():
        application = workflow.submit(db, portal.hub.audit, caller.actor, application_id, clock=portal.clock)
        return application_view(application, caller)


def withdraw(caller: Caller, application_id: int, reason: str) -> ApplicationView:
    portal = caller.portal
    with portal.db() as db, not_found_as_404():
        application = workflow.withdraw(
            db, portal.hub.audit, caller.actor, application_id, reason=reason, clock=portal.clock
        )
        return application_view(application, caller)


def revoke_application(caller: Caller, application_id: int, reason: str) -> ApplicationView:
    portal = caller.portal
    with portal.db() as db, not_found_as_404():
        application = workflow.revoke_application(
            db, portal.hub.audit, caller.actor, application_id, reason=reason, clock=portal.clock
        )
        return application_view(application, caller)


def approve_part(caller: Caller, part_id: int, comment: str) -> ApplicationView:
    portal = caller.portal
    with portal.db() as db, not_found_as_404():
        application = workflow.approve_part(
            db, portal.hub.audit, caller.actor, part_id, comment=comment, clock=portal.clock
        )
        return application_view(application, caller)


def reject_part(caller: Caller, part_id: int, comment: str) -> ApplicationView:
    portal = caller.portal
    with portal.db() as db, not_found_as_404():
        application = workflow.reject_part(
            db, portal.hub.audit, caller.actor, part_id, comment=comment, clock=portal.clock
        )
        return application_view(application, caller)


def revoke_part(caller: Caller, part_id: int, reason: str) -> ApplicationView:
    portal = caller.portal
    with portal.db() as db, not_found_as_404():
        application = workflow.revoke_part(
            db, portal.hub.audit, caller.actor, part_id, reason=reason, clock=portal.clock
        )
        return application_view(application, caller)


def _applications(db: Session, ids: Sequence[int]) -> list[Application]:
    if not ids:
        return []
    loaded = db.scalars(
        select(Application)
        .where(Application.id.in_(ids))
        .options(
            selectinload(Application.applicant),
            selectinload(Application.parts).selectinload(ApplicationPart.department),
            selectinload(Application.parts).selectinload(ApplicationPart.decided_by),
            selectinload(Application.parts)
            .selectinload(ApplicationPart.items)
            .selectinload(workflow.ApplicationItem.snapshot)
            .selectinload(Snapshot.dataset),
        )
        .order_by(Application.id.desc())
    )
    return list(loaded)


def application_view(application: Application, caller: Caller) -> ApplicationView:
    state = effective_state(application, caller.portal.clock)
    return ApplicationView(
        id=application.id,
        applicant=application.applicant.login_id,
        applicant_name=application.applicant.display_name,
        state=str(state),
        state_label_ja=STATE_LABELS_JA[state],
        purpose=application.purpose,
        outputs=application.outputs,
        use_start=application.use_start,
        use_end=application.use_end,
        row_level=application.row_level,
        applied_on=application.applied_on,
        submitted_at=application.submitted_at,
        closed_at=application.closed_at,
        close_reason=application.close_reason,
        parts=[_part_view(p) for p in application.parts],
    )


def _part_view(part: ApplicationPart) -> PartView:
    return PartView(
        id=part.id,
        department=part.department.name,
        state=str(part.state),
        state_label_ja=PART_LABELS_JA[part.state],
        decided_by=part.decided_by.login_id if part.decided_by is not None else None,
        decided_at=part.decided_at,
        comment=part.comment,
        snapshots=[_snapshot_label(item.snapshot) for item in part.items],
    )


def _snapshot_label(snapshot: Snapshot) -> str:
    return f"{snapshot.dataset.name} {snapshot.period.isoformat()} v{snapshot.version}"


# --- grants -------------------------------------------------------------------------------------------------


def my_grants(caller: Caller) -> list[GrantView]:
    login = caller.signed_in
    with caller.portal.db() as db:
        ids = db.scalars(
            select(Grant.id).where(Grant.user_id == login.user_id).order_by(Grant.id.desc()).limit(MAX_LISTED)
        ).all()
        visible = [i for i in ids if allowed(db, caller, Action.GRANT_READ, grant_resource(i))]
        grants = db.scalars(
            select(Grant)
            .where(Grant.id.in_(visible))
            .options(selectinload(Grant.snapshots), selectinload(Grant.dataset), selectinload(Grant.user))
            .order_by(Grant.id.desc())
        )
        return [grant_view(g, caller) for g in grants]


def show_grant(caller: Caller, grant_id: int) -> GrantView:
    with caller.portal.db() as db:
        require(db, caller, Action.GRANT_READ, grant_resource(grant_id))
        return grant_view(db.get_one(Grant, grant_id), caller)


def revoke(caller: Caller, grant_id: int, reason: str) -> GrantView:
    portal = caller.portal
    with portal.db() as db, not_found_as_404():
        grant = revoke_grant(db, portal.hub.audit, caller.actor, grant_id, reason=reason, clock=portal.clock)
        return grant_view(grant, caller)


def grant_view(grant: Grant, caller: Caller) -> GrantView:
    return GrantView(
        id=grant.id,
        application_id=grant.application_id,
        dataset=grant.dataset.name,
        holder=grant.user.login_id,
        row_level=grant.row_level,
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        status=str(grant.status(city_today(caller.portal.clock))),
        snapshots=[f"{s.period.isoformat()} v{s.version}" for s in grant.snapshots],
        revoked_at=grant.revoked_at,
        revoke_reason=grant.revoke_reason,
    )


def dataset_acl(caller: Caller, name: str) -> FolderAclView:
    with caller.portal.db() as db:
        dataset = _dataset_named(db, name)
        require(db, caller, Action.FOLDER_READ_ACL, _dataset_resource(dataset, name))
        assert dataset is not None
        return _acl_view(db, dataset, caller)


def department_acls(caller: Caller) -> list[FolderAclView]:
    """The access lists of the datasets the steward's department owns (for the grants page)."""
    login = caller.signed_in
    if login.role is not Role.STEWARD:
        return []
    with caller.portal.db() as db:
        datasets = db.scalars(
            select(Dataset).where(Dataset.owner_id == login.department_id).order_by(Dataset.name)
        ).all()
        return [
            _acl_view(db, d, caller)
            for d in datasets
            if allowed(db, caller, Action.FOLDER_READ_ACL, Resource.dataset(d))
        ]


def _acl_view(db: Session, dataset: Dataset, caller: Caller) -> FolderAclView:
    acl = folder_acl(db, dataset, caller.portal.clock)
    return FolderAclView(
        dataset=acl.dataset,
        owner=acl.owner,
        stewards=list(acl.stewards),
        readers=[
            AclEntryView(
                grant_id=r.grant_id,
                login_id=r.login_id,
                display_name=r.display_name,
                row_level=r.row_level,
                valid_from=r.valid_from,
                valid_until=r.valid_until,
                snapshots=list(r.snapshots),
            )
            for r in acl.readers
        ],
    )
