"""What every page shares: the base context (who, CSRF token, menu), redirects after posts, raw forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse

from renkei.hub.access.people import Role
from renkei.web.context import Caller
from renkei.web.cookies import CSRF_COOKIE, set_cookie
from renkei.web.errors import describe
from renkei.web.i18n import has_message
from renkei.web.security import new_csrf_token
from renkei.web.templating import render

OPERATORS = (Role.ADMIN, Role.AUDITOR)  # who oversees every application and grant


def page(
    request: Request, caller: Caller, template: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` with the user, their role and the CSRF token their forms must carry."""
    token = caller.csrf_token
    fresh = not token
    if fresh:  # before login, the first page that shows a form hands out the pre-login token
        token = new_csrf_token()
    login = caller.login
    base = {
        "user": login,
        "is_steward": login is not None and login.role is Role.STEWARD,
        "is_analyst": login is not None and login.role is Role.ANALYST,
        "is_operator": login is not None and login.role in OPERATORS,
        "is_admin": login is not None and login.role is Role.ADMIN,
        "csrf_token": token,
        "notice": notice_of(request),
    }
    response = render(request, template, {**base, **context}, status)
    if fresh:
        set_cookie(response, CSRF_COOKIE, token)
    return response


def error_page(
    request: Request, caller: Caller, template: str, exc: Exception, **context: Any
) -> HTMLResponse:
    """Show ``template`` again with the error's message, under the error's status."""
    problem = describe(exc)
    response = page(request, caller, template, status=problem.status, problem=problem, **context)
    response.headers.update(problem.headers)
    return response


def see_other(url: str) -> RedirectResponse:
    """After a successful post, go to a page (303: the browser follows with GET)."""
    return RedirectResponse(url, status_code=303)


@dataclass(frozen=True, slots=True)
class Notice:
    key: str  # a "done.*" message
    id: int  # the object it is about


def done(url: str, what: str, object_id: int) -> RedirectResponse:
    """After a successful post, go to ``url`` and say what was done there (``done.<what>`` with the id).

    The query carries only the message's name and an id, never a value the user typed.
    """
    assert has_message(f"done.{what}")
    separator = "&" if "?" in url else "?"
    return see_other(f"{url}{separator}{urlencode({'done': what, 'id': object_id})}")


def notice_of(request: Request) -> Notice | None:
    """The confirmation a redirect asked for with :func:`done` (unknown names and bad ids are ignored)."""
    what, object_id = request.query_params.get("done", ""), request.query_params.get("id", "")
    if not (what.isalnum() or "_" in what) or not has_message(f"done.{what}") or not object_id.isdigit():
        return None
    return Notice(f"done.{what}", int(object_id[:10]))


async def form_data(request: Request) -> FormData:
    """The submitted form, for pages whose field names depend on the data (the application form)."""
    return await request.form()


RawForm = Annotated[FormData, Depends(form_data)]
