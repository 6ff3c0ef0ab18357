"""Exports (出力) and the steward's table review (集計表の審査).

``/exports``: my tables in the release ledger with their state, my download quota and what is left of it, the
files I exported (with their SHA-256); a released or approved table is exported as CSV or XLSX after a fresh
step-up, the file answered with ``Content-Disposition: attachment`` (and, like every page, ``no-store``).
``/releases/review``: the tables waiting for the steward's decision, approved or rejected with a reason.
Each route calls one function of the hub (:mod:`renkei.hub.analysis`) and renders. The forms' hidden ``next``
field is read by the step-up guard (:func:`renkei.web.context.stepped_up`): where to come back after a step-up.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from renkei.errors import RenkeiError
from renkei.hub.access.people import Role
from renkei.hub.analysis import overview, service
from renkei.hub.analysis.ledger import ExportFormat
from renkei.web import portal
from renkei.web.api.analysis import MEDIA_TYPES
from renkei.web.context import Caller, SignedIn, SteppedUp
from renkei.web.models import MAX_COMMENT
from renkei.web.pages.common import done, error_page, page
from renkei.web.params import ReleaseId

router = APIRouter(include_in_schema=False)

EXPORTS = "/exports"
REVIEW = "/releases/review"


@router.get(EXPORTS, response_class=HTMLResponse)
def exports(request: Request, caller: SignedIn) -> HTMLResponse:
    return _exports_page(request, caller)


def _exports_page(request: Request, caller: Caller, exc: Exception | None = None) -> HTMLResponse:
    shown = (
        overview.exports_overview(caller.hub, caller.actor, clock=caller.clock) if _analyst(caller) else None
    )
    context: dict[str, Any] = {"overview": shown, **_step_up_context(caller)}
    if exc is not None:
        return error_page(request, caller, "exports.html", exc, **context)
    return page(request, caller, "exports.html", problem=None, **context)


def _analyst(caller: Caller) -> bool:
    return caller.signed_in.role is Role.ANALYST


def _step_up_context(caller: Caller) -> dict[str, Any]:
    return {"stepped_up": portal.step_up_fresh(caller), "stepped_up_until": portal.step_up_until(caller)}


@router.post(EXPORTS, response_model=None)
def export(
    request: Request,
    caller: SteppedUp,
    release_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    format: Annotated[Literal["csv", "xlsx"], Form()],
) -> Response:
    """The file, within the quota; a refusal (quota, state, no such table) shows the page with the reason."""
    fmt = ExportFormat(format)
    try:
        exported = service.export_release(caller.hub, caller.actor, release_id, fmt, clock=caller.clock)
    except RenkeiError as exc:
        return _exports_page(request, caller, exc)
    return Response(
        exported.content,
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{exported.file_name}"',
            "X-Content-SHA256": exported.sha256,
            "Cache-Control": "no-store",
        },
    )


@router.get(REVIEW, response_class=HTMLResponse)
def release_review(request: Request, caller: SignedIn) -> HTMLResponse:
    return _review_page(request, caller)


def _review_page(request: Request, caller: Caller, exc: Exception | None = None) -> HTMLResponse:
    context = {
        "entries": overview.review_queue(caller.hub, caller.actor, clock=caller.clock),
        **_step_up_context(caller),
    }
    if exc is not None:
        return error_page(request, caller, "release_review.html", exc, **context)
    return page(request, caller, "release_review.html", problem=None, **context)


@router.post("/releases/{release_id}/review", response_model=None)
def decide(
    request: Request,
    release_id: ReleaseId,
    caller: SteppedUp,
    decision: Annotated[Literal["approve", "reject"], Form()],
    comment: Annotated[str, Form(min_length=1, max_length=MAX_COMMENT)],
) -> Response:
    """Approve or reject one table, with the reason (required either way)."""
    approve = decision == "approve"
    try:
        service.decide_review(
            caller.hub, caller.actor, release_id, approve=approve, comment=comment, clock=caller.clock
        )
    except service.AnalysisError as exc:  # an empty reason: the page again, saying so
        return _review_page(request, caller, exc)
    return _done(release_id, approve)


def _done(release_id: int, approved: bool) -> RedirectResponse:
    return done(REVIEW, "release_approved" if approved else "release_rejected", release_id)
