"""Server-rendered pages: one Jinja2 environment (autoescaping, strict undefined), Japanese first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse

from renkei.web.i18n import LANG_COOKIE, LANGUAGES, language_of, translator

TEMPLATES = Path(__file__).parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,  # every template is HTML; user text (purposes, comments) is escaped
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(connection: HTTPConnection, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """The page ``name`` in the caller's language; a ``?lang=`` choice is remembered in a cookie."""
    language = language_of(connection)
    request_id = connection.scope.get("state", {}).get("request_id", "")
    html = _environment.get_template(name).render(
        lang=language, t=translator(language), request_id=request_id, **context
    )
    response = HTMLResponse(html, status_code=status)
    chosen = connection.query_params.get("lang")
    if chosen in LANGUAGES:
        response.set_cookie(LANG_COOKIE, language, secure=True, httponly=True, samesite="strict", path="/")
    return response
