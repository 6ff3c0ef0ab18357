"""The JSON API, ``/api/v1``. Every error answers in the canonical shape (see :mod:`renkei.web.errors`).

The OpenAPI description is served at ``/api/v1/openapi.json`` to signed-in users only (ASVS v5.0.0-13.4.5);
there is no Swagger UI (it would need assets from a CDN).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renkei.web.api import analysis, applications, cards, catalog, grants, opendata, session
from renkei.web.context import SignedIn
from renkei.web.models import View

PREFIX = "/api/v1"


class ErrorDetail(View):
    code: str
    message_ja: str
    message_en: str
    request_id: str


class ErrorBody(View):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503)
}

router = APIRouter(prefix=PREFIX, responses=ERROR_RESPONSES)
for module in (session, cards, catalog, applications, grants, analysis, opendata):
    router.include_router(module.router)


@router.get("/openapi.json", include_in_schema=False)
def openapi(caller: SignedIn, request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
