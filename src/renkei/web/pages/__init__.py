"""Server-rendered pages (Japanese first; ``?lang=en`` for English). Forms post with the CSRF token."""

from __future__ import annotations

from fastapi import APIRouter

from renkei.web.pages import applications, grants, login

router = APIRouter(include_in_schema=False)
for module in (login, applications, grants):
    router.include_router(module.router)
