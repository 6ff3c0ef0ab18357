"""Imports every module that defines hub tables, so that Base.metadata is complete (for Alembic and tests)."""

from renkei.hub import audit, catalog
from renkei.hub.access import people

__all__ = ["audit", "catalog", "people"]
