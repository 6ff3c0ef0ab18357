"""``/api/v1/cards/enrollment``: registering a staff card with the admin's one-time ticket (at a terminal)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from renkei.web import portal
from renkei.web.context import Public
from renkei.web.cookies import CEREMONY_SECONDS, ENROLL_COOKIE, clear_cookie, set_cookie
from renkei.web.models import (
    CardEnrollmentFinish,
    CardEnrollmentStart,
    EnrollmentDoneView,
    EnrollmentOptionsView,
)

router = APIRouter(prefix="/cards/enrollment", tags=["cards"])


@router.post("", response_model=EnrollmentOptionsView)
def start(body: CardEnrollmentStart, caller: Public, response: Response) -> EnrollmentOptionsView:
    """Login id, password and ticket → the options for ``navigator.credentials.create()``."""
    begun = portal.begin_enrollment(caller, body.login_id, body.password, body.ticket)
    set_cookie(response, ENROLL_COOKIE, begun.handle, max_age=CEREMONY_SECONDS)
    return EnrollmentOptionsView(options=json.loads(begun.options_json), expires_at=begun.expires_at)


@router.post("/finish", response_model=EnrollmentDoneView)
def finish(
    body: CardEnrollmentFinish, caller: Public, request: Request, response: Response
) -> EnrollmentDoneView:
    """The card's registration response; on success the card is the user's possession factor."""
    registered_at = portal.finish_enrollment(caller, request.cookies.get(ENROLL_COOKIE, ""), body.response)
    clear_cookie(response, ENROLL_COOKIE)
    return EnrollmentDoneView(registered_at=registered_at)
