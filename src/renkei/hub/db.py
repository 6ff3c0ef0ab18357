"""The hub's catalog database: SQLite in the hub's home by default, PostgreSQL via ``RENKEI_DATABASE_URL``.

All hub tables (catalog, audit log, people and permissions) share :class:`Base`; Alembic migrations in
``renkei/hub/migrations`` create and upgrade them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker

DATABASE_URL_ENV = "RENKEI_DATABASE_URL"
CATALOG_FILE = "catalog.db"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def database_url(home: Path) -> str:
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{home / CATALOG_FILE}"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings every hub process needs (SQLite: foreign keys, WAL, a busy timeout)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
