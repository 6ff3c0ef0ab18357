"""The audit-log page (auditors and admins): search by user, action, resource, result and the city's dates;
and the monthly inspection report (点検) as printable HTML and as PDF (WeasyPrint, with Noto CJK)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BeforeValidator
from starlette.responses import HTMLResponse, Response

from renkei.clock import city_today
from renkei.errors import RenkeiError
from renkei.hub.services.audit import AuditSearch
from renkei.hub.services.inspection import parse_month
from renkei.web import portal
from renkei.web.context import SignedIn
from renkei.web.pages.common import error_page, page
from renkei.web.templating import render

STATIC = Path(__file__).parent.parent / "static"

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


Month = Annotated[str, Query(max_length=7)]


@router.get("/audit/inspection", response_class=HTMLResponse)
def inspection(request: Request, caller: SignedIn, month: Month = "") -> HTMLResponse:
    """The month's report, printable (print CSS); without ``month``, the month before this one."""
    chosen = month or _last_month(caller)
    try:
        first = parse_month(chosen)
    except RenkeiError as exc:
        return error_page(request, caller, "inspection.html", exc, report=None, month=chosen)
    report = portal.monthly_inspection(caller, first, full=False)
    return page(request, caller, "inspection.html", report=report, month=report.label, problem=None)


@router.get("/audit/inspection.pdf")
def inspection_pdf(request: Request, caller: SignedIn, month: Month = "") -> Response:
    """The same report as a PDF (A4, Noto CJK), rendered from the same template by WeasyPrint."""
    report = portal.monthly_inspection(caller, parse_month(month or _last_month(caller)))
    html = render(request, "inspection_pdf.html", {"report": report}, 200)
    from weasyprint import HTML  # noqa: PLC0415 (heavy: only for a PDF)

    pdf = HTML(string=bytes(html.body).decode("utf-8"), base_url=str(STATIC)).write_pdf()
    name = f"inspection-{report.label}.pdf"
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _last_month(caller: SignedIn) -> str:
    today = city_today(caller.portal.clock)
    last = today.replace(day=1) - dt.timedelta(days=1)
    return f"{last:%Y-%m}"
