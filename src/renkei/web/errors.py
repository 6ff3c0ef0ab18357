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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Scope

from renkei.errors import RenkeiError, answer_for
from renkei.faults import as_renkei_error
from renkei.hub.access.authz import InvalidTransition
from renkei.hub.access.login import LoginThrottledError
from renkei.hub.access.step_up import StepUpRequired
from renkei.web.cookies import SESSION_COOKIE, clear_login_cookies
from renkei.web.templating import render

logger = logging.getLogger("renkei.web")

SESSION_ENDED = (401,)  # statuses after which the browser's session cookie is cleared
LOGIN_PATH = "/login"
STEP_UP_PATH = "/step-up"


class WebError(RenkeiError):
    """An error of the web layer itself; its status and code are in renkei.errors.ERRORS."""


class NotFoundError(WebError):
    def __init__(
        self,
        ja: str = "ページまたはデータが見つかりません",
        en: str = "Not found",
    ) -> None:
        super().__init__(ja, en)


class UnauthenticatedError(WebError):
    def __init__(self) -> None:
        super().__init__(
            "ログインが必要です（セッションが無効か期限切れです）",
            "Please log in (the session is invalid or has expired)",
        )


class CsrfRejectedError(WebError):
    def __init__(self) -> None:
        super().__init__(
            "不正な画面遷移のため受け付けませんでした。画面を読み込み直してからやり直してください",
            "The request's CSRF token is missing or wrong; reload the page and try again",
        )


class FormExpiredError(WebError):
    """A form posted from our own page with a stale CSRF token (a new login since): shown again, as typed."""

    def __init__(self) -> None:
        super().__init__(
            "画面が古くなっていたため、送信しませんでした。入力した内容はそのまま残してあります。確かめてからもう一度送信してください",
            "This page had expired, so nothing was sent. What you entered is kept below: check it and send it again",
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
            "You must change your password first",
        )


class CurrentPasswordWrongError(WebError):
    """A signed-in user typed a wrong current password: not a failed login, so not 401."""

    def __init__(self) -> None:
        super().__init__("現在のパスワードが正しくありません", "The current password is wrong")


