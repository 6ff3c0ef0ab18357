"""Login (ID + password, then staff card or TOTP), logout, password change and staff-card registration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from renkei.errors import RenkeiError
from renkei.hub.access.login import Factor, LoginError
from renkei.hub.access.sessions import LoginSession
from renkei.web import portal
from renkei.web.context import Caller, Public, SignedInAnyPassword
from renkei.web.cookies import (
    CEREMONY_SECONDS,
    ENROLL_COOKIE,
    PENDING_COOKIE,
    clear_cookie,
    end_session,
    set_cookie,
    start_session,
)
from renkei.web.models import MAX_ID, MAX_PASSWORD
from renkei.web.pages.common import error_page, page, see_other

router = APIRouter(include_in_schema=False)
HOME = "/home"  # where a login lands: the role's home page (renkei.web.pages.home)
FAVICON = Path(__file__).parents[1] / "static" / "favicon.ico"

LoginId = Annotated[str, Form(min_length=1, max_length=MAX_ID)]
Password = Annotated[str, Form(min_length=1, max_length=MAX_PASSWORD)]
CeremonyJson = Annotated[str, Form(min_length=1, max_length=64 * 1024)]  # a WebAuthn response, as JSON text


@router.get("/")
def start(caller: Public) -> RedirectResponse:
    return see_other(HOME if caller.login is not None else "/login")


@router.get("/favicon.ico", response_class=FileResponse)
def favicon(caller: Public) -> FileResponse:
    """The icon browsers ask for at this fixed path (also linked from every page)."""
    return FileResponse(FAVICON, media_type="image/vnd.microsoft.icon")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, caller: Public) -> HTMLResponse:
    return _login_page(request, caller)


def _login_page(
    request: Request, caller: Caller, exc: Exception | None = None, login_id: str = ""
) -> HTMLResponse:
    context: dict[str, Any] = {
        "terminal_registered": caller.terminal is not None,
        "login_id": login_id,
        "session_ended": request.query_params.get("session") == "ended",
    }
    if exc is not None:
        return error_page(request, caller, "login.html", exc, **context)
    return page(request, caller, "login.html", problem=None, **context)


@router.post("/login", response_class=HTMLResponse)
def login_password(request: Request, caller: Public, login_id: LoginId, password: Password) -> HTMLResponse:
    """Step 1; the answer is the page of step 2 (card or TOTP), with the pending login in a cookie."""
    try:
        pending = portal.begin_login(caller, login_id, password)
    except LoginError as exc:
        return _login_page(request, caller, exc, login_id)
    if pending.factor is Factor.CARD:
        response = page(request, caller, "login_card.html", problem=None, options=pending.card_options_json)
    else:
        response = page(request, caller, "login_totp.html", problem=None)
    set_cookie(response, PENDING_COOKIE, pending.token, max_age=CEREMONY_SECONDS)
    return response


@router.post("/login/card", response_model=None)
def login_card(request: Request, caller: Public, assertion: CeremonyJson) -> Response:
    try:
        login = portal.finish_login_with_card(caller, request.cookies.get(PENDING_COOKIE, ""), assertion)
    except LoginError as exc:
        return _login_page(request, caller, exc)
    return _signed_in(login)


@router.post("/login/totp", response_model=None)
def login_totp(
    request: Request, caller: Public, code: Annotated[str, Form(min_length=1, max_length=32)]
) -> Response:
    try:
        login = portal.finish_login_with_totp(caller, request.cookies.get(PENDING_COOKIE, ""), code)
    except LoginError as exc:
        return _login_page(request, caller, exc)
    return _signed_in(login)


def _signed_in(login: LoginSession) -> RedirectResponse:
    response = see_other("/password" if login.password_change_required else HOME)
    start_session(response, login.token)
    return response


@router.post("/logout")
def logout(caller: Public) -> RedirectResponse:
    portal.logout(caller)
    response = see_other("/login")
    end_session(response)
    return response


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, caller: SignedInAnyPassword) -> HTMLResponse:
    return page(request, caller, "password.html", problem=None, done=False)


@router.post("/password", response_class=HTMLResponse)
def change_password(
    request: Request, caller: SignedInAnyPassword, current_password: Password, new_password: Password
) -> HTMLResponse:
    try:
        portal.change_password(caller, current_password, new_password)
    except RenkeiError as exc:  # wrong current password, or a new one the rules refuse (with the reason)
        return error_page(request, caller, "password.html", exc, done=False)
    return page(request, caller, "password.html", problem=None, done=True)


@router.get("/cards/enroll", response_class=HTMLResponse)
def enrollment_form(request: Request, caller: Public) -> HTMLResponse:
    return page(request, caller, "card_enroll.html", problem=None, login_id="")


@router.post("/cards/enroll", response_class=HTMLResponse)
def enrollment_start(
    request: Request,
    caller: Public,
    login_id: LoginId,
    password: Password,
    ticket: Annotated[str, Form(min_length=1, max_length=128)],
) -> HTMLResponse:
    try:
        begun = portal.begin_enrollment(caller, login_id, password, ticket)
    except LoginError as exc:
        return error_page(request, caller, "card_enroll.html", exc, login_id=login_id)
    response = page(request, caller, "card_enroll_ceremony.html", problem=None, options=begun.options_json)
    set_cookie(response, ENROLL_COOKIE, begun.handle, max_age=CEREMONY_SECONDS)
    return response


@router.post("/cards/enroll/finish", response_class=HTMLResponse)
def enrollment_finish(request: Request, caller: Public, registration: CeremonyJson) -> HTMLResponse:
    try:
        portal.finish_enrollment(caller, request.cookies.get(ENROLL_COOKIE, ""), registration)
    except LoginError as exc:
        return error_page(request, caller, "card_enroll.html", exc, login_id="")
    response = page(request, caller, "card_enroll_done.html", problem=None)
    clear_cookie(response, ENROLL_COOKIE)
    return response
