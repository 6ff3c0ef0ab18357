"""``/api/v1/session``: the CSRF token, the two login steps, logout, who am I, password change."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import AwareDatetime

from renkei.web import portal
from renkei.web.context import Public, SignedIn, SignedInAnyPassword
from renkei.web.cookies import (
    CEREMONY_SECONDS,
    CSRF_COOKIE,
    PENDING_COOKIE,
    end_session,
    set_cookie,
    start_session,
)
from renkei.web.models import (
    CardStep,
    CsrfView,
    MeView,
    PasswordChange,
    PasswordStep,
    PendingView,
    TotpStep,
    View,
)
from renkei.web.security import new_csrf_token

router = APIRouter(prefix="/session", tags=["session"])


@router.get("/csrf", response_model=CsrfView)
def csrf_token(caller: Public, response: Response) -> CsrfView:
    """The token to send as ``X-CSRF-Token``: the session's, or before login a new pre-login token."""
    token = caller.csrf_token
    if not token:
        token = new_csrf_token()
        set_cookie(response, CSRF_COOKIE, token)
    return CsrfView(csrf_token=token, terminal_registered=caller.terminal is not None)


@router.post("/login", response_model=PendingView)
def login_password(body: PasswordStep, caller: Public, response: Response) -> PendingView:
    """Step 1: login id and password, from a registered terminal. Step 2 is ``/card`` or ``/totp``."""
    pending = portal.begin_login(caller, body.login_id, body.password)
    set_cookie(response, PENDING_COOKIE, pending.token, max_age=CEREMONY_SECONDS)
    options = json.loads(pending.card_options_json) if pending.card_options_json else None
    return PendingView(factor=pending.factor.value, card_options=options, expires_at=pending.expires_at)


@router.post("/card", response_model=MeView)
def login_card(body: CardStep, caller: Public, request: Request, response: Response) -> MeView:
    """Step 2 with the staff card: the assertion of ``navigator.credentials.get()``."""
    pending_token = request.cookies.get(PENDING_COOKIE, "")
    login = portal.finish_login_with_card(caller, pending_token, body.assertion)
    start_session(response, login.token)
    return portal.me(caller, login)


@router.post("/totp", response_model=MeView)
def login_totp(body: TotpStep, caller: Public, request: Request, response: Response) -> MeView:
    """Step 2 with a TOTP code (where the terminal has no card reader)."""
    login = portal.finish_login_with_totp(caller, request.cookies.get(PENDING_COOKIE, ""), body.code)
    start_session(response, login.token)
    return portal.me(caller, login)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(caller: Public, response: Response) -> None:
    """End the session on the server (if there is one) and forget the cookies."""
    portal.logout(caller)
    end_session(response)


@router.get("", response_model=MeView)
def me(caller: SignedInAnyPassword) -> MeView:
    return portal.me(caller)


@router.post("/password", response_model=MeView)
def change_password(body: PasswordChange, caller: SignedInAnyPassword) -> MeView:
    """Replace one's password (required after an admin set it); the user's other sessions end."""
    login = portal.change_password(caller, body.current_password, body.new_password)
    return portal.me(caller, login)


# --- step-up: the second factor again, before an approval or an export (403 step_up_required otherwise) ----


class StepUpStartView(View):
    factor: Literal["card", "totp"]
    card_options: dict[str, Any] | None  # PublicKeyCredentialRequestOptions, for a card
    fresh: bool  # the session may approve and export now
    fresh_until: AwareDatetime | None


class SteppedUpView(View):
    fresh_until: AwareDatetime  # approvals and exports need no step-up until then


@router.post("/step-up", response_model=StepUpStartView)
def step_up(caller: SignedIn) -> StepUpStartView:
    """Start a step-up: which factor to prove (a card gets a fresh challenge), and whether one is needed now."""
    started = portal.begin_step_up(caller)
    options = json.loads(started.card_options_json) if started.card_options_json else None
    return StepUpStartView(
        factor=started.factor.value,
        card_options=options,
        fresh=portal.step_up_fresh(caller),
        fresh_until=portal.step_up_until(caller),
    )


@router.post("/step-up/card", response_model=SteppedUpView)
def step_up_card(body: CardStep, caller: SignedIn) -> SteppedUpView:
    """The staff card's assertion over the challenge of ``POST /session/step-up``."""
    return SteppedUpView(fresh_until=portal.step_up_with_card(caller, body.assertion))


@router.post("/step-up/totp", response_model=SteppedUpView)
def step_up_totp(body: TotpStep, caller: SignedIn) -> SteppedUpView:
    """The TOTP code (the next one: each code is accepted once, the login's included)."""
    return SteppedUpView(fresh_until=portal.step_up_with_totp(caller, body.code))
