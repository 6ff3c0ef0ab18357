"""What the portal does, shared by the JSON API and the pages: the hub's services, for the request's caller.

Each function hands the :class:`Caller` that a route guard built to one function of :mod:`renkei.hub.services`
(which asks ``authorize()`` and runs the queries) and turns its read model into the web's view, which keeps
only the fields the portal shows (:mod:`renkei.web.models`). The login steps go to the hub's
:class:`~renkei.hub.access.login.LoginService`. A decision that names a missing object is the services'
``NotFoundError``, a 404.

The functions block (database, argon2): routes are plain ``def`` functions, which FastAPI runs in threads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from renkei.hub.access.applications import ApplicationForm, DatasetRequest
from renkei.hub.access.cards import RegistrationStart
from renkei.hub.access.login import LoginFailedError, PendingLogin
from renkei.hub.access.sessions import LoginSession
from renkei.hub.access.step_up import StepUpStart, fresh_until, is_fresh
from renkei.hub.catalog import Department
from renkei.hub.services import admin, applications, audit, catalog, grants, inspection
from renkei.hub.services.applications import AvailableSteps, Step
from renkei.web.context import Caller
from renkei.web.errors import CurrentPasswordWrongError
from renkei.web.models import (
    ApplicationIn,
    ApplicationView,
    AuditRowView,
    DatasetSummary,
    DatasetView,
    FolderAclView,
    GrantView,
    MeView,
    ReviewItem,
)

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


# The login steps get the terminal the certificate names even when it is revoked: LoginService refuses every
# inactive terminal itself, and names it in the audit entry of the refusal.


def begin_login(caller: Caller, login_id: str, password: str) -> PendingLogin:
    return caller.portal.login.begin_login(
        caller.certificate_terminal, login_id, password, caller.client_addr
    )


def finish_login_with_card(
    caller: Caller, pending_token: str, assertion: str | dict[str, Any]
) -> LoginSession:
    return caller.portal.login.finish_login_with_card(
        pending_token, assertion, terminal=caller.certificate_terminal, replaces=caller.session_token or None
    )


def finish_login_with_totp(caller: Caller, pending_token: str, code: str) -> LoginSession:
    return caller.portal.login.finish_login_with_totp(
        pending_token, code, terminal=caller.certificate_terminal, replaces=caller.session_token or None
    )


def logout(caller: Caller) -> None:
    if caller.login is not None:  # its workspace goes with it (one that lost its session is swept later)
        caller.portal.workspaces.close_session(str(caller.login.id), "logged out")
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
        caller.certificate_terminal, login_id, password, ticket, caller.client_addr
    )


def finish_enrollment(caller: Caller, handle: str, response: str | dict[str, Any]) -> dt.datetime:
    card = caller.portal.login.finish_card_enrollment(
        handle, response, terminal=caller.certificate_terminal, client_addr=caller.client_addr
    )
    return card.registered_at


# --- step-up (the second factor again, before an approval or an export) -----------------------------------


def step_up_fresh(caller: Caller) -> bool:
    """Whether the caller's session may approve or export now without proving the factor again."""
    return is_fresh(caller.signed_in, caller.clock.now(), caller.portal.step_up_window)


def step_up_until(caller: Caller) -> dt.datetime | None:
    return fresh_until(caller.signed_in, caller.portal.step_up_window)


def begin_step_up(caller: Caller) -> StepUpStart:
    return caller.portal.step_up.begin(caller.signed_in)


def step_up_with_card(caller: Caller, assertion: str | dict[str, Any]) -> dt.datetime:
    proved = caller.portal.step_up.with_card(caller.signed_in, assertion, client_addr=caller.client_addr)
    return proved + caller.portal.step_up_window


def step_up_with_totp(caller: Caller, code: str) -> dt.datetime:
    proved = caller.portal.step_up.with_totp(caller.signed_in, code, client_addr=caller.client_addr)
    return proved + caller.portal.step_up_window


# --- catalog ------------------------------------------------------------------------------------------------


def list_datasets(caller: Caller) -> list[DatasetSummary]:
    found = catalog.list_datasets(caller.hub, caller.actor, clock=caller.clock)
    return [DatasetSummary.model_validate(d) for d in found]


def dataset_detail(caller: Caller, name: str) -> DatasetView:
    return DatasetView.model_validate(
        catalog.dataset_detail(caller.hub, caller.actor, name, clock=caller.clock)
    )


# --- applications -------------------------------------------------------------------------------------------


def create_application(caller: Caller, body: ApplicationIn) -> ApplicationView:
    created = applications.create_application(
        caller.hub,
        caller.actor,
        _form(body),
        clock=caller.clock,
    )
    return ApplicationView.model_validate(created)


def draft_for_editing(caller: Caller, application_id: int) -> tuple[ApplicationView, set[str]]:
    """The draft and its chosen periods as the form's ``"<dataset>:<YYYY-MM-DD>"`` values."""
    shown, chosen = applications.draft_for_editing(
        caller.hub, caller.actor, application_id, clock=caller.clock
    )
    return ApplicationView.model_validate(shown), {f"{name}:{period.isoformat()}" for name, period in chosen}


