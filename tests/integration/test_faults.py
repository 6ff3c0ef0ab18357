"""Faults surface as renkei messages with their own exit codes, never as tracebacks (issue 9, item 14).

Real faults: PostgreSQL backends terminated with ``pg_terminate_backend`` while a command waits on them, a small
tmpfs filled to the last byte under the catalog, the hub home or ``TMPDIR``, a SQLite database locked by another
connection, a PostgreSQL port nobody listens on. The disk tests mount a tmpfs (they need root, as on the test
machine) and are skipped where that is not allowed.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from renkei.errors import (
    EXIT_BUSY,
    EXIT_DATABASE,
    EXIT_NO_SPACE,
    DatabaseBusyError,
    DatabaseUnavailableError,
    NoSpaceError,
)
from renkei.faults import as_renkei_error
from renkei.hub.audit import AuditEntry, AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Package, Snapshot
from renkei.hub.db import make_engine
from renkei.hub.home import init_hub, verify_vault
from renkei.hub.importer import DISCONNECT_ATTEMPTS
from renkei.hub.migrate import upgrade
from renkei.web.errors import describe
from tests.conftest import POSTGRES_URL
from tests.integration.hub_world import World, make_world

AS_OF = dt.date(2025, 1, 1)
WAIT_LIMIT = 120.0  # seconds: a safety net for the polling loops, never reached when the command behaves
TERMINATED = "terminating connection due to administrator command"
# renkei.errors.RenkeiError.render: "エラー (error): <where>: <Japanese>" then "  (<English>)"
JA_THEN_EN = re.compile(r"エラー \(error\): [^\n]*[\u3040-\u30ff\u4e00-\u9fff][^\n]*\n  \([a-z][^\n]*[a-z]")
ON_POSTGRES = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


# --- real faults: disks, connections ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write until the disk is full to the last byte; returns the file, to be removed to free the disk."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def keep_catalog_open(catalog: Path) -> sqlite3.Connection:
    """Hold the catalog open as a running portal does (its WAL and shared-memory files stay), with the WAL
    emptied: the next write has to grow it."""
    holder = sqlite3.connect(catalog, isolation_level=None)
    holder.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return holder


def admin_engine() -> Engine:
    return create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def terminate(admin: Engine, pid: int) -> None:
    """pg_terminate_backend, waiting (up to 5 s) until the backend is gone."""
    with admin.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})


def waiting_backends(admin: Engine, tag: str) -> list[int]:
    """The backends of the command tagged ``tag`` that wait on a lock."""
    query = "SELECT pid FROM pg_stat_activity WHERE application_name = :tag AND wait_event_type = 'Lock'"
    with admin.connect() as conn:
        return list(conn.scalars(text(query), {"tag": tag}))


def terminate_when_waiting(admin: Engine, tag: str, proc: subprocess.Popen[str], *, times: int | None) -> int:
    """Terminate the command's backend each time it waits on a lock, ``times`` times or until it ends."""
    terminated = 0
    deadline = time.monotonic() + WAIT_LIMIT
    while proc.poll() is None and time.monotonic() < deadline and (times is None or terminated < times):
        for pid in waiting_backends(admin, tag):
            terminate(admin, pid)
            terminated += 1
        time.sleep(0.01)
    return terminated


@contextmanager
def packages_locked(url: str) -> Iterator[None]:
    """Writes to the packages table wait (reads go on): an import waits at its reservation."""
    engine = create_engine(url)
    with engine.connect() as conn, conn.begin():
        conn.execute(text("LOCK TABLE packages IN SHARE MODE"))
        yield
    engine.dispose()


