"""The hub's catalog database: SQLite in the hub's home by default, PostgreSQL by the setting ``database.url``
(``RENKEI_DATABASE_URL``, or ``[database] url`` in hub.toml; renkei.hub.settings).

All hub tables (catalog, audit log, people and permissions) share :class:`Base`; Alembic migrations in
``renkei/hub/migrations`` create and upgrade them.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from renkei.errors import RenkeiError
from renkei.faults import note_database
from renkei.hub.settings import HubSettings, load_settings

DATABASE_URL_ENV = "RENKEI_DATABASE_URL"  # the variable of the setting database.url
CATALOG_FILE = "catalog.db"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
SQLITE_POOL_SIZE = 20  # connections kept open per engine (SQLite: a file handle and a page cache each)
SQLITE_MAX_OVERFLOW = 100  # more than the portal's threads can hold (40 threads, 2 connections each at most)
SQLITE_BUSY_TIMEOUT = 30  # seconds a writer waits for SQLite's write lock before "database is locked"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def database_url(home: Path, settings: HubSettings | None = None) -> str:
    """The setting ``database.url`` (``settings``, else loaded from ``home``), else the home's SQLite file."""
    url = (settings or load_settings(home)).database.url
    return url or f"sqlite:///{home / CATALOG_FILE}"


# Connections to a server database (PostgreSQL): SQLAlchemy's default (5 + 10 overflow) ran out under the load
# test — the portal serves up to 40 requests at once on its thread pool (anyio's default), and the workspaces'
# threads (record keys, grant checks, the sweeper) open sessions of their own — so requests waited 30 s for a
# connection and failed (TimeoutError, docs/reliability.md "Load"). Beyond the 10 kept, connections are closed
# when returned.
POOL_SIZE = 10
POOL_OVERFLOW = 60


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings every hub process needs (SQLite: foreign keys, WAL, a busy timeout; files
    0600)."""
    note_database(url)  # a lost connection or a full disk is reported naming this database
    if url.startswith("sqlite"):
        if "poolclass" not in kwargs and ":memory:" not in url:
            # The portal's worker threads (AnyIO: 40) each hold a connection or two: with the default pool
            # (5 + 10 overflow) 20 concurrent requests opened and closed a connection (and ran the pragmas) on
            # most requests, and the audit log's group commit, whose committer takes a connection while the
            # waiting threads hold theirs, could wait for a free one until the pool's 30 s timeout.
            kwargs = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_MAX_OVERFLOW, **kwargs}
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT}, **kwargs)
        make_sqlite_files_private(engine.url.database)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, **kwargs}
    return create_engine(url, pool_pre_ping=True, **options)


def make_sqlite_files_private(database: str | None) -> None:
    """Create the catalog file 0600 before SQLite does (it would use 0644 less the umask) and tighten one made
    by an older hub. SQLite gives the ``-wal``, ``-shm`` and ``-journal`` files the database file's mode, so
    they follow; any left from before are tightened too. The catalog holds the users, sessions and TOTP data.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite reports the missing folder itself
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))  # an empty file is a new database to SQLite
        for candidate in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)):
            if candidate.exists() and stat.S_IMODE(candidate.stat().st_mode) != 0o600:
                candidate.chmod(0o600)
    except PermissionError as exc:
        raise RenkeiError(
            f"カタログ {path} のアクセス権を 0600 にできません（所有者で実行してください）",
            f"cannot make the catalog {path} private (mode 0600): {exc.strerror}; run as its owner",
        ) from None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


def begin_write(session: Session) -> None:
    """Begin ``session``'s transaction holding the database's write lock (SQLite: ``BEGIN IMMEDIATE``).

    A transaction that reads, then writes, can fail on SQLite with "database is locked" when another process
    wrote in between; taking the lock first makes it wait its turn (up to the busy timeout) instead. Call it
    with no write pending in the session. PostgreSQL locks rows as they are written: nothing to do.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


_WRITE_TURNS: dict[str, threading.RLock] = {}
_WRITE_TURNS_GUARD = threading.Lock()


@contextmanager
def write_turn(engine: Engine) -> Iterator[None]:
    """Hold this process's turn to write to ``engine``'s SQLite file for the block (PostgreSQL: no-op).

    SQLite lets one writer in at a time; the others wait in its busy handler, which polls with sleeps that grow
    to 100 ms, so under many concurrent writers (every page view appends an audit entry) a waiter often sleeps
    through the moments the lock is free and the latency tail grows to seconds. Writers of one process queue on
    this lock instead and are woken as soon as the previous one commits. Other processes (the CLI, a second
    server) still meet SQLite's own lock. Re-entrant (a nested write in the same thread waits on SQLite, as it
    did before); after the busy timeout the block runs anyway and SQLite decides.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with _WRITE_TURNS_GUARD:
        turn = _WRITE_TURNS.setdefault(database, threading.RLock())
    acquired = turn.acquire(timeout=SQLITE_BUSY_TIMEOUT)
    try:
        yield
    finally:
        if acquired:
            turn.release()


@contextmanager
def writing(session: Session) -> Iterator[None]:
    """One write transaction, holding the database's write lock from its start, committed when the block ends.

    It starts by ending whatever the session read before (each write phase of an import commits), so that what
    other importers committed meanwhile is seen.
    """
    session.rollback()
    begin_write(session)
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def is_disconnect(exc: BaseException) -> bool:
    """The database connection was lost (server restarted, backend terminated, network): the statement did not
    run, or its transaction was rolled back, and a new connection may succeed."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def sqlite_rollback(conn: Connection) -> None:
    """Roll back ``conn``'s transaction; SQLite may already have rolled back by itself (e.g. disk full)."""
    if conn.connection.dbapi_connection is not None and conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("ROLLBACK")


@contextmanager
def consistent_read(engine: Engine, *, read_only: bool = False) -> Iterator[Connection]:
    """One consistent snapshot of the database for every query in the block, even while others write
    (SQLite: one deferred transaction; PostgreSQL: REPEATABLE READ, ``read_only`` as asked)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                sqlite_rollback(conn)
            return
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=read_only)
        with conn.begin():
            yield conn
