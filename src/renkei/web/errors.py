"""Every error the portal answers, in one shape, from one renderer (:func:`error_response`).

JSON (the API, and any client that does not ask for HTML)::

    {"error": {"code": "forbidden", "message_ja": "…", "message_en": "…", "request_id": "…"}}

Pages get the same four fields as an HTML page. The HTTP status and code of every renkei error come from the one
table :data:`renkei.errors.ERRORS`, which gives the CLI its exit codes too; a fault renkei can name (a lost
database connection, a full disk: :mod:`renkei.faults`) answers as the error it amounts to (503, 507). Anything
else is a bug: a 500 with a generic message, the traceback only in the server log, tagged with the request id
(ASVS v5.0.0-16.5.1, 16.5.4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from renkei.errors import RenkeiError, answer_for
from renkei.faults import as_renkei_error
from renkei.hub.access.login import LoginThrottledError
from renkei.web.cookies import clear_login_cookies
from renkei.web.templating import render

logger = logging.getLogger("renkei.web")

SESSION_ENDED = (401,)  # statuses after which the browser's session cookie is cleared


class WebError(RenkeiError):
    """An error of the web layer itself; its status and code are in renkei.errors.ERRORS."""


class NotFoundError(WebError):
    def __init__(
        self,
        ja: str = "ページまたはデータが見つかりません",
        en: str = "not found",
    ) -> None:
        super().__init__(ja, en)


class UnauthenticatedError(WebError):
    def __init__(self) -> None:
        super().__init__(
            "ログインが必要です（セッションが無効か期限切れです）",
            "please log in (the session is invalid or has expired)",
        )


class CsrfRejectedError(WebError):
    def __init__(self) -> None:
        super().__init__(
            "不正な画面遷移のため受け付けませんでした。画面を読み込み直してからやり直してください",
            "the request's CSRF token is missing or wrong; reload the page and try again",
        )


class ProxyRefusedError(WebError):
    """A request from the trusted proxy's address without the proxy's secret: someone posing as the proxy."""

    def __init__(self) -> None:
        super().__init__(
            "リバースプロキシを経由していない接続は受け付けません",
            "this connection did not come through the portal's reverse proxy",
        )


class PasswordChangeRequiredError(WebError):
    def __init__(self) -> None:
        super().__init__(
            "パスワードの変更が必要です。先にパスワードを変更してください",
            "you must change your password first",
        )


class CurrentPasswordWrongError(WebError):
    """A signed-in user typed a wrong current password: not a failed login, so not 401."""

    def __init__(self) -> None:
        super().__init__("現在のパスワードが正しくありません", "the current password is wrong")


_HTTP_MESSAGES: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "リクエストの形式が正しくありません", "bad request"),
    401: ("unauthenticated", "ログインが必要です", "please log in"),
    403: ("forbidden", "この操作は許可されていません", "forbidden"),
    404: ("not_found", "ページまたはデータが見つかりません", "not found"),
    405: ("method_not_allowed", "この URL ではこの操作を受け付けていません", "method not allowed"),
    409: ("conflict", "現在の状態ではこの操作はできません", "conflict with the current state"),
    413: ("payload_too_large", "送信された内容が大きすぎます", "request body too large"),
    415: ("unsupported_media_type", "送信された形式には対応していません", "unsupported media type"),
    422: ("invalid_request", "入力内容に誤りがあります", "invalid request"),
    429: ("too_many_requests", "しばらく待ってから再度お試しください", "too many requests"),
    500: (
        "internal_error",
        "内部エラーが発生しました。解決しない場合は受付番号を添えて基盤管理者に連絡してください",
        "internal error; if it persists, tell the platform admin the request id",
    ),
}
_MAX_REPORTED_FIELDS = 5


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    code: str
    message_ja: str
    message_en: str
    headers: dict[str, str] = field(default_factory=dict)


def describe(exc: BaseException) -> Problem:
    """Status, code and messages for any exception; unknown exceptions are a generic 500."""
    if isinstance(exc, RequestValidationError):
        return _validation_problem(exc)
    if isinstance(exc, StarletteHTTPException):
        return _http_problem(exc.status_code, dict(exc.headers or {}))
    error = as_renkei_error(exc)  # a renkei error, or a fault renkei can name (database, disk)
    if error is not None:
        status, code = _status_and_code(error)
        headers = {}
        if isinstance(error, LoginThrottledError):
            headers["Retry-After"] = str(max(1, int(error.retry_after.total_seconds() + 0.999)))
        return Problem(status, code, error.ja, error.en, headers)
    return _http_problem(500, {})


def _status_and_code(exc: RenkeiError) -> tuple[int, str]:
    """From the one table of errors (renkei.errors.ERRORS), which the CLI's exit codes come from too."""
    answer = answer_for(type(exc))
    return answer.http_status, answer.code or _HTTP_MESSAGES.get(answer.http_status, _HTTP_MESSAGES[400])[0]


def _http_problem(status: int, headers: dict[str, str]) -> Problem:
    code, ja, en = _HTTP_MESSAGES.get(status, _HTTP_MESSAGES[500 if status >= 500 else 400])
    kept = {k: v for k, v in headers.items() if k.lower() in ("allow", "retry-after")}
    return Problem(status, code, ja, en, kept)


def _validation_problem(exc: RequestValidationError) -> Problem:
    """Where the input is wrong and why, never the input itself (it may hold a password)."""
    where = []
    for error in exc.errors()[:_MAX_REPORTED_FIELDS]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        where.append(f"{location}: {error.get('msg', 'invalid')}")
    detail = "; ".join(where)
    code, ja, en = _HTTP_MESSAGES[422]
    return Problem(422, code, f"{ja}（{detail}）", f"{en}: {detail}")


def request_id_of(scope: Scope) -> str:
    state = scope.get("state") or {}
    return str(state.get("request_id", ""))


def wants_html(scope: Scope) -> bool:
    """Pages answer errors in HTML to browsers; the API (and non-browser clients) get JSON."""
    if str(scope.get("path", "")).startswith("/api/"):
        return False
    connection = HTTPConnection(scope)
    return "text/html" in connection.headers.get("accept", "")


def error_response(scope: Scope, exc: BaseException) -> Response:
    """The one renderer of errors, for handled exceptions and the last-resort handler alike."""
    problem = describe(exc)
    request_id = request_id_of(scope)
    if problem.status >= 500:
        logger.error(
            "unexpected error, request %s, %s %r",
            request_id,
            scope.get("method"),
            scope.get("path"),
            exc_info=exc,
        )
    response = _render(scope, problem, request_id)
    if problem.status in SESSION_ENDED:
        clear_login_cookies(response)
    return response


def _render(scope: Scope, problem: Problem, request_id: str) -> Response:
    if wants_html(scope):
        context = {"problem": problem, "user": None, "csrf_token": ""}
        response: Response = render(HTTPConnection(scope), "error.html", context, problem.status)
    else:
        body = {
            "error": {
                "code": problem.code,
                "message_ja": problem.message_ja,
                "message_en": problem.message_en,
                "request_id": request_id,
            }
        }
        response = JSONResponse(body, status_code=problem.status)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


async def _handle(request: Request, exc: Exception) -> Response:
    return error_response(request.scope, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Route every handled exception type to :func:`error_response` (unhandled ones: see security.py)."""
    for kind in (StarletteHTTPException, RequestValidationError, RenkeiError):
        app.add_exception_handler(kind, _handle)
