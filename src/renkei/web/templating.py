"""Server-rendered pages: one Jinja2 environment (autoescaping, strict undefined), Japanese first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse

from renkei.clock import JST
from renkei.web.i18n import LANG_COOKIE, LANGUAGES, has_message, language_of, translator

TEMPLATES = Path(__file__).parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,  # every template is HTML; user text (purposes, comments) is escaped
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # compiled once per process: the templates are package files (no stat per page view)
)


CLOSED_UNDECIDED = frozenset({"withdrawn", "rejected", "revoked", "expired"})


def part_state_key(application_state: str, part_state: str) -> str:
    """The message key for a part's state as a reader should see it.

    A part is "pending" from the draft on; shown as 審査待ち only while someone can decide it: a draft's
    parts are not submitted yet, and a closed application's pending parts will never be decided.
    """
    if part_state == "pending" and application_state == "draft":
        return "state.part.not_submitted"
    if part_state == "pending" and application_state in CLOSED_UNDECIDED:
        return "state.part.closed"
    return f"state.part.{part_state}"


_environment.globals["part_state_key"] = part_state_key
_environment.globals["has_message"] = has_message


def city_time(at: dt.datetime) -> str:
    """A time as city staff read it: Japan's clock, to the second."""
    return at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


_environment.globals["city_time"] = city_time


def render(connection: HTTPConnection, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """The page ``name`` in the caller's language; a ``?lang=`` choice is remembered in a cookie."""
    language = language_of(connection)
    request_id = connection.scope.get("state", {}).get("request_id", "")
    html = _environment.get_template(name).render(
        lang=language,
        t=translator(language),
        request_id=request_id,
        current_path=connection.url.path,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    chosen = connection.query_params.get("lang")
    if chosen in LANGUAGES:
        response.set_cookie(LANG_COOKIE, language, secure=True, httponly=True, samesite="strict", path="/")
    return response
