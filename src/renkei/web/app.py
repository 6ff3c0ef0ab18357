"""The portal's application factory: :func:`create_app` (served by ``renkei serve``, see :mod:`renkei.cli.web`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from renkei import __version__
from renkei.hub.access.cards import CardSettings
from renkei.hub.access.login import LoginService
from renkei.hub.access.repeats import RepeatedEvents
from renkei.hub.access.terminals import load_ca_certificate
from renkei.hub.home import Hub
from renkei.hub.workspace.pool import SessionWorkspaces
from renkei.web import api, pages
from renkei.web.context import GUARDS, Portal, guard_before_validation
from renkei.web.errors import install_error_handlers
from renkei.web.methods import AllowedMethods
from renkei.web.security import SecurityMiddleware
from renkei.web.settings import WebSettings

STATIC = Path(__file__).parent / "static"


def create_app(hub_home: Path, settings: WebSettings) -> FastAPI:
    """The portal for the hub at ``hub_home``. Refuses to start without the hub's audit key or terminal CA."""
    hub = Hub(hub_home)
    ca_certificate = load_ca_certificate(hub_home)  # without it no terminal can be recognised: fail closed
    login = LoginService(
        hub.engine,
        hub.audit,  # loads the audit signing key now: a missing key stops the start, not a later request
        passwords=settings.passwords,
        card_settings=settings.card_settings or CardSettings.from_settings(hub.settings.webauthn),
        timeouts=hub.settings.sessions,
        kek=hub.kek,  # opens the TOTP secrets; a missing KEK stops the start
        clock=settings.clock,
    )
    app = FastAPI(
        title="renkei 庁内データ連携基盤 API",
        version=__version__,
        docs_url=None,  # no public documentation endpoints (ASVS v5.0.0-13.4.5); see /api/v1/openapi.json
        redoc_url=None,
        openapi_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    workspaces = SessionWorkspaces(
        hub,
        settings.clock,
        max_workspaces=settings.max_workspaces,
        idle=dt.timedelta(seconds=settings.workspace_idle_seconds),
    )
    app.state.portal = Portal(
        hub=hub,
        settings=settings,
        login=login,
        ca_certificate=ca_certificate,
        repeats=RepeatedEvents(settings.clock),
        workspaces=workspaces,
    )
    app.state.csrf_recovery = pages.CSRF_RECOVERY
    install_error_handlers(app)
    app.state.guard_first = guard_before_validation  # the guard answers before the body's validation
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(AllowedMethods, router=app.router)  # inside SecurityMiddleware: its headers apply
    app.add_middleware(
        SecurityMiddleware, max_body_bytes=settings.max_body_bytes, hsts_max_age=settings.hsts_max_age
    )
    check_guards(app)
    return app


def route_table(app: FastAPI) -> list[tuple[str, str, BaseRoute]]:
    """Every (method, path, route) the app serves, flattened across included routers; HEAD is implied by GET."""
    table: list[tuple[str, str, BaseRoute]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            table.append(("GET", f"{route.path}/{{path}}", route))
            continue
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                table.append((method, str(context.path), route))
    return table


def check_guards(app: FastAPI) -> None:
    """Deny by default, structurally: every route must declare exactly one guard of :mod:`renkei.web.context`."""
    for method, path, route in route_table(app):
        if not isinstance(route, APIRoute):
            continue
        guards = [d for d in route.dependant.dependencies if d.call in GUARDS]
        if len(guards) != 1:
            raise RuntimeError(f"route {method} {path} must declare exactly one guard")
