"""The grant list: one's own grants; for stewards also those on their department's datasets, with revocation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse

from renkei.web import portal
from renkei.web.context import SignedIn
from renkei.web.models import MAX_COMMENT
from renkei.web.pages.common import OPERATORS, done, page
from renkei.web.params import GrantId

router = APIRouter(include_in_schema=False)


@router.get("/grants", response_class=HTMLResponse)
def grants(request: Request, caller: SignedIn) -> HTMLResponse:
    """One's own grants (for admins and auditors: every grant), and the stewards' department lists."""
    if caller.signed_in.role in OPERATORS:
        shown, title = portal.all_grants(caller), "grants.all"
    else:
        shown, title = portal.my_grants(caller), "grants.title"
    acls = portal.department_acls(caller)
    return page(request, caller, "grants.html", grants=shown, acls=acls, title_key=title, show_holder=True)


@router.post("/grants/{grant_id}/revoke")
def revoke(
    grant_id: GrantId, caller: SignedIn, reason: Annotated[str, Form(min_length=1, max_length=MAX_COMMENT)]
) -> RedirectResponse:
    portal.revoke(caller, grant_id, reason)
    return done("/grants", "grant_revoked", grant_id)
