"""The admin pages (admins only): users, departments, terminals, staff cards, senders and keys, the disclosure
policy in force, the hub's status.

Every page and button calls the function of :mod:`renkei.hub.services.admin` that the CLI calls, as the web
session's actor: ``authorize()`` decides (``admin.users``, ``admin.terminals``, ``admin.catalog``) and the
change is audited. A refused or failed change shows the page again with the error, naming the field. A secret a
change creates (an enrollment ticket, an initial password, a terminal's bundle password) is shown once, on the
answer to the post itself (``Cache-Control: no-store`` like every page), and never put in a URL.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from starlette.responses import HTMLResponse, Response

from renkei.errors import RenkeiError
from renkei.hub.access.authz import Forbidden
from renkei.hub.access.people import Role
from renkei.hub.services.decisions import NotFoundError
from renkei.web import portal
from renkei.web.context import Caller, SignedIn
from renkei.web.pages.common import done, error_page, page

router = APIRouter(include_in_schema=False)

LoginId = Annotated[str, Path(min_length=1, max_length=64)]
TerminalName = Annotated[str, Path(min_length=1, max_length=63)]
ShortText = Annotated[str, Form(max_length=100)]
ROLES = tuple(Role)


def _users_page(request: Request, caller: Caller, exc: Exception | None = None, **values: Any) -> Response:
    context = {
        "users": portal.admin_call(caller, "list_users"),
        "departments": portal.admin_call(caller, "list_departments"),
        "roles": ROLES,
        "values": values,
    }
    if exc is not None:
        return error_page(request, caller, "admin_users.html", exc, **context)
    return page(request, caller, "admin_users.html", problem=None, **context)


def _terminals_page(
    request: Request, caller: Caller, exc: Exception | None = None, **values: Any
) -> Response:
    context = {"terminals": portal.admin_call(caller, "list_terminals"), "values": values}
    if exc is not None:
        return error_page(request, caller, "admin_terminals.html", exc, **context)
    return page(request, caller, "admin_terminals.html", problem=None, **context)


def _once(request: Request, caller: SignedIn, kind: str, **shown: Any) -> HTMLResponse:
    """The page that shows a secret once: the answer to the post, never a redirect with it in the URL."""
    return page(request, caller, "admin_once.html", kind=kind, **shown)


# --- the hub: status, keys, senders, policy -------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse)
def admin_home(request: Request, caller: SignedIn) -> HTMLResponse:
    return page(
        request,
        caller,
        "admin.html",
        hub=portal.admin_call(caller, "hub_status"),
        keys=portal.admin_call(caller, "key_status"),
        senders=portal.admin_call(caller, "list_senders"),
        policy=portal.admin_call(caller, "policy_in_force"),
    )


# --- users and departments ------------------------------------------------------------------------------------


@router.get("/admin/users", response_class=HTMLResponse)
def users(request: Request, caller: SignedIn) -> Response:
    return _users_page(request, caller)


@router.post("/admin/users", response_model=None)
def designate(
    request: Request,
    caller: SignedIn,
    login_id: Annotated[str, Form(max_length=64)] = "",
    display_name: ShortText = "",
    role: Annotated[str, Form(max_length=16)] = "",
    department: ShortText = "",
) -> Response:
    """指名: the initial password is made here and shown once; the user changes it at the first login."""
    values = {"login_id": login_id, "display_name": display_name, "role": role, "department": department}
    password = _initial_password()
    try:
        designated = portal.admin_call(
            caller, "designate", login_id=login_id.strip(), display_name=display_name,
            role=_role(role), department=department, password=password,
        )  # fmt: skip
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _users_page(request, caller, exc, **values)
    return _once(request, caller, "designated", login_id=designated.login_id, password=password)


@router.post("/admin/departments", response_model=None)
def add_department(request: Request, caller: SignedIn, department_name: ShortText = "") -> Response:
    try:
        portal.admin_call(caller, "add_department", department_name)
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _users_page(request, caller, exc, department_name=department_name)
    return done("/admin/users", "department_added", 0)


@router.post("/admin/users/{login_id}/disable", response_model=None)
def disable(request: Request, caller: SignedIn, login_id: LoginId) -> Response:
    return _user_change(request, caller, "disable_user", "user_disabled", login_id)


@router.post("/admin/users/{login_id}/enable", response_model=None)
def enable(request: Request, caller: SignedIn, login_id: LoginId) -> Response:
    return _user_change(request, caller, "enable_user", "user_enabled", login_id)


@router.post("/admin/users/{login_id}/cards/revoke", response_model=None)
def revoke_cards(request: Request, caller: SignedIn, login_id: LoginId) -> Response:
    return _user_change(request, caller, "revoke_user_cards", "cards_revoked", login_id)


@router.post("/admin/users/{login_id}/change", response_model=None)
def change(
    request: Request,
    caller: SignedIn,
    login_id: LoginId,
    role: Annotated[str, Form(max_length=16)] = "",
    department: ShortText = "",
) -> Response:
    try:
        portal.admin_call(caller, "change_user", login_id, role=_role(role), department=department)
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _users_page(request, caller, exc)
    return done("/admin/users", "user_changed", 0)


def _user_change(request: Request, caller: SignedIn, function: str, what: str, login_id: str) -> Response:
    try:
        portal.admin_call(caller, function, login_id)
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _users_page(request, caller, exc)
    return done("/admin/users", what, 0)


@router.post("/admin/users/{login_id}/password", response_model=None)
def reset_password(request: Request, caller: SignedIn, login_id: LoginId) -> Response:
    """A new initial password, made here (the admin never chooses it) and shown once; sessions end."""
    password = _initial_password()
    try:
        ended = portal.admin_call(caller, "reset_password", login_id, password)
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _users_page(request, caller, exc)
    return _once(request, caller, "password", login_id=ended.name, password=password)


@router.post("/admin/users/{login_id}/totp", response_model=None)
def enroll_totp(request: Request, caller: SignedIn, login_id: LoginId) -> Response:
    """TOTP for a user at a terminal without a card reader: the otpauth URI, shown once."""
    try:
        enrolled = portal.admin_call(caller, "enroll_user_totp", login_id)
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _users_page(request, caller, exc)
    return _once(request, caller, "totp", login_id=enrolled.login_id, uri=enrolled.uri)


@router.post("/admin/users/{login_id}/card-ticket", response_model=None)
def card_ticket(request: Request, caller: SignedIn, login_id: LoginId) -> Response:
    try:
        ticket = portal.admin_call(caller, "issue_card_ticket", login_id)
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _users_page(request, caller, exc)
    return _once(
        request, caller, "ticket", login_id=ticket.login_id, code=ticket.code, expires_at=ticket.expires_at
    )


@router.get("/admin/cards", response_class=HTMLResponse)
def cards(request: Request, caller: SignedIn) -> HTMLResponse:
    return page(request, caller, "admin_cards.html", cards=portal.admin_call(caller, "list_cards"))


# --- terminals ------------------------------------------------------------------------------------------------


@router.get("/admin/terminals", response_class=HTMLResponse)
def terminals(request: Request, caller: SignedIn) -> Response:
    return _terminals_page(request, caller)


@router.post("/admin/terminals", response_model=None)
def enroll_terminal(
    request: Request, caller: SignedIn, terminal_name: Annotated[str, Form(max_length=63)] = ""
) -> Response:
    """Issue the terminal its certificate; the files go to the hub's home, to be carried to the terminal."""
    name = terminal_name.strip()
    stamp = f"{caller.clock.now():%Y%m%dT%H%M%S}"
    out_dir = caller.hub.home / "terminal-bundles" / f"{name}-{stamp}"
    try:
        enrolled = portal.admin_call(caller, "enroll_new_terminal", name, out_dir)
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _terminals_page(request, caller, exc, name=name)
    shown = next(t for t in portal.admin_call(caller, "list_terminals") if t.serial == enrolled.serial)
    return _once(
        request, caller, "terminal", terminal=shown, files=[str(p) for p in enrolled.files],
        password=enrolled.bundle_password,
    )  # fmt: skip


@router.post("/admin/terminals/{terminal}/revoke", response_model=None)
def revoke_terminal(request: Request, caller: SignedIn, terminal: TerminalName) -> Response:
    try:
        portal.admin_call(caller, "revoke_named_terminal", terminal)
    except RenkeiError as exc:
        _raise_refusal(exc)
        return _terminals_page(request, caller, exc)
    return done("/admin/terminals", "terminal_revoked", 0)


# --- helpers --------------------------------------------------------------------------------------------------


def _raise_refusal(exc: RenkeiError) -> None:
    """A refused access is the error page (403), not the form again: the form would only be refused too."""
    if isinstance(exc, Forbidden | NotFoundError):
        raise exc


def _role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise RenkeiError("「役割」を選んでください", "Choose a role (role)") from None


def _initial_password() -> str:
    """Random, shown once, changed by the user at the first login (ASVS v5.0.0-6.4.1, 6.4.6)."""
    return "-".join(secrets.token_urlsafe(6) for _ in range(4))
