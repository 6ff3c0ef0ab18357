"""Application pages: my applications, the application form, one application, the stewards' review queue."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from renkei.clock import city_today
from renkei.hub.access.applications import ApplicationError
from renkei.hub.services.applications import Step
from renkei.web import portal
from renkei.web.context import Caller, SignedIn, SteppedUp, identify_caller
from renkei.web.errors import FormExpiredError
from renkei.web.models import MAX_COMMENT, ApplicationIn
from renkei.web.pages.common import OPERATORS, RawForm, done, error_page, page
from renkei.web.params import ApplicationId, PartId

router = APIRouter(include_in_schema=False)

DEFAULT_USE_DAYS = 90
OptionalText = Annotated[str, Form(max_length=MAX_COMMENT)]
RequiredText = Annotated[str, Form(min_length=1, max_length=MAX_COMMENT)]


@router.get("/applications", response_class=HTMLResponse)
def my_applications(request: Request, caller: SignedIn) -> HTMLResponse:
    """One's own applications; for admins and auditors, whose job is to oversee them, all of them."""
    if caller.signed_in.role in OPERATORS:
        shown, title = portal.all_applications(caller), "home.all_applications"
    else:
        shown, title = portal.my_applications(caller), "apps.title"
    operator = caller.signed_in.role in OPERATORS
    return page(
        request, caller, "applications.html", applications=shown, title_key=title, show_applicant=operator
    )


@router.get("/applications/new", response_class=HTMLResponse)
def application_form(request: Request, caller: SignedIn) -> HTMLResponse:
    today = city_today(caller.portal.clock)
    values = {
        "purpose": "",
        "outputs": "",
        "use_start": today.isoformat(),
        "use_end": (today + dt.timedelta(days=DEFAULT_USE_DAYS)).isoformat(),
        "row_level": False,
        "periods": set(),
        "all_periods": set(),
    }
    return _form_page(request, caller, values)


def _form_page(
    request: Request,
    caller: Caller,
    values: dict[str, Any],
    exc: Exception | None = None,
    editing: int | None = None,
) -> HTMLResponse:
    """The application form: a new one, or (``editing``) the draft with that id."""
    context: dict[str, Any] = {"datasets": portal.list_datasets(caller), "values": values, "editing": editing}
    if exc is not None:
        return error_page(request, caller, "application_new.html", exc, **context)
    return page(request, caller, "application_new.html", problem=None, **context)


@router.post("/applications", response_model=None)
def create(request: Request, caller: SignedIn, form: RawForm) -> Response:
    """Save the draft, and submit it at once when the applicant pressed 申請する."""
    values = _form_values(form)
    try:
        body = _application_in(values)
        application = portal.create_application(caller, body)
    except (RequestValidationError, ApplicationError) as exc:
        return _form_page(request, caller, values, exc)
    if form.get("action") == "submit":
        portal.take_step(caller, Step.SUBMIT, application.id)
        return done(f"/applications/{application.id}", "submitted", application.id)
    return done(f"/applications/{application.id}", "saved", application.id)


async def recover_form(request: Request) -> Response | None:
    """The form as posted, with a fresh token, when only its CSRF token was stale (see errors.FormRecovery)."""
    form = await request.form()
    caller = await run_in_threadpool(identify_caller, request)
    if caller.login is None or caller.login.password_change_required:
        return None
    return await run_in_threadpool(_form_page, request, caller, _form_values(form), FormExpiredError())


def _form_values(form: FormData) -> dict[str, Any]:
    def text(name: str) -> str:
        value = form.get(name, "")
        return value if isinstance(value, str) else ""

    def texts(name: str) -> set[str]:
        return {v for v in form.getlist(name) if isinstance(v, str)}

    return {
        "purpose": text("purpose"),
        "outputs": text("outputs"),
        "use_start": text("use_start"),
        "use_end": text("use_end"),
        "row_level": text("row_level") == "on",
        "periods": texts("period"),  # "<dataset>:<YYYY-MM-DD>"
        "all_periods": texts("all_periods"),  # dataset names
    }


