"""Response headers, request limits, the last-resort error handler, and the CSRF check.

:class:`SecurityMiddleware` wraps the whole application, so every response — pages, API, static files,
errors, even a crash — carries the same headers (ASVS v5.0.0-3.4.1–3.4.6, 14.3.2):

- ``Content-Security-Policy``: only our own scripts, styles and images; no plugins, no ``<base>``, no framing;
  forms post only to us. There is no inline script: data for scripts travels in
  ``<script type="application/json">`` blocks, which are not executed.
- ``Strict-Transport-Security``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``, ``Cross-Origin-Opener-Policy``/``-Resource-Policy: same-origin``.
- ``Cache-Control: no-store`` on everything but the vendored static files (pages and API carry personal data).
- ``X-Request-ID``: a fresh random id per request (never taken from the client), also in error bodies and logs
  (:class:`RequestIds`: 64 bits of the OS's CSPRNG each, drawn 256 at a time).

It refuses bodies larger than ``max_body_bytes`` (413) and turns any exception that escaped the app into the
canonical 500 (:func:`renkei.web.errors.error_response`), so no traceback ever reaches a client.

CSRF (ASVS 3.5.1): every request with an unsafe method must carry the caller's token, in the
``X-CSRF-Token`` header (API) or the ``csrf_token`` form field (pages), compared in constant time with the
session's token (after login) or the pre-login cookie's (double submit, before login). A request the browser
marks ``Sec-Fetch-Site: cross-site`` is refused outright. GET and HEAD never change anything.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from collections.abc import Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renkei.hub.access.sessions import LoginSession
from renkei.web.errors import CsrfRejectedError, error_response, logger

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATIC_PREFIX = "/static/"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def security_headers(path: str, request_id: str, hsts_max_age: int) -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Strict-Transport-Security": f"max-age={hsts_max_age}; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "no-cache" if path.startswith(STATIC_PREFIX) else "no-store",
        "X-Request-ID": request_id,
    }


class RequestIds:
    """Fresh request ids: 16 hex digits (64 bits of ``secrets.token_bytes``) each, never one twice.

    The random bytes are drawn for :data:`BATCH` ids at once: each draw is a system call, which on the event
    loop releases the GIL and waits for it again behind the worker threads (3.9 % of the loop's time under the
    20-user page load, one draw per request). Safe across threads (``deque.popleft`` is atomic).
    """

    BATCH = 256
    DIGITS = 16

    def __init__(self) -> None:
        self._ids: deque[str] = deque()

    def next(self) -> str:
        try:
            return self._ids.popleft()
        except IndexError:
            drawn = secrets.token_bytes(self.BATCH * self.DIGITS // 2).hex()
            fresh = [drawn[i : i + self.DIGITS] for i in range(0, len(drawn), self.DIGITS)]
            self._ids.extend(fresh[1:])
            return fresh[0]


class SecurityMiddleware:
    """Outermost layer of the app: headers on every response, body limit, last-resort error handler."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, hsts_max_age: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.hsts_max_age = hsts_max_age
        self.request_ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.request_ids.next()
        scope.setdefault("state", {})["request_id"] = request_id
        extra = security_headers(str(scope.get("path", "")), request_id, self.hsts_max_age)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        try:
            if self._declared_too_large(scope):
                raise HTTPException(413)
            await self.app(scope, self._limited(receive), send_with_headers)
        except Exception as exc:
            if started:  # too late for an error page; the client sees a cut-off response
                logger.error("error after the response started, request %s", request_id, exc_info=exc)
                return
            await error_response(scope, exc)(scope, receive, send_with_headers)

    def _declared_too_large(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                return not value.isdigit() or int(value) > self.max_body_bytes
        return False

    def _limited(self, receive: Receive) -> Receive:
        """``receive``, refusing a body (e.g. chunked, without Content-Length) once it exceeds the limit."""
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413)
            return message

        return limited


# --- CSRF -----------------------------------------------------------------------------------------------------


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


async def submitted_csrf_token(request: Request) -> str:
    """The token the request carries: the header, else (for forms) the ``csrf_token`` field."""
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def enforce_csrf(
    request: Request, login: LoginSession | None, presession_token: str, record: Callable[[str], None]
) -> None:
    """Refuse (403) a state-changing request without the caller's CSRF token; ``record`` logs the refusal."""
    if request.method in SAFE_METHODS:
        return
    reason = ""
    if request.headers.get("sec-fetch-site") == "cross-site":
        reason = "cross_site"
    else:
        candidate = await submitted_csrf_token(request)
        if not candidate:
            reason = "csrf_missing"
        elif not _matches(candidate, login, presession_token):
            reason = "csrf_mismatch"
    if reason:
        await run_in_threadpool(record, reason)
        raise CsrfRejectedError()


def _matches(candidate: str, login: LoginSession | None, presession_token: str) -> bool:
    if login is not None:
        return login.csrf_ok(candidate)
    if not presession_token:
        return False
    return hmac.compare_digest(presession_token.encode("utf-8"), candidate.encode("utf-8", "replace"))
