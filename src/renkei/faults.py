"""Faults of the machine and the database, as the renkei errors they amount to (issue 9, item 14).

A full disk, a full temporary directory, a lost or refused database connection, a database that stays locked:
none is a bug, and none should reach a user as a Python traceback. :func:`as_renkei_error` turns each into a
:class:`~renkei.errors.NoSpaceError`, :class:`~renkei.errors.DatabaseUnavailableError` or
:class:`~renkei.errors.DatabaseBusyError` (their exit codes and HTTP statuses are in ``renkei.errors.ERRORS``);
the CLI's one choke point (``renkei.cli.common.fail``) and the portal's error renderer both call it. Anything it
does not recognise stays what it is: a bug.

The user-facing ``ja``/``en`` say what happened and what to do, and nothing of the system (the portal shows
them); the CLI's rendering adds ``detail``: the database, the driver's own words, the file.

SQLAlchemy is never imported here: an exception can only be one of its classes if it is loaded already.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from renkei.errors import DatabaseBusyError, DatabaseUnavailableError, Location, NoSpaceError, RenkeiError

NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# SQLite primary result codes (the low byte of an extended code)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 6, 10, 13, 14
# PostgreSQL SQLSTATEs: a conflict or a wait that ran out, and the server's own disk
PG_BUSY = {"40001", "40P01", "55P03", "57014", "53300"}
PG_DISK_FULL = "53100"
PG_GONE_CLASSES = ("08", "57P")  # connection exceptions; admin shutdown, crash shutdown, cannot connect now


def as_renkei_error(exc: BaseException) -> RenkeiError | None:
    """``exc`` if it is a renkei error, the renkei error a known fault amounts to, or None (a bug)."""
    if isinstance(exc, RenkeiError):
        return exc
    return database_fault(exc) or disk_fault(exc)


def disk_fault(exc: BaseException) -> NoSpaceError | None:
    """A write that failed for want of space (ENOSPC, EDQUOT), here or as the cause of ``exc``."""
    for cause in _chain(exc):
        if isinstance(cause, OSError) and cause.errno in NO_SPACE_ERRNOS:
            return no_space(cause)
    return None


def no_space(error: OSError) -> NoSpaceError:
    path = error.filename2 or error.filename  # a copy's or a rename's target is the second one
    where = Path(os.fsdecode(path)) if path is not None else None
    if where is not None and _in_temp_dir(where):
        ja = f"一時ディレクトリ（TMPDIR: {tempfile.gettempdir()}）の空きがありません。空きを作るか TMPDIR を変えて、もう一度実行してください"
        en = f"no space left in the temporary directory (TMPDIR: {tempfile.gettempdir()}); free some or set TMPDIR elsewhere, then run it again"
    else:
        ja = "ディスクの空きがありません。書き込みは完了していません。空きを作ってから、もう一度実行してください"
        en = "no space left on the disk; the write did not complete. Free some space, then run it again"
    found = NoSpaceError(ja, en, Location(where) if where is not None else None)
    found.detail = error.strerror or str(error)
    return found


def database_fault(exc: BaseException) -> RenkeiError | None:
    """A fault of the catalog database: lost or refused connection, locked past the wait, full disk."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.DBAPIError):
        return None
    orig, said = exc.orig, _first_line(exc.orig)
    if exc.connection_invalidated or _connection_failed(orig):
        return _database_error(
            DatabaseUnavailableError,
            "カタログのデータベースに接続できないか、接続が切れました（処理中の変更は取り消されています）。"
            "データベースの状態を確かめて、もう一度実行してください",
            "the catalog database cannot be reached, or the connection was lost (the change under way was rolled"
            " back); check the database, then run it again",
            said,
        )
    code = _sqlite_code(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    if code in (SQLITE_BUSY, SQLITE_LOCKED) or sqlstate in PG_BUSY:
        return _database_error(
            DatabaseBusyError,
            "データベースが他の処理で使用中のまま、待ち時間を過ぎました。しばらくしてから、もう一度実行してください",
            "the catalog database stayed busy with other work past the waiting time; run it again in a moment",
            said,
        )
    if code == SQLITE_FULL or sqlstate == PG_DISK_FULL:
        return _database_error(
            NoSpaceError,
            "カタログのデータベースに書き込めません: ディスク（または一時ディレクトリ TMPDIR）の空きがありません。"
            "変更は取り消されています。空きを作ってから、もう一度実行してください",
            "cannot write to the catalog database: no space left on its disk (or in TMPDIR); the change was rolled"
            " back. Free some space, then run it again",
            said,
        )
    if code in (SQLITE_IOERR, SQLITE_CANTOPEN):
        return _database_error(
            DatabaseUnavailableError,
            "カタログのデータベースのファイルを読み書きできません。ディスクとファイルの状態を確かめてください",
            "cannot read or write the catalog database's file; check the disk and the file",
            said,
        )
    return None


def _database_error(kind: type[RenkeiError], ja: str, en: str, said: str) -> RenkeiError:
    found = kind(ja, en, Location(database_name()))
    found.detail = said
    return found


_in_use: list[
    str
] = []  # the URL of the catalog database this process opened last (renkei.hub.db.make_engine)


def note_database(url: str) -> None:
    """Remember which database a fault would be about, to name it in the message."""
    _in_use[:] = [url]


def database_name() -> str:
    """The catalog database as an operator knows it, without its password: its file, or its URL."""
    url = _in_use[0] if _in_use else os.environ.get("RENKEI_DATABASE_URL", "")
    sa_url = sys.modules.get("sqlalchemy.engine.url")
    if not url or sa_url is None:
        return "RENKEI_DATABASE_URL" if url else "catalog.db"
    try:
        parsed = sa_url.make_url(url)
    except Exception:  # a URL that does not parse: name the setting, never echo it (it may hold a password)
        return "RENKEI_DATABASE_URL"
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(parsed.database)
    rendered: str = parsed.render_as_string(hide_password=True)
    return rendered


def _connection_failed(orig: Any) -> bool:
    """psycopg: no server answer at all (refused, unreachable), or a connection-class SQLSTATE."""
    if type(orig).__module__.split(".")[0] != "psycopg":
        return False
    sqlstate = getattr(orig, "sqlstate", None)
    no_answer = sqlstate is None and type(orig).__name__ == "OperationalError"
    return no_answer or (isinstance(sqlstate, str) and sqlstate.startswith(PG_GONE_CLASSES))


def _sqlite_code(orig: Any) -> int | None:
    code = getattr(orig, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _first_line(orig: object) -> str:
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _in_temp_dir(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    except OSError:
        return False
