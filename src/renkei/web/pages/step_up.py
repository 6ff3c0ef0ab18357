"""Step-up (本人確認): the staff card or the TOTP code again, then back to the page that asked for it.

An approval or an export whose session has no fresh proof of the second factor is sent here
(``/step-up?next=<local path>``, see :func:`renkei.web.context.stepped_up`); ``next`` is kept only when it is a
path of this portal (:func:`renkei.web.context.local_path`), else the user lands on ``/home``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from renkei.hub.access.login import Factor, LoginError
from renkei.web import portal
from renkei.web.context import Caller, SignedIn, local_path
from renkei.web.pages.common import done, error_page, page

router = APIRouter(include_in_schema=False)

NextPath = Annotated[str, Form(max_length=512)]
CeremonyJson = Annotated[str, Form(min_length=1, max_length=64 * 1024)]


def _next(candidate: str) -> str:
    return local_path(candidate) or "/home"


@router.get("/step-up", response_class=HTMLResponse)
def step_up_page(request: Request, caller: SignedIn) -> HTMLResponse:
    """Which factor to prove; TOTP users get the code field at once, card users a button that starts it."""
    return _page(request, caller, _next(request.query_params.get("next", "")))


def _page(request: Request, caller: Caller, next_path: str, exc: Exception | None = None) -> HTMLResponse:
    factor = caller.portal.step_up.factor_of(caller.signed_in)
    context: dict[str, Any] = {
        "factor": factor.value if factor is not None else "",
        "next_path": next_path,
        "fresh": portal.step_up_fresh(caller),
        "minutes": caller.portal.settings.step_up_minutes,
    }
    if exc is not None:
        return error_page(request, caller, "step_up.html", exc, **context)
    return page(request, caller, "step_up.html", problem=None, **context)


@router.post("/step-up", response_class=HTMLResponse)
def step_up_card_start(request: Request, caller: SignedIn, next: NextPath = "") -> HTMLResponse:
    """The card's ceremony page, with a fresh challenge kept on the session."""
    next_path = _next(next)
    try:
        started = portal.begin_step_up(caller)
    except LoginError as exc:
        return _page(request, caller, next_path, exc)
    if started.factor is not Factor.CARD:
        return _page(request, caller, next_path)
    return page(
        request,
        caller,
        "step_up_card.html",
        problem=None,
        options=started.card_options_json,
        next_path=next_path,
    )


@router.post("/step-up/card", response_model=None)
def step_up_card(
    request: Request, caller: SignedIn, assertion: CeremonyJson, next: NextPath = ""
) -> Response:
    next_path = _next(next)
    try:
        portal.step_up_with_card(caller, assertion)
    except LoginError as exc:
        return _page(request, caller, next_path, exc)
    return _back(next_path)


@router.post("/step-up/totp", response_model=None)
def step_up_totp(
    request: Request,
    caller: SignedIn,
    code: Annotated[str, Form(min_length=1, max_length=32)],
    next: NextPath = "",
) -> Response:
    next_path = _next(next)
    try:
        portal.step_up_with_totp(caller, code)
    except LoginError as exc:
        return _page(request, caller, next_path, exc)
    return _back(next_path)


def _back(next_path: str) -> RedirectResponse:
    """To the page that asked, saying that approvals and exports may go ahead."""
    return done(next_path, "stepped_up", 0)