def _application_in(values: dict[str, Any]) -> ApplicationIn:
    """The form as the API's body: a dataset is asked for when a period of it (or all periods) is ticked."""
    chosen: dict[str, list[str]] = {name: [] for name in sorted(values["all_periods"])}
    for item in sorted(values["periods"]):
        name, _, period = item.partition(":")
        chosen.setdefault(name, []).append(period)
    data = {
        "datasets": [
            {
                "dataset": name,
                "periods": [] if name in values["all_periods"] else periods,
                "all_periods": name in values["all_periods"],
            }
            for name, periods in chosen.items()
        ],
        "purpose": values["purpose"],
        "outputs": values["outputs"],
        "use_start": values["use_start"],
        "use_end": values["use_end"],
        "row_level": values["row_level"],
    }
    try:
        return ApplicationIn.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


@router.get("/applications/{application_id}/edit", response_class=HTMLResponse)
def edit_form(request: Request, application_id: ApplicationId, caller: SignedIn) -> HTMLResponse:
    """The draft in the application form, to rewrite (only its applicant, only while it is a draft)."""
    draft, periods = portal.draft_for_editing(caller, application_id)
    values = {
        "purpose": draft.purpose,
        "outputs": draft.outputs,
        "use_start": draft.use_start.isoformat(),
        "use_end": draft.use_end.isoformat(),
        "row_level": draft.row_level,
        "periods": periods,
        "all_periods": set(),
    }
    return _form_page(request, caller, values, editing=application_id)


@router.post("/applications/{application_id}/edit", response_model=None)
def edit(request: Request, application_id: ApplicationId, caller: SignedIn, form: RawForm) -> Response:
    """Save the rewritten draft, and submit it at once when the applicant pressed 申請する."""
    values = _form_values(form)
    try:
        portal.edit_draft(caller, application_id, _application_in(values))
    except (RequestValidationError, ApplicationError) as exc:
        return _form_page(request, caller, values, exc, editing=application_id)
    if form.get("action") == "submit":
        portal.take_step(caller, Step.SUBMIT, application_id)
        return done(f"/applications/{application_id}", "submitted", application_id)
    return done(f"/applications/{application_id}", "saved", application_id)


@router.get("/applications/{application_id}", response_class=HTMLResponse)
def application(request: Request, application_id: ApplicationId, caller: SignedIn) -> HTMLResponse:
    shown, moves = portal.application_page(caller, application_id)
    return page(request, caller, "application.html", application=shown, moves=moves)


@router.post("/applications/{application_id}/submit")
def submit(application_id: ApplicationId, caller: SignedIn) -> RedirectResponse:
    portal.take_step(caller, Step.SUBMIT, application_id)
    return done(f"/applications/{application_id}", "submitted", application_id)


@router.post("/applications/{application_id}/withdraw")
def withdraw(application_id: ApplicationId, caller: SignedIn, reason: OptionalText = "") -> RedirectResponse:
    portal.take_step(caller, Step.WITHDRAW, application_id, reason)
    return done(f"/applications/{application_id}", "withdrawn", application_id)


@router.post("/applications/{application_id}/revoke")
def revoke(application_id: ApplicationId, caller: SignedIn, reason: RequiredText) -> RedirectResponse:
    portal.take_step(caller, Step.REVOKE, application_id, reason)
    return done(f"/applications/{application_id}", "revoked", application_id)


@router.get("/reviews", response_class=HTMLResponse)
def reviews(request: Request, caller: SignedIn) -> HTMLResponse:
    return page(request, caller, "reviews.html", items=portal.review_queue(caller))


@router.post("/parts/{part_id}/approve")
def approve(part_id: PartId, caller: SteppedUp, comment: OptionalText = "") -> RedirectResponse:
    application = portal.take_step(caller, Step.APPROVE_PART, part_id, comment)
    return done("/reviews", "approved", application.id)


@router.post("/parts/{part_id}/reject")
def reject(part_id: PartId, caller: SignedIn, comment: RequiredText) -> RedirectResponse:
    application = portal.take_step(caller, Step.REJECT_PART, part_id, comment)
    return done("/reviews", "rejected", application.id)


@router.post("/parts/{part_id}/revoke")
def revoke_part(part_id: PartId, caller: SignedIn, reason: RequiredText) -> RedirectResponse:
    application = portal.take_step(caller, Step.REVOKE_PART, part_id, reason)
    return done(f"/applications/{application.id}", "revoked", application.id)
