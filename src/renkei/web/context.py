"""Who is calling: the portal's services, and the per-request :class:`Caller` built by the route guards.

Every route declares exactly one guard (``create_app`` refuses to start otherwise):

- :data:`Public` — no login needed (the login steps, card enrollment, the CSRF token, pages that lead there);
- :data:`SignedIn` — a valid session, from the terminal it was opened on, whose password is not due for change;
- :data:`SignedInAnyPassword` — the same, but allowed while a password change is due (to make the change).

Each guard identifies the terminal from the client certificate, validates the session cookie against it
(:meth:`SessionStore.validate`: idle and absolute timeouts, disabled users, revoked terminals, another
terminal), and checks the CSRF token of every state-changing request. Authorization of what the route then
does is :func:`renkei.hub.access.authz.authorize`'s, called by the hub's services (:mod:`renkei.hub.services`),
to which :mod:`renkei.web.portal` hands the caller's hub, actor and clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, cast

from cryptography import x509
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from renkei.clock import Clock
from renkei.hub.access.authz import Actor
from renkei.hub.access.login import UNKNOWN_ACTOR, LoginService
from renkei.hub.access.sessions import LoginSession, SessionRejectedError
from renkei.hub.access.terminals import Terminal, identify_terminal
from renkei.hub.audit_actions import AuditAction
from renkei.hub.home import Hub
from renkei.web.cookies import CSRF_COOKIE, SESSION_COOKIE
from renkei.web.errors import PasswordChangeRequiredError, UnauthenticatedError
from renkei.web.security import enforce_csrf
from renkei.web.settings import WebSettings
from renkei.web.terminal import ClientOrigin, client_origin


@dataclass
class Portal:
    """The services every request uses, built once by ``create_app``."""

    hub: Hub
    settings: WebSettings
    login: LoginService
    ca_certificate: x509.Certificate

    @property
    def clock(self) -> Clock:
        return self.settings.clock

    @contextmanager
    def db(self) -> Iterator[Session]:
        with self.hub.session() as session:
            yield session


def portal_of(request: Request) -> Portal:
    return cast(Portal, request.app.state.portal)


@dataclass(frozen=True)
class Caller:
    """The request's terminal, address and session (if any), and the tokens its cookies held."""

    portal: Portal
    request_id: str
    origin: ClientOrigin
    terminal: Terminal | None
    login: LoginSession | None
    session_token: str  # the session cookie as sent ("" if none), even when it opened no session
    presession_token: str  # the pre-login CSRF cookie ("" if none)

    @property
    def client_addr(self) -> str:
        return self.origin.address

    @property
    def hub(self) -> Hub:
        return self.portal.hub

    @property
    def clock(self) -> Clock:
        return self.portal.clock

    @property
    def actor(self) -> Actor:
        """The actor for authorize(); only for signed-in callers (the guards make sure)."""
        if self.login is None:
            raise UnauthenticatedError()
        return Actor.for_session(self.login, client_addr=self.client_addr)

    @property
    def signed_in(self) -> LoginSession:
        if self.login is None:
            raise UnauthenticatedError()
        return self.login

    @property
    def actor_name(self) -> str:
        return self.login.login_id if self.login is not None else UNKNOWN_ACTOR

    @property
    def terminal_name(self) -> str:
        return self.terminal.name if self.terminal is not None else ""

    @property
    def csrf_token(self) -> str:
        """The token this caller's forms must send back: the session's, or before login the cookie's."""
        return self.login.csrf_token if self.login is not None else self.presession_token


def identify_caller(request: Request) -> Caller:
    """Terminal from the certificate, then the session from the cookie (blocking: run in a thread)."""
    portal = portal_of(request)
    origin = client_origin(request.scope, portal.settings)
    with portal.db() as session:
        terminal = identify_terminal(
            session, origin.certificate, ca_certificate=portal.ca_certificate, clock=portal.clock
        )
    token = request.cookies.get(SESSION_COOKIE, "")
    login = _validate(portal, token, terminal, origin) if token else None
    return Caller(
        portal=portal,
        request_id=str(request.scope.get("state", {}).get("request_id", "")),
        origin=origin,
        terminal=terminal,
        login=login,
        session_token=token,
        presession_token=request.cookies.get(CSRF_COOKIE, ""),
    )


def _validate(
    portal: Portal, token: str, terminal: Terminal | None, origin: ClientOrigin
) -> LoginSession | None:
    try:
        return portal.login.sessions.validate(token, terminal=terminal)
    except SessionRejectedError as exc:
        # "unknown" is an old cookie; anything else (a token from another terminal, a disabled user …) is
        # worth an entry. The session row is gone after this, so each one is logged once.
        if exc.reason != "unknown":
            portal.hub.audit.append(
                actor=UNKNOWN_ACTOR,
                action=AuditAction.SESSION_REJECTED,
                result="denied",
                reason=exc.reason,
                terminal=terminal.name if terminal is not None else "",
                client_addr=origin.address,
            )
        return None


async def public(request: Request) -> Caller:
    caller = await run_in_threadpool(identify_caller, request)
    await enforce_csrf(request, caller.login, caller.presession_token, _csrf_recorder(caller, request))
    return caller


async def signed_in_any_password(request: Request) -> Caller:
    caller = await run_in_threadpool(identify_caller, request)
    if caller.login is None:
        raise UnauthenticatedError()
    await enforce_csrf(request, caller.login, caller.presession_token, _csrf_recorder(caller, request))
    return caller


async def signed_in(request: Request) -> Caller:
    caller = await signed_in_any_password(request)
    if caller.signed_in.password_change_required:
        raise PasswordChangeRequiredError()
    return caller


def _csrf_recorder(caller: Caller, request: Request) -> Callable[[str], None]:
    """A refused CSRF check is a bypass attempt: on the record (ASVS v5.0.0-16.3.3)."""
    route = getattr(request.scope.get("route"), "path", "")

    def record(reason: str) -> None:
        caller.portal.hub.audit.append(
            actor=caller.actor_name,
            action=AuditAction.WEB_CSRF,
            resource=f"{request.method} {route}",
            result="denied",
            reason=reason,
            terminal=caller.terminal_name,
            client_addr=caller.client_addr,
        )

    return record


Public = Annotated[Caller, Depends(public)]
SignedIn = Annotated[Caller, Depends(signed_in)]
SignedInAnyPassword = Annotated[Caller, Depends(signed_in_any_password)]
GUARDS = (public, signed_in, signed_in_any_password)
