"""Alembic environment: runs on the connection renkei passes in (see renkei.hub.migrate)."""

from __future__ import annotations

from alembic import context

from renkei.hub import models  # noqa: F401  (registers every table on Base.metadata)
from renkei.hub.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
