"""Which methods a path accepts: ``OPTIONS`` answers with them, and a 405 names all of them (RFC 9110 §9.3.7,
§10.2.1, §15.5.6).

Starlette's router stops at the first route whose path matches, so on a path served by two routes (``GET`` and
``POST /api/v1/applications``) its 405 named only the first route's method, and ``OPTIONS``, which no route
declares, got that wrong 405 as well. This layer asks every route. A path no route serves is left to the
router (404).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from renkei.web.errors import error_response

STATIC_METHODS = frozenset({"GET", "HEAD"})  # what StaticFiles serves


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> frozenset[str]:
    """The methods of every route whose path matches the request's, plus ``OPTIONS``; empty if none does."""
    path = _route_path(scope)
    methods: set[str] = set()
    for context in iter_route_contexts(routes):  # across included routers, with their prefixes
        route = context.original_route
        if isinstance(route, Mount):
            if route.matches(scope)[0] is not Match.NONE:
                methods |= STATIC_METHODS
            continue
        regex = getattr(context, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(context.methods or ())
    return frozenset(methods | {"OPTIONS"}) if methods else frozenset()


def _route_path(scope: Scope) -> str:
    """The path the routes see: without the ``root_path`` a proxy may have mounted the app under."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def allow_header(methods: Iterable[str]) -> str:
    return ", ".join(sorted(methods))


class AllowedMethods:
    """Answers ``OPTIONS`` (204 with ``Allow``) and a method no route of the path takes (405 with ``Allow``)."""

    def __init__(self, app: ASGIApp, *, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = allowed_methods(self.router.routes, scope)
        method = scope["method"]
        if not allowed or (method in allowed and method != "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {"Allow": allow_header(allowed)}
        if method == "OPTIONS":
            response = Response(status_code=204, headers=headers)
        else:
            response = error_response(scope, HTTPException(405, headers=headers))
        await response(scope, receive, send)