def renkei(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "renkei.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or os.environ.copy(), check=False)


def start_renkei(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "renkei.cli.main", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def assert_failed_cleanly(code: int, expected: int, err: str) -> None:
    """The exit code expected, the message Japanese first then English, and no traceback."""
    assert code == expected, err
    assert "Traceback" not in err, err
    assert JA_THEN_EN.search(err), err


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A hub with its catalog in its home (SQLite) or in a fresh PostgreSQL schema."""
    if not database_url.startswith("sqlite"):
        monkeypatch.setenv("RENKEI_DATABASE_URL", database_url)
    world = make_world(tmp_path / "world", residents=200, years=1)
    yield world
    world.hub.engine.dispose()


def counts(world: World) -> tuple[int, int, int]:
    with world.hub.session() as session:
        packages = session.scalar(select(func.count()).select_from(Package)) or 0
        snapshots = session.scalar(select(func.count()).select_from(Snapshot)) or 0
        rejected = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "import.rejected")
        )
    return packages, snapshots, rejected or 0


# --- a terminated PostgreSQL connection -------------------------------------------------------------------------


def import_terminated(world: World, url: str, *, times: int | None) -> tuple[int, str, str, int]:
    """``renkei import`` of a fresh package, its backend terminated each time it waits at its reservation
    (``times`` times, or for as long as it runs); (exit code, stdout, stderr, terminations)."""
    package = world.extract("kaigo", AS_OF)
    tag = f"renkei-test-{uuid.uuid4().hex[:8]}"
    env = os.environ | {"RENKEI_DATABASE_URL": f"{url}&application_name={tag}"}
    admin = admin_engine()
    with packages_locked(url):
        proc = start_renkei("import", str(package), "--home", str(world.hub.home), env=env)
        terminated = terminate_when_waiting(admin, tag, proc, times=times)
    stdout, stderr = proc.communicate(timeout=WAIT_LIMIT)
    admin.dispose()
    return proc.returncode, stdout, stderr, terminated


@ON_POSTGRES
def test_an_import_whose_connection_is_terminated_retries_once_and_completes(
    world: World, database_url: str
) -> None:
    code, stdout, stderr, terminated = import_terminated(world, database_url, times=1)
    assert (code, terminated) == (0, 1), stderr
    assert f"kaigo/{AS_OF}/v1" in stdout
    assert counts(world) == (1, 1, 0)
    assert verify_vault(world.hub) == [] and world.hub.audit.verify().ok


@ON_POSTGRES
def test_a_connection_terminated_at_every_attempt_ends_in_a_message_and_exit_code_12(
    world: World, database_url: str
) -> None:
    code, _, stderr, terminated = import_terminated(world, database_url, times=None)
    assert terminated == DISCONNECT_ATTEMPTS
    assert_failed_cleanly(code, EXIT_DATABASE, stderr)
    assert "接続が切れました" in stderr and TERMINATED in stderr
    assert counts(world) == (0, 0, 0)  # rolled back, and not taken for the package's fault


@ON_POSTGRES
def test_an_audit_append_is_retried_only_when_its_connection_was_lost_before_the_commit(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    log = AuditLog(engine)
    log.append(actor="test", action=AuditAction.HUB_INIT)
    admin = admin_engine()
    shots: list[str] = []

    def before_insert(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO audit_entries") and "insert" not in shots:
            shots.append("insert")
            terminate(admin, conn.connection.dbapi_connection.info.backend_pid)

    event.listen(engine, "before_cursor_execute", before_insert)
    log.append(
        actor="test", action=AuditAction.VAULT_VERIFY
    )  # lost before its commit: appended on a new connection
    event.remove(engine, "before_cursor_execute", before_insert)
    assert shots == ["insert"] and log.size() == 2

    def at_commit(conn: Any) -> None:
        terminate(admin, conn.connection.dbapi_connection.info.backend_pid)

    event.listen(engine, "commit", at_commit)
    with pytest.raises(DBAPIError) as caught:
        log.append(
            actor="test", action=AuditAction.HUB_MIGRATE
        )  # lost during its commit: it may have committed
    event.remove(engine, "commit", at_commit)
    assert isinstance(as_renkei_error(caught.value), DatabaseUnavailableError)
    assert log.size() == 2 and log.verify().ok  # never appended twice
    admin.dispose()
    engine.dispose()


# --- full disks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_vault_verify_on_a_full_disk_reports_its_findings_then_that_it_could_not_record_them(
    world: World, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.import_(world.extract("juki", AS_OF))
    world.hub.engine.dispose()
    home = small_disk / "hub"
    shutil.copytree(world.hub.home, home)
    monkeypatch.setenv("RENKEI_DATABASE_URL", f"sqlite:///{home / 'catalog.db'}")
    holder = keep_catalog_open(home / "catalog.db")
    filler = fill(small_disk)
    result = renkei("vault", "verify", "--home", str(home))
    holder.close()
    assert_failed_cleanly(result.returncode, EXIT_NO_SPACE, result.stderr)
    assert "保管庫 (vault): 1 スナップショット, 問題 0 件" in result.stdout
    assert "監査ログに記録できませんでした" in result.stderr and "空きがありません" in result.stderr
    filler.unlink()
    assert renkei("vault", "verify", "--home", str(home)).returncode == 0


def test_an_import_whose_catalog_disk_is_full_stops_with_exit_7_and_leaves_nothing(
    tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = small_disk / "catalog.db"
    monkeypatch.setenv("RENKEI_DATABASE_URL", f"sqlite:///{catalog}")
    world = make_world(tmp_path / "world", residents=200, years=1)
    package = world.extract("kaigo", AS_OF)
    world.hub.engine.dispose()
    holder = keep_catalog_open(catalog)
    filler = fill(small_disk)
    result = renkei("import", str(package), "--home", str(world.hub.home))
    holder.close()
    assert_failed_cleanly(result.returncode, EXIT_NO_SPACE, result.stderr)
    assert "カタログのデータベースに書き込めません" in result.stderr and str(catalog) in result.stderr
    filler.unlink()
    assert counts(world)[:2] == (0, 0) and world.hub.vault.snapshots() == []
    again = renkei("import", str(package), "--home", str(world.hub.home))
    assert again.returncode == 0, again.stderr
    assert verify_vault(world.hub) == [] and world.hub.audit.verify().ok
    world.hub.engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_full_tmpdir_stops_no_hub_command(world: World, small_disk: Path) -> None:
    """Nothing renkei does goes through the system temp (imports decrypt in the hub home's staging)."""
    package = world.extract("kaigo", AS_OF)
    fill(small_disk)
    env = os.environ | {"TMPDIR": str(small_disk)}
    imported = renkei("import", str(package), "--home", str(world.hub.home), env=env)
    assert imported.returncode == 0, imported.stderr
    verified = renkei("vault", "verify", "--home", str(world.hub.home), env=env)
    assert verified.returncode == 0, verified.stderr


def test_no_space_in_the_temporary_directory_is_named_as_such(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "big"
    source.write_bytes(os.urandom(17 << 20))  # more than the disk holds
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    with pytest.raises(OSError) as caught:
        shutil.copyfile(source, small_disk / "copy")
    error = as_renkei_error(caught.value)
    assert isinstance(error, NoSpaceError) and error.exit_code == EXIT_NO_SPACE
    assert "一時ディレクトリ（TMPDIR" in error.ja and str(small_disk / "copy") in error.render()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))
    elsewhere = as_renkei_error(caught.value)
    assert elsewhere is not None and elsewhere.ja.startswith("ディスクの空きがありません")


# --- a busy database, a server that is not there ---------------------------------------------------------------


def test_a_database_locked_past_the_wait_is_busy(tmp_path: Path) -> None:
    database = tmp_path / "locked.db"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 0})
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    holder.close()
    engine.dispose()
    busy = as_renkei_error(caught.value)
    assert isinstance(busy, DatabaseBusyError) and busy.exit_code == EXIT_BUSY


@pytest.mark.postgres
def test_a_database_server_that_is_not_there_is_named_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = init_hub(tmp_path / "hub")
    hub.engine.dispose()
    nowhere = "postgresql+psycopg://root:s3cret@127.0.0.1:1/test"  # nothing listens on port 1
    result = renkei(
        "catalog", "list", "--home", str(hub.home), env=os.environ | {"RENKEI_DATABASE_URL": nowhere}
    )
    assert_failed_cleanly(result.returncode, EXIT_DATABASE, result.stderr)
    assert "127.0.0.1:1" in result.stderr and "s3cret" not in result.stderr
    monkeypatch.setenv("RENKEI_DATABASE_URL", nowhere)
    with pytest.raises(DBAPIError) as caught:
        make_engine(nowhere).connect()
    problem = describe(caught.value)  # the portal: the status from the same table, nothing of the system
    assert (problem.status, problem.code) == (503, "database_unavailable")
    assert "127.0.0.1" not in problem.message_en + problem.message_ja
