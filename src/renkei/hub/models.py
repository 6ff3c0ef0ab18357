"""Imports every module that defines hub tables, so that Base.metadata is complete (for Alembic and tests)."""

from renkei.hub import audit, catalog

__all__ = ["audit", "catalog"]