_HTTP_MESSAGES: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "リクエストの形式が正しくありません", "Bad request"),
    401: ("unauthenticated", "ログインが必要です", "Please log in"),
    403: ("forbidden", "この操作は許可されていません", "Forbidden"),
    404: ("not_found", "ページまたはデータが見つかりません", "Not found"),
    405: ("method_not_allowed", "この URL ではこの操作を受け付けていません", "Method not allowed"),
    409: ("conflict", "現在の状態ではこの操作はできません", "Conflict with the current state"),
    413: ("payload_too_large", "送信された内容が大きすぎます", "Request body too large"),
    415: ("unsupported_media_type", "送信された形式には対応していません", "Unsupported media type"),
    422: ("invalid_request", "入力内容に誤りがあります", "Invalid input"),
    429: ("too_many_requests", "しばらく待ってから再度お試しください", "Too many requests"),
    500: (
        "internal_error",
        "内部エラーが発生しました。解決しない場合は受付番号を添えて基盤管理者に連絡してください",
        "Internal error; if it persists, tell the platform admin the request id",
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
        ja, en = _stale_state(error) if isinstance(error, InvalidTransition) else (error.ja, error.en)
        return Problem(status, code, ja, sentence(en), headers)
    return _http_problem(500, {})


def sentence(text: str) -> str:
    """English messages read as sentences: the first letter capitalised (the hub's own start in lower case)."""
    return text[:1].upper() + text[1:]


def _stale_state(exc: InvalidTransition) -> tuple[str, str]:
    """A 409 (an application or a grant already moved on) says what happened in words: someone else, or time."""
    return (
        "状態が変わったため、この操作はできません。ほかの人が先に処理したか、期間が過ぎた可能性があります。"
        f"画面を読み込み直して、いまの状態を確かめてください（{exc.ja}）",
        "This has changed in the meantime, so this step is no longer possible: someone else may have acted on "
        f"it first, or its period may have passed. Reload the page to see where it stands ({exc.en})",
    )


def _status_and_code(exc: RenkeiError) -> tuple[int, str]:
    """From the one table of errors (renkei.errors.ERRORS), which the CLI's exit codes come from too."""
    answer = answer_for(type(exc))
    return answer.http_status, answer.code or _HTTP_MESSAGES.get(answer.http_status, _HTTP_MESSAGES[400])[0]


def _http_problem(status: int, headers: dict[str, str]) -> Problem:
    code, ja, en = _HTTP_MESSAGES.get(status, _HTTP_MESSAGES[500 if status >= 500 else 400])
    kept = {k: v for k, v in headers.items() if k.lower() in ("allow", "retry-after")}
    return Problem(status, code, ja, en, kept)


def _validation_problem(exc: RequestValidationError) -> Problem:
    """Where the input is wrong and why, in both languages, never the input itself (it may hold a password)."""
    described = [field_error(error) for error in exc.errors()[:_MAX_REPORTED_FIELDS]]
    code, ja, en = _HTTP_MESSAGES[422]
    detail_ja = "。".join(d[0] for d in described)
    detail_en = "; ".join(d[1] for d in described)
    return Problem(422, code, f"{ja}：{detail_ja}", f"{en}: {detail_en}")


def field_error(error: Mapping[str, Any]) -> tuple[str, str]:
    """One validation error as a sentence that names the field (its label, and its location in English)."""
    location = tuple(error.get("loc", ()))
    name = next((str(p) for p in reversed(location) if isinstance(p, str)), "")
    label_ja, label_en = FIELD_LABELS.get(name, (name, name))
    where = ".".join(str(p) for p in location)
    context = error.get("ctx") or {}
    template_ja, template_en = _ERROR_TEXTS.get(str(error.get("type", "")), _ERROR_TEXTS["value_error"])
    if error.get("type") == "string_too_short" and context.get("min_length") == 1:
        template_ja, template_en = _ERROR_TEXTS["missing"]
    values = {k: v for k, v in context.items() if isinstance(v, int | float | str)}
    ja = template_ja.format(field=label_ja, **values)
    en = template_en.format(field=sentence(label_en), **values)
    return ja, f"{en} ({where})" if where else en


# The field names of the forms and JSON bodies, as the pages label them.
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "datasets": ("利用するデータセット", "datasets"),
    "dataset": ("データセット", "dataset"),
    "periods": ("基準日", "periods"),
    "all_periods": ("全期間", "all periods"),
    "purpose": ("目的", "purpose"),
    "outputs": ("想定する成果物", "intended outputs"),
    "use_start": ("利用開始日", "use from"),
    "use_end": ("利用終了日", "use until"),
    "row_level": ("個票閲覧", "row-level viewing"),
    "comment": ("コメント", "comment"),
    "reason": ("理由", "reason"),
    "login_id": ("利用者ID", "login ID"),
    "password": ("パスワード", "password"),
    "current_password": ("現在のパスワード", "current password"),
    "new_password": ("新しいパスワード", "new password"),
    "code": ("確認コード", "code"),
    "ticket": ("登録チケット", "enrollment ticket"),
    "assertion": ("職員証の応答", "staff card response"),
    "registration": ("職員証の登録応答", "staff card registration"),
    "response": ("職員証の応答", "staff card response"),
    "application_id": ("申請番号", "application number"),
    "part_id": ("審査の番号", "part number"),
    "grant_id": ("利用承認の番号", "grant number"),
    "release_id": ("公表物の番号", "release number"),
    "name": ("データセット名", "dataset name"),
    "sql": ("SQL", "SQL"),
    "chart": ("グラフ", "chart"),
    "format": ("形式", "format"),
    "body": ("送信内容", "request body"),
    "actor": ("利用者", "user"),
    "action": ("操作", "action"),
    "resource": ("対象", "resource"),
    "result": ("結果", "result"),
    "since": ("開始日", "from"),
    "until": ("終了日", "until"),
    # admin and auditor pages
    "display_name": ("氏名", "display name"),
    "role": ("役割", "role"),
    "department": ("所属部署", "department"),
    "department_name": ("部署名", "department name"),
    "terminal_name": ("端末名", "terminal name"),
    "terminal": ("端末名", "terminal name"),
    "month": ("点検する月", "month"),
}

