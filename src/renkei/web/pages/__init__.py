"""Server-rendered pages (Japanese first; ``?lang=en`` for English). Forms post with the CSRF token."""

from __future__ import annotations

from fastapi import APIRouter

from renkei.web.errors import FormRecovery
from renkei.web.pages import (
    admin,
    applications,
    audit,
    catalog,
    dashboards,
    exports,
    grants,
    home,
    login,
    step_up,
    workspace,
)

router = APIRouter(include_in_schema=False)
for module in (
    login,
    home,
    catalog,
    applications,
    grants,
    audit,
    admin,
    workspace,
    step_up,
    exports,
    dashboards,
):
    router.include_router(module.router)

# Forms shown again as posted when only their CSRF token was stale (renkei.web.errors.FormRecovery).
CSRF_RECOVERY: dict[tuple[str, str], FormRecovery] = {("POST", "/applications"): applications.recover_form}
