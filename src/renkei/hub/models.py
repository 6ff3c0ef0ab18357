"""Imports every module that defines hub tables, so that Base.metadata is complete (for Alembic and tests)."""

from renkei.hub import audit, catalog
from renkei.hub.analysis import ledger
from renkei.hub.access import (
    applications,
    cards,
    grants,
    login,
    passwords,
    people,
    quotas,
    sessions,
    terminals,
    throttle,
    totp,
)

__all__ = [
    "ledger",
    "applications",
    "audit",
    "cards",
    "catalog",
    "grants",
    "login",
    "passwords",
    "people",
    "quotas",
    "sessions",
    "terminals",
    "throttle",
    "totp",
]
