"""The grant list: one's own grants; for stewards also those on their department's datasets, with revocation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse

from renkei.web import portal
from renkei.web.context import SignedIn
from renkei.web.models import MAX_COMMENT
from renkei.web.pages.common import page, see_other
from renkei.web.params import GrantId

router = APIRouter(include_in_schema=False)


@router.get("/grants", response_class=HTMLResponse)
def grants(request: Request, caller: SignedIn) -> HTMLResponse:
    return page(
        request, caller, "grants.html", grants=portal.my_grants(caller), acls=portal.department_acls(caller)
    )


@router.post("/grants/{grant_id}/revoke")
def revoke(
    grant_id: GrantId, caller: SignedIn, reason: Annotated[str, Form(min_length=1, max_length=MAX_COMMENT)]
) -> RedirectResponse:
    portal.revoke(caller, grant_id, reason)
    return see_other("/grants")
