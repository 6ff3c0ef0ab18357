"""The audit-log page (auditors and admins): search by user, action, resource, result and the city's dates."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BeforeValidator
from starlette.responses import HTMLResponse

from renkei.hub.services.audit import AuditSearch
from renkei.web import portal
from renkei.web.context import SignedIn
from renkei.web.pages.common import page

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Query(max_length=200)]
# A date field left empty in the search form is sent as "": no bound, not an error.
OptionalDate = Annotated[dt.date | None, BeforeValidator(lambda value: value or None), Query()]


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    caller: SignedIn,
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    resource: Text = "",
    result: Annotated[Literal["", "ok", "denied"], Query()] = "",
    since: OptionalDate = None,
    until: OptionalDate = None,
) -> HTMLResponse:
    search = AuditSearch(
        actor=actor.strip(),
        action=action.strip(),
        resource=resource.strip(),
        result=result,
        since=since,
        until=until,
    )
    return page(request, caller, "audit.html", entries=portal.search_audit(caller, search), search=search)