# pydantic's error types → (日本語, English) with {field} and the error's context (min_length, le …).
_ERROR_TEXTS: dict[str, tuple[str, str]] = {
    "missing": ("「{field}」を入力してください", "{field} is required"),
    "blank": ("「{field}」を空白以外の文字で記入してください", "{field} must not be empty or only spaces"),
    "string_too_short": (
        "「{field}」は {min_length} 文字以上にしてください",
        "{field} needs at least {min_length} characters",
    ),
    "string_too_long": (
        "「{field}」は {max_length} 文字以内にしてください",
        "{field} must be at most {max_length} characters",
    ),
    "too_short": (
        "「{field}」を {min_length} つ以上選んでください",
        "Choose at least {min_length} for {field}",
    ),
    "too_long": ("「{field}」は {max_length} 個までです", "{field} allows at most {max_length}"),
    "int_parsing": ("「{field}」は整数で指定してください", "{field} must be a whole number"),
    "int_type": ("「{field}」は整数で指定してください", "{field} must be a whole number"),
    "int_from_float": ("「{field}」は整数で指定してください", "{field} must be a whole number"),
    "less_than_equal": ("「{field}」は {le} 以下にしてください", "{field} must be at most {le}"),
    "less_than": ("「{field}」は {lt} 未満にしてください", "{field} must be less than {lt}"),
    "greater_than_equal": ("「{field}」は {ge} 以上にしてください", "{field} must be at least {ge}"),
    "greater_than": ("「{field}」は {gt} より大きくしてください", "{field} must be greater than {gt}"),
    "date_parsing": (
        "「{field}」は日付（例: 2026-04-01）で指定してください",
        "{field} must be a date (e.g. 2026-04-01)",
    ),
    "date_from_datetime_parsing": (
        "「{field}」は日付（例: 2026-04-01）で指定してください",
        "{field} must be a date (e.g. 2026-04-01)",
    ),
    "date_type": (
        "「{field}」は日付（例: 2026-04-01）で指定してください",
        "{field} must be a date (e.g. 2026-04-01)",
    ),
    "bool_parsing": ("「{field}」は「はい」か「いいえ」で指定してください", "{field} must be yes or no"),
    "bool_type": ("「{field}」は「はい」か「いいえ」で指定してください", "{field} must be yes or no"),
    "string_type": ("「{field}」は文字で指定してください", "{field} must be text"),
    "list_type": ("「{field}」の形式が正しくありません", "{field} has the wrong form"),
    "dict_type": ("「{field}」の形式が正しくありません", "{field} has the wrong form"),
    "model_attributes_type": ("「{field}」の形式が正しくありません", "{field} has the wrong form"),
    "json_invalid": ("送信内容が JSON として読めません", "The request body is not valid JSON"),
    "literal_error": ("「{field}」は {expected} のどれかにしてください", "{field} must be one of {expected}"),
    "enum": ("「{field}」は {expected} のどれかにしてください", "{field} must be one of {expected}"),
    "extra_forbidden": ("項目「{field}」は受け付けていません", "{field} is not an accepted field"),
    "value_error": ("「{field}」の値が正しくありません", "{field} is not valid"),
    # renkei's own (hub/tables/request.py): the ward map is for a table by ward alone
    "chart_needs_wards": (
        "「{field}」の区の模式図は、区（住所_ward など）ひとつだけを軸にした集計表にしか使えません。"
        "軸を区だけにするか、ほかのグラフを選んでください",
        "{field}: the ward map is only for a table by ward alone (one dimension, a ward column such as 住所_ward);"
        " make the ward the only dimension, or choose another chart",
    ),
}


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
    if problem.status in SESSION_ENDED and _is_page_view(scope):
        response: Response = RedirectResponse(_login_url(scope), status_code=303)
    elif isinstance(exc, StepUpRequired) and not str(scope.get("path", "")).startswith("/api/"):
        # A page's approval or export: prove the factor again, then back to the page (renkei.web.pages.step_up).
        target = f"{STEP_UP_PATH}?{urlencode({'next': exc.next_path or '/home'})}"
        response = RedirectResponse(target, status_code=303)
    else:
        response = _render(scope, problem, request_id)
    if problem.status in SESSION_ENDED:
        clear_login_cookies(response)
    return response


def _is_page_view(scope: Scope) -> bool:
    """A browser asking to see a page (not the API, not a form post): it is sent to log in instead of a 401."""
    return scope.get("method") in ("GET", "HEAD") and wants_html(scope)


def _login_url(scope: Scope) -> str:
    """The login page; it says the session ended when the browser still held one (timeout, Back after logout)."""
    had_session = bool(HTTPConnection(scope).cookies.get(SESSION_COOKIE))
    return f"{LOGIN_PATH}?session=ended" if had_session else LOGIN_PATH


def _render(scope: Scope, problem: Problem, request_id: str) -> Response:
    response: Response
    if wants_html(scope):
        context = {"problem": problem, "user": None, "csrf_token": ""}
        response = render(HTTPConnection(scope), "error.html", context, problem.status)
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


# Forms that a stale CSRF token must not empty: (method, route path) → a function showing the form again as
# it was posted (set by create_app from renkei.web.pages.CSRF_RECOVERY). A cross-site post never qualifies.
FormRecovery = Callable[[Request], Awaitable[Response | None]]


async def _handle(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RequestValidationError) or (
        isinstance(exc, StarletteHTTPException) and exc.status_code == 400  # a body FastAPI could not parse
    ):
        guard: Callable[[Request], Awaitable[None]] | None = getattr(request.app.state, "guard_first", None)
        if guard is not None:
            try:
                await guard(request)
            except (StarletteHTTPException, RenkeiError) as refused:
                exc = refused
    if isinstance(exc, CsrfRejectedError) and request.headers.get("sec-fetch-site") != "cross-site":
        route = getattr(request.scope.get("route"), "path", "")
        recoveries: dict[tuple[str, str], FormRecovery] = getattr(request.app.state, "csrf_recovery", {})
        recover = recoveries.get((request.method, route))
        shown = await recover(request) if recover is not None and wants_html(request.scope) else None
        if shown is not None:
            return shown
    return error_response(request.scope, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Route every handled exception type to :func:`error_response` (unhandled ones: see security.py)."""
    for kind in (StarletteHTTPException, RequestValidationError, RenkeiError):
        app.add_exception_handler(kind, _handle)
