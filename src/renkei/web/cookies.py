"""The portal's cookies: all ``__Host-`` prefixed, Secure, HttpOnly, SameSite=Strict, Path=/ (ASVS v5.0.0-3.3).

None holds personal data. Each holds one random token whose meaning is kept server-side:

- :data:`SESSION_COOKIE`: the login session (its SHA-256 is in ``user_sessions``); no Max-Age, because the
  server enforces the idle and absolute timeouts on every request, not the browser.
- :data:`PENDING_COOKIE`: between the password step and the card/TOTP step (five minutes, single use).
- :data:`ENROLL_COOKIE`: a staff-card registration ceremony in progress (five minutes, single use).
- :data:`CSRF_COOKIE`: before login only, the anti-CSRF token of the login and enrollment forms (double submit).
"""

from __future__ import annotations

from starlette.responses import Response

SESSION_COOKIE = "__Host-renkei_session"
PENDING_COOKIE = "__Host-renkei_pending"
ENROLL_COOKIE = "__Host-renkei_enroll"
CSRF_COOKIE = "__Host-renkei_csrf"
CEREMONY_SECONDS = 300


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def clear_cookie(response: Response, name: str) -> None:
    # A __Host- cookie is only replaced by one with the same attributes, Secure included.
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")


def clear_login_cookies(response: Response) -> None:
    """After a 401 or a logout: the browser forgets the session and any half-done login."""
    clear_cookie(response, SESSION_COOKIE)
    clear_cookie(response, PENDING_COOKIE)


def start_session(response: Response, token: str) -> None:
    """A login succeeded: the new session token replaces whatever the browser held (rotation)."""
    set_cookie(response, SESSION_COOKIE, token)
    clear_cookie(response, PENDING_COOKIE)
    clear_cookie(response, CSRF_COOKIE)  # from now on the session's own CSRF token counts


def end_session(response: Response) -> None:
    clear_login_cookies(response)