def edit_draft(caller: Caller, application_id: int, body: ApplicationIn) -> ApplicationView:
    edited = applications.edit_draft(
        caller.hub,
        caller.actor,
        application_id,
        _form(body),
        clock=caller.clock,
    )
    return ApplicationView.model_validate(edited)


def _form(body: ApplicationIn) -> ApplicationForm:
    return ApplicationForm(
        purpose=body.purpose,
        outputs=body.outputs,
        use_start=body.use_start,
        use_end=body.use_end,
        row_level=body.row_level,
        requests=[DatasetRequest(r.dataset, tuple(r.periods), r.all_periods) for r in body.datasets],
    )


def show_application(caller: Caller, application_id: int) -> ApplicationView:
    shown = applications.show_application(caller.hub, caller.actor, application_id, clock=caller.clock)
    return ApplicationView.model_validate(shown)


def application_page(caller: Caller, application_id: int) -> tuple[ApplicationView, AvailableSteps]:
    shown, steps = applications.application_page(caller.hub, caller.actor, application_id, clock=caller.clock)
    return ApplicationView.model_validate(shown), steps


def all_applications(caller: Caller, *, open_for_review: bool = False) -> list[ApplicationView]:
    """Every application (or those open for review), newest first (admins and auditors; one decision)."""
    found = applications.list_applications(
        caller.hub, caller.actor, clock=caller.clock, open_for_review=open_for_review
    )
    return [ApplicationView.model_validate(a) for a in reversed(found)]


def my_applications(caller: Caller) -> list[ApplicationView]:
    mine = applications.my_applications(caller.hub, caller.actor, clock=caller.clock)
    return [ApplicationView.model_validate(a) for a in mine]


def review_queue(caller: Caller) -> list[ReviewItem]:
    queue = applications.review_queue(caller.hub, caller.actor, clock=caller.clock)
    return [ReviewItem.model_validate(entry) for entry in queue]


def take_step(caller: Caller, step: Step, target_id: int, text: str = "") -> ApplicationView:
    """One button of the workflow (submit, withdraw, revoke; approve, reject or revoke a part)."""
    moved = applications.take_step(caller.hub, caller.actor, step, target_id, text, clock=caller.clock)
    return ApplicationView.model_validate(moved)


# --- grants -------------------------------------------------------------------------------------------------


def my_grants(caller: Caller) -> list[GrantView]:
    return [
        GrantView.model_validate(g) for g in grants.my_grants(caller.hub, caller.actor, clock=caller.clock)
    ]


def all_grants(caller: Caller) -> list[GrantView]:
    """Every grant, newest first (admins and auditors; one decision on the resource type)."""
    found = grants.list_grants(caller.hub, caller.actor, clock=caller.clock)
    return [GrantView.model_validate(g) for g in reversed(found)]


def show_grant(caller: Caller, grant_id: int) -> GrantView:
    return GrantView.model_validate(grants.show_grant(caller.hub, caller.actor, grant_id, clock=caller.clock))


def revoke(caller: Caller, grant_id: int, reason: str) -> GrantView:
    revoked = grants.revoke(caller.hub, caller.actor, grant_id, reason, clock=caller.clock)
    return GrantView.model_validate(revoked)


def dataset_acl(caller: Caller, name: str) -> FolderAclView:
    return FolderAclView.model_validate(
        grants.dataset_acl(caller.hub, caller.actor, name, clock=caller.clock)
    )


def department_acls(caller: Caller) -> list[FolderAclView]:
    """The access lists of the datasets the steward's department owns (for the grants page)."""
    acls = grants.department_acls(caller.hub, caller.actor, clock=caller.clock)
    return [FolderAclView.model_validate(acl) for acl in acls]


# --- the audit log ------------------------------------------------------------------------------------------


def search_audit(caller: Caller, search: audit.AuditSearch) -> list[AuditRowView]:
    found = audit.search_audit(caller.hub, caller.actor, search, clock=caller.clock)
    return [AuditRowView.model_validate(row) for row in found]


# --- administration (admins) and the monthly inspection (auditors, admins) ----------------------------------
# The admin pages show the hub's own read models (renkei.hub.services.admin): names, dates and counts, never a
# secret; the secrets a change creates (a ticket, an initial password, a bundle password) are shown once.


def admin_call(caller: Caller, name: str, *args: Any, **kwargs: Any) -> Any:
    """``renkei.hub.services.admin.<name>`` for the caller: the same function the CLI calls."""
    function = getattr(admin, name)
    return function(caller.hub, caller.actor, *args, clock=caller.clock, **kwargs)


def monthly_inspection(caller: Caller, month: dt.date, *, full: bool = True) -> inspection.InspectionReport:
    """``full=False`` for the page: the log verified since the last full verification (the PDF: in full)."""
    return inspection.monthly_inspection(
        caller.hub, caller.actor, month, clock=caller.clock, full_verification=full
    )
