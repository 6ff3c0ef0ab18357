"""The home page: what the signed-in user has to do, by role.

- analysts: their grants (with expiry) and their applications, and the way to a new application;
- stewards: the applications awaiting their decision;
- admins and auditors: the applications under review across the city, and where to find every application
  and grant; admins also see the departments that own data but have no steward (their applications would
  wait forever).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from renkei.hub.access.people import Role
from renkei.web import portal
from renkei.web.context import Caller, SignedIn
from renkei.web.models import ApplicationView
from renkei.web.pages.common import OPERATORS, page

router = APIRouter(include_in_schema=False)

UNDER_REVIEW = ("submitted", "partially_approved")


@router.get("/home", response_class=HTMLResponse)
def home(request: Request, caller: SignedIn) -> HTMLResponse:
    role = caller.signed_in.role
    context: dict[str, Any] = {
        "reviews": portal.review_queue(caller) if role is Role.STEWARD else None,
        "all_applications": (
            _under_review(portal.all_applications(caller, open_for_review=True))
            if role in OPERATORS
            else None
        ),
        "unstaffed": _unstaffed(caller) if role is Role.ADMIN else [],
        "grants": portal.my_grants(caller) if role is Role.ANALYST else [],
        "mine": portal.my_applications(caller) if role is Role.ANALYST else [],
    }
    return page(request, caller, "home.html", **context)


def _under_review(applications: list[ApplicationView]) -> list[ApplicationView]:
    return [a for a in applications if a.state in UNDER_REVIEW]


def _unstaffed(caller: Caller) -> list[str]:
    """Departments owning a dataset but with no steward: nobody can decide applications for their data."""
    return sorted({d.owner for d in portal.list_datasets(caller) if not d.owner_has_steward})
