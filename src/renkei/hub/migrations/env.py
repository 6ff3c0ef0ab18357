"""Alembic environment: runs on the connection renkei passes in (see renkei.hub.migrate)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.types import TypeDecorator

from renkei.hub import models  # noqa: F401  (registers every table on Base.metadata)
from renkei.hub.db import Base


def render_item(kind: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """Render custom column types as the plain SQLAlchemy type they store, so migrations import nothing of ours."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=Base.metadata, render_as_batch=True, render_item=render_item
)
with context.begin_transaction():
    context.run_migrations()
