"""Imports every module that defines hub tables, so that Base.metadata is complete (for Alembic and tests)."""

from renkei.hub import assessment, audit, catalog
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
from renkei.hub.analysis import ledger, opendata

__all__ = [
    "applications",
    "assessment",
    "audit",
    "cards",
    "catalog",
    "grants",
    "ledger",
    "login",
    "opendata",
    "passwords",
    "people",
    "quotas",
    "sessions",
    "terminals",
    "throttle",
    "totp",
]
