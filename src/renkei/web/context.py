"""Who is calling: the portal's services, and the per-request :class:`Caller` built by the route guards.

Every route declares exactly one guard (``create_app`` refuses to start otherwise):

- :data:`Public` — no login needed (the login steps, card enrollment, the CSRF token, pages that lead there);
- :data:`SignedIn` — a valid session, from the terminal it was opened on, whose password is not due for change;
- :data:`SignedInAnyPassword` — the same, but allowed while a password change is due (to make the change);
- :data:`SteppedUp` — signed in, and the second factor proved within ``web.step_up_minutes``: approvals and
  exports (:mod:`renkei.hub.access.step_up` decides and records; a page is sent to ``/step-up?next=…``).

Each guard identifies the terminal from the client certificate, validates the session cookie against it
(:meth:`SessionStore.validate`: idle and absolute timeouts, disabled users, revoked terminals, another
terminal), and checks the CSRF token of every state-changing request. Authorization of what the route then
does is :func:`renkei.hub.access.authz.authorize`'s, called by the hub's services (:mod:`renkei.hub.services`),
to which :mod:`renkei.web.portal` hands the caller's hub, actor and clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, cast
from urllib.parse import urlsplit

from cryptography import x509
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from renkei.clock import Clock
from renkei.hub.access.authz import Actor
from renkei.hub.access.login import UNKNOWN_ACTOR, LoginService
from renkei.hub.access.repeats import RepeatedEvents
from renkei.hub.access.sessions import LoginSession, SessionRejectedError, SessionRow
from renkei.hub.access.step_up import StepUpService, require_step_up
from renkei.hub.access.terminals import Terminal, registered_terminal
from renkei.hub.audit_actions import AuditAction
from renkei.hub.home import Hub
from renkei.hub.workspace.pool import SessionWorkspaces
from renkei.web.cookies import CSRF_COOKIE, SESSION_COOKIE
from renkei.web.errors import PasswordChangeRequiredError, ProxyRefusedError, UnauthenticatedError
from renkei.web.security import enforce_csrf
from renkei.web.settings import WebSettings
from renkei.web.terminal import ClientOrigin, client_origin

MAX_ROUTE_LABEL = 256  # of the audit entry's 512 characters of resource


@dataclass
class Portal:
    """The services every request uses, built once by ``create_app``."""

    hub: Hub
    settings: WebSettings
    login: LoginService
    ca_certificate: x509.Certificate
    workspaces: SessionWorkspaces  # one per login session, kept between its requests
    repeats: RepeatedEvents = field(default_factory=RepeatedEvents)  # for events anyone can repeat at will

    @property
    def clock(self) -> Clock:
        return self.settings.clock

    @property
    def step_up(self) -> StepUpService:
        return StepUpService(self.login)

    @property
    def step_up_window(self) -> dt.timedelta:
        return self.settings.step_up_window

    def audit_repeated(
        self,
        action: AuditAction,
        reason: str,
        *,
        actor: str,
        terminal: str,
        client_addr: str,
        resource: str = "",
    ) -> None:
        """A refusal anyone can provoke at will: logged at its 1st, 2nd, 4th … occurrence per source and window
        (the source: action, reason, address, terminal and resource — a route, for the CSRF check)."""
        seen = self.repeats.occurrence((action, reason, client_addr, terminal, resource))
        if seen is None:
            return
        self.hub.audit.append(
            actor=actor,
            action=action,
            resource=resource,
            result="denied",
            reason=reason,
            terminal=terminal,
            client_addr=client_addr,
            details=seen.details(),
        )

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
    terminal: Terminal | None  # the registered, unrevoked terminal the request proves (None: none)
    certificate_terminal: Terminal | None  # the registered terminal the certificate names, even if revoked
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
    if origin.refusal:
        # Someone on the proxy's address without the proxy's secret: posing as the proxy (ASVS 16.3.3).
        portal.audit_repeated(
            AuditAction.WEB_PROXY,
            origin.refusal,
            actor=UNKNOWN_ACTOR,
            terminal="",
            client_addr=origin.address,
        )
        raise ProxyRefusedError()
    token = request.cookies.get(SESSION_COOKIE, "")
    with portal.db() as session:
        # One read for both checks on nearly every request: the session row comes with its own terminal,
        # which is the one the certificate names unless the token is used elsewhere (then a second query).
        row = portal.login.sessions.read_in(session, token) if token else None
        named = registered_terminal(
            session,
            origin.certificate,
            ca_certificate=portal.ca_certificate,
            clock=portal.clock,
            candidate=row.terminal if row is not None else None,
        )
    terminal = named if named is not None and named.active else None
    login = _validate(portal, token, terminal, named, origin, row) if token else None
    return Caller(
        portal=portal,
        request_id=str(request.scope.get("state", {}).get("request_id", "")),
        origin=origin,
        terminal=terminal,
        certificate_terminal=named,
        login=login,
        session_token=token,
        presession_token=request.cookies.get(CSRF_COOKIE, ""),
    )


def _validate(
    portal: Portal,
    token: str,
    terminal: Terminal | None,
    named: Terminal | None,
    origin: ClientOrigin,
    row: SessionRow | None,
) -> LoginSession | None:
    try:
        return portal.login.sessions.validate(token, terminal=terminal, read=row)
    except SessionRejectedError as exc:
        where = named.name if named is not None else ""
        if exc.reason == "unknown":
            # A made-up, stolen-and-ended or replayed token: anyone can send them by the thousand.
            portal.audit_repeated(
                AuditAction.SESSION_REJECTED,
                exc.reason,
                actor=UNKNOWN_ACTOR,
                terminal=where,
                client_addr=origin.address,
            )
            return None
        # A real session refused (another terminal, a timeout, a disabled user, a revoked terminal): the
        # session row is gone after this, so each one is logged once, under the session's own user.
        details: dict[str, object] = {"session_id": exc.session_id, "session_terminal": exc.session_terminal}
        portal.hub.audit.append(
            actor=exc.login_id or UNKNOWN_ACTOR,
            action=AuditAction.SESSION_REJECTED,
            resource=f"user/{exc.login_id}" if exc.login_id else "",
            result="denied",
            reason=exc.reason,
            terminal=where,
            client_addr=origin.address,
            details={k: v for k, v in details.items() if v},
        )
        return None


async def public(request: Request) -> Caller:
    caller = await run_in_threadpool(identify_caller, request)
    await enforce_csrf(request, caller.login, caller.presession_token, _csrf_recorder(caller, request))
    request.state.guarded = True
    return caller


async def signed_in_any_password(request: Request) -> Caller:
    caller = await run_in_threadpool(identify_caller, request)
    if caller.login is None:
        raise UnauthenticatedError()
    await enforce_csrf(request, caller.login, caller.presession_token, _csrf_recorder(caller, request))
    request.state.guarded = True
    return caller


async def guard_before_validation(request: Request) -> None:
    """Run the route's guard when the body was refused before it could run (FastAPI parses a JSON body before
    any dependency): a caller without a session or CSRF token hears 401/403, not which fields are wrong, and
    the refusal is audited as the guard audits it (found by the attack suite, tests/web/test_schemathesis.py)."""
    if getattr(request.state, "guarded", False):
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    for dependency in getattr(dependant, "dependencies", []):
        if dependency.call in GUARDS:
            await dependency.call(request)
            return


async def signed_in(request: Request) -> Caller:
    caller = await signed_in_any_password(request)
    login = caller.signed_in
    if login.password_change_required:
        await run_in_threadpool(
            caller.hub.audit.append,
            actor=login.login_id,
            action=AuditAction.SESSION_PASSWORD_CHANGE_REQUIRED,
            resource=route_label(request),
            result="denied",
            reason="password_change_required",
            terminal=login.terminal_name,
            client_addr=caller.client_addr,
            details={"session_id": login.id},
        )
        raise PasswordChangeRequiredError()
    return caller


async def stepped_up(request: Request) -> Caller:
    """Signed in, with a fresh proof of the second factor (an approval, an export); else ``StepUpRequired``."""
    caller = await signed_in(request)
    next_path = ""
    if not request.url.path.startswith("/api/"):  # a page: back to the page the form was on
        form = await request.form()
        posted = form.get("next")
        next_path = local_path(posted if isinstance(posted, str) else "") or "/home"
    login = caller.signed_in
    await run_in_threadpool(
        require_step_up,
        caller.hub.audit,
        login,
        now=caller.clock.now(),
        window=caller.portal.step_up_window,
        resource=route_label(request),
        client_addr=caller.client_addr,
        next_path=next_path,
    )
    return caller


def route_label(request: Request) -> str:
    """The route a refusal names in the audit log: the method and the path as asked, each path parameter put back
    as its name (``POST /api/v1/parts/{part_id}/approve``), so the entry names the route as authz_matrix.yaml does."""
    names = {str(value): f"{{{name}}}" for name, value in request.path_params.items()}
    path = "/".join(names.get(segment, segment) for segment in request.url.path.split("/"))
    return f"{request.method} {path}"[:MAX_ROUTE_LABEL]


def local_path(candidate: str) -> str:
    """``candidate`` if it is a path of this portal (``/…``, no scheme, host or backslash), else ""."""
    if not candidate.startswith("/") or candidate.startswith("//") or len(candidate) > 512:
        return ""
    if any(c in candidate for c in "\\\r\n\t") or not candidate.isprintable():
        return ""
    parts = urlsplit(candidate)
    return candidate if not parts.scheme and not parts.netloc else ""


def _csrf_recorder(caller: Caller, request: Request) -> Callable[[str], None]:
    """A refused CSRF check is a bypass attempt: on the record (ASVS v5.0.0-16.3.3). With a session, every
    refusal, under the session's user; without one (a login form, anyone's script), as a repeatable refusal
    (1st, 2nd, 4th … per source and window), so that nobody can grow the log at will."""
    resource = route_label(request)

    def record(reason: str) -> None:
        login = caller.login
        if login is None:
            caller.portal.audit_repeated(
                AuditAction.WEB_CSRF,
                reason,
                actor=caller.actor_name,
                terminal=caller.terminal_name,
                client_addr=caller.client_addr,
                resource=resource,
            )
            return
        caller.portal.hub.audit.append(
            actor=login.login_id,
            action=AuditAction.WEB_CSRF,
            resource=resource,
            result="denied",
            reason=reason,
            terminal=caller.terminal_name,
            client_addr=caller.client_addr,
            details={"session_id": login.id},
        )

    return record


Public = Annotated[Caller, Depends(public)]
SignedIn = Annotated[Caller, Depends(signed_in)]
SignedInAnyPassword = Annotated[Caller, Depends(signed_in_any_password)]
SteppedUp = Annotated[Caller, Depends(stepped_up)]
GUARDS = (public, signed_in, signed_in_any_password, stepped_up)
