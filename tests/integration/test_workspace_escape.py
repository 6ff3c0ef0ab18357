"""Hostile probes, each WITH A POSITIVE CONTROL: the probe works on a plain, unlocked DuckDB connection over
copies of the same files (or, for the OS limits, in an unconfined process), and fails in the workspace.

Statements the first filter refuses (COPY, ATTACH, INSTALL …) are also sent through ``control_query``, which
skips the filter, to show that the sandbox itself stops them. Paths that the workspace must not write are in
a world-writable directory, so only DuckDB's sandbox (not the worker's OS user) can be what stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from renkei.hub.vault import SnapshotRef, memfd_path
from renkei.hub.workspace import process
from renkei.hub.workspace.errors import QueryFailed, QueryRefused, QueryTimeout, WorkspaceError
from renkei.hub.workspace.workspace import Workspace, WorkspaceLimits
from renkei.manifest import DATA_FILE
from tests.integration.workspace_world import WorkspaceWorld, make_workspace_world

LIMITS = WorkspaceLimits(memory_mib=128, control_memory_mib=128, threads=1, timeout=2.0, grace=1.0)
NPROC = 24


@dataclass
class Setting:
    world: WorkspaceWorld
    ws: Workspace
    plain: duckdb.DuckDBPyConnection
    tmp: Path  # world-writable
    granted: Path  # plaintext copy of the granted snapshot (for the positive controls)
    other: Path  # plaintext copy of a snapshot that is not granted
    other_fd: int  # the not-granted snapshot, decrypted into a memfd of THIS (the parent) process
    vault: Path

    @property
    def worker_pid(self) -> int:
        assert self.ws.worker is not None
        return self.ws.worker.pid

    @property
    def granted_in_worker(self) -> str:
        return f"/proc/{self.worker_pid}/fd/{self.ws.opened[0].fd}"

    def fmt(self, sql: str) -> str:
        return sql.format(
            tmp=self.tmp, granted=self.granted, other=self.other, vault=self.vault, parent=os.getpid(),
            worker=self.worker_pid, granted_fd=self.granted_in_worker, other_fd=self.other_fd,
        )  # fmt: skip


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setting]:
    world = make_workspace_world(tmp_path_factory.mktemp("escape"))
    first, second = world.periods
    user, actor = world.analyst()
    world.grant(user, "juki", [first])
    tmp = tmp_path_factory.mktemp("probes")
    tmp.chmod(0o777)
    copies = tmp_path_factory.mktemp("copies")
    granted, other = copies / "granted.parquet", copies / "other.parquet"
    vault = world.hub.vault
    for target, ref in [(granted, SnapshotRef("juki", first, 1)), (other, SnapshotRef("juki", second, 1))]:
        with vault.open_plain(ref, DATA_FILE) as stream:
            target.write_bytes(stream.read())
    other_fd = vault.decrypt_to_memfd(SnapshotRef("kaigo", second, 1), DATA_FILE)
    plain = duckdb.connect()
    plain.execute(f"CREATE VIEW juki AS SELECT * FROM read_parquet('{granted}')")
    with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as ws:
        yield Setting(world, ws, plain, tmp, granted, other, other_fd, vault.root)
    os.close(other_fd)


def runs(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def blocked(setting: Setting, sql: str, error: str = "PermissionException") -> None:
    """The workspace refuses or fails the query, and the sandbox alone (control_query) fails it too."""
    with pytest.raises((QueryFailed, QueryRefused)):
        setting.ws.query(sql)
    with pytest.raises(QueryFailed, match=error):
        setting.ws.control_query(sql)
    assert setting.ws.query("SELECT 1 AS alive")["alive"].to_pylist() == [1]


# --- reading what is not granted ----------------------------------------------------------------------------

READS = {
    "another file": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT content FROM read_text('/etc/hostname')",
    "sniff_csv": "SELECT * FROM sniff_csv('/etc/passwd')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "glob of the vault": "SELECT * FROM glob('{vault}/**')",
    "a not-granted snapshot by path": "SELECT count(*) FROM read_parquet('{other}')",
    "a not-granted snapshot's ciphertext": "SELECT * FROM read_blob('{vault}/juki/*/v1/data.parquet.age')",
    "a not-granted snapshot by the parent's fd": "SELECT count(*) FROM read_parquet('/proc/{parent}/fd/{other_fd}')",
    "the parent's environ": "SELECT content FROM read_text('/proc/{parent}/environ')",
    "the parent's memory map": "SELECT content FROM read_blob('/proc/{parent}/maps')",
}


@pytest.mark.parametrize("name", READS)
def test_reading_outside_the_grant(setting: Setting, name: str) -> None:
    sql = setting.fmt(READS[name])
    assert runs(setting.plain, sql)  # positive control: readable, and not empty
    blocked(setting, sql)


def test_a_not_granted_snapshot_by_proc_self_fd(setting: Setting) -> None:
    """The worker never got the memfd: no fd number of the worker's own leads to it."""
    sql = f"SELECT count(*) FROM read_parquet('{memfd_path(setting.other_fd)}')"
    assert runs(setting.plain, sql)[0][0] > 0  # the parent's own /proc/self/fd/N
    with pytest.raises(QueryFailed):
        setting.ws.query(sql)
    for fd in range(3, 40):
        if fd != setting.ws.opened[0].fd:
            with pytest.raises(QueryFailed):
                setting.ws.query(f"SELECT count(*) FROM read_parquet('/proc/self/fd/{fd}')")


def test_the_parents_memory_is_out_of_reach(setting: Setting) -> None:
    """DuckDB cannot read /proc/N/mem even unlocked (reads at offset 0 fail), so the control is the OS:
    the parent (root) can open its own mem; the worker's user cannot, and DuckDB's sandbox blocks the path."""
    Path(f"/proc/{os.getpid()}/mem").open("rb").close()
    blocked(setting, setting.fmt("SELECT * FROM read_blob('/proc/{parent}/mem')"))
    _confined_fails(f"open('/proc/{os.getpid()}/mem', 'rb')", "PermissionError")
    _confined_fails(f"open('/proc/{os.getpid()}/environ', 'rb').read()", "PermissionError")


def test_record_keys_are_not_in_the_user_database(setting: Setting) -> None:
    assert setting.ws.control_query("SELECT count(*) AS n FROM _record_keys")["n"].to_pylist()[0] > 0
    with pytest.raises(QueryFailed, match="_record_keys"):
        setting.ws.query("SELECT * FROM _record_keys")
    with pytest.raises(QueryFailed):
        setting.ws.query("SELECT * FROM memory._record_keys")
    worker_fds = Path(f"/proc/{setting.worker_pid}/fd")
    for fd in worker_fds.iterdir():  # its memfd is closed once loaded; no path is left
        assert "record-keys" not in str(fd.readlink())


# --- writing, extensions, configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    sql: str
    target: str  # what the positive control creates

    def run(self, setting: Setting) -> tuple[str, Path]:
        return setting.fmt(self.sql), Path(setting.fmt(self.target))


WRITES = {
    "COPY": Write("COPY (SELECT 1) TO '{tmp}/copy.csv'", "{tmp}/copy.csv"),
    "COPY inside a WITH clause": Write(
        "WITH x AS (COPY (SELECT 1) TO '{tmp}/cte.csv') SELECT 1", "{tmp}/cte.csv"
    ),
    "ATTACH": Write("ATTACH '{tmp}/attached.db' AS a", "{tmp}/attached.db"),
    "EXPORT": Write("EXPORT DATABASE '{tmp}/export'", "{tmp}/export"),
    "writing into the vault": Write(
        "WITH x AS (COPY (SELECT 1) TO '{vault}/juki/evil.csv' (USE_TMP_FILE false)) SELECT 1",
        "{vault}/juki/evil.csv",
    ),
}


@pytest.mark.parametrize("name", WRITES)
def test_writing_files(setting: Setting, name: str) -> None:
    sql, target = WRITES[name].run(setting)
    plain = duckdb.connect()  # a fresh one: ATTACH and EXPORT change the connection
    plain.execute(sql)
    assert target.exists()  # positive control
    _remove(target)
    blocked(setting, sql)
    assert not target.exists()


def test_overwriting_a_granted_file(setting: Setting) -> None:
    """The overwrite trick (USE_TMP_FILE false, also as a CTE) beats a plain file, not a sealed memfd."""
    copy = setting.tmp / "victim.parquet"
    copy.write_bytes(setting.granted.read_bytes())
    size = copy.stat().st_size
    runs(
        duckdb.connect(), f"WITH x AS (COPY (SELECT 1) TO '{copy}' (FORMAT csv, USE_TMP_FILE false)) SELECT 1"
    )
    assert copy.stat().st_size < size  # positive control: overwritten
    before = setting.ws.query("SELECT count(*) AS n FROM juki")["n"].to_pylist()
    target = setting.granted_in_worker
    with pytest.raises(QueryFailed):
        setting.ws.query(
            f"WITH x AS (COPY (SELECT 1) TO '{target}' (FORMAT csv, USE_TMP_FILE false)) SELECT 1"
        )
    with pytest.raises(QueryFailed):
        setting.ws.control_query(f"COPY (SELECT 1) TO '{target}' (FORMAT csv, USE_TMP_FILE false)")
    assert setting.ws.query("SELECT count(*) AS n FROM juki")["n"].to_pylist() == before


def test_install_and_load(setting: Setting) -> None:
    """Offline, INSTALL/LOAD cannot succeed anywhere; the control is that plain DuckDB opens the file (and
    rejects its contents), while the workspace is refused before touching it."""
    fake = setting.tmp / "evil.duckdb_extension"
    fake.write_bytes(b"\0" * 1024)
    for sql in [f"INSTALL '{fake}'", f"LOAD '{fake}'"]:
        with pytest.raises(duckdb.Error, match="not a DuckDB extension"):
            duckdb.connect(config={"allow_unsigned_extensions": True}).execute(sql)
        blocked(setting, sql)
    blocked(setting, "INSTALL httpfs")


CONFIG = {
    "PRAGMA": "PRAGMA memory_limit='8GB'",
    "SET allowed_paths": "SET allowed_paths = ['/etc/passwd']",
    "SET allowed_directories": "SET allowed_directories = ['/']",
    "SET threads": "SET threads = 8",
    "RESET": "RESET memory_limit",
    "SET lock": "SET lock_configuration = false",
}


@pytest.mark.parametrize("name", CONFIG)
def test_changing_the_configuration(setting: Setting, name: str) -> None:
    runs(duckdb.connect(), CONFIG[name])  # positive control
    blocked(setting, CONFIG[name], "InvalidInputException")  # "the configuration has been locked"
    assert setting.ws.control_query("SELECT current_setting('threads') AS t")["t"].to_pylist() == [
        LIMITS.threads
    ]


# --- resources ----------------------------------------------------------------------------------------------


def test_exhausting_memory(setting: Setting) -> None:
    sql = "SELECT length(string_agg(range::VARCHAR, ',')) AS n FROM range(20000000)"
    assert runs(duckdb.connect(), sql)[0][0] > LIMITS.memory_mib << 20  # positive control
    with pytest.raises(QueryFailed, match="OutOfMemory") as refused:
        setting.ws.query(sql)
    assert "workspace.memory_mib" in refused.value.en and f"{LIMITS.memory_mib} MiB" in refused.value.ja
    assert "failed to allocate" in refused.value.en  # DuckDB's own words: sizes, never a value
    assert setting.ws.query("SELECT 1 AS alive")["alive"].to_pylist() == [1]


def test_filling_the_disk(setting: Setting) -> None:
    """A query too big for memory spills to disk when it may; the workspace has no temp space at all."""
    sql = "SELECT count(*) FROM (SELECT range % 10000000 AS g, count(*) FROM range(10000000) GROUP BY g)"
    spill = setting.tmp / "spill"
    plain = duckdb.connect()
    plain.execute(f"SET memory_limit='{LIMITS.memory_mib}MiB'")
    plain.execute(f"SET temp_directory='{spill}'")
    seen = _watch(spill, lambda: runs(plain, sql))
    assert seen  # positive control: it wrote temporary files
    with pytest.raises(QueryFailed, match="OutOfMemory"):
        setting.ws.query(sql)
    _confined_fails(f"open('{setting.tmp}/big', 'wb').write(b'x' * 4096)", "OSError")  # RLIMIT_FSIZE 0


def test_a_fork_bomb_hits_the_process_limit() -> None:
    """No DuckDB function forks in the locked worker (no shell, no extensions); the OS limit is the backstop."""
    bomb = (
        "import os, time\nn = 0\n"
        f"for _ in range({NPROC + 8}):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n        time.sleep(2); os._exit(0)\n"
        "    n += 1\n"
        "print(n)"
    )
    unconfined = subprocess.run([sys.executable, "-c", bomb], capture_output=True, text=True, check=True)
    assert int(unconfined.stdout) == NPROC + 8  # positive control
    _confined_fails(bomb, "BlockingIOError")


def test_a_query_that_never_ends(setting: Setting) -> None:
    sql = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"
    plain = duckdb.connect()
    timer = threading.Timer(LIMITS.timeout, plain.interrupt)
    timer.start()
    with pytest.raises(duckdb.InterruptException):
        plain.execute(sql)  # positive control: still running at the limit
    timer.join()
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        setting.ws.query(sql)
    assert time.monotonic() - started < LIMITS.timeout + LIMITS.grace + 1
    assert setting.ws.query("SELECT 1 AS alive")["alive"].to_pylist() == [1]


# --- helpers ------------------------------------------------------------------------------------------------


def _confined_fails(code: str, error: str) -> None:
    """Run ``code`` as a worker would run (nobody, rlimits, no environment) and expect ``error``."""
    isolation = process.isolation(allow_same_user=False)
    program = f"try:\n    {code.replace(chr(10), chr(10) + '    ')}\nexcept {error}:\n    print('blocked')\n"
    child = process.spawn(isolation, program, pass_fds=[], address_space=LIMITS.address_space, nproc=NPROC)
    out, _ = child.communicate(timeout=30)
    assert out.decode().strip().endswith("blocked"), out


def _watch(directory: Path, action: Callable[[], object]) -> set[str]:
    seen: set[str] = set()
    done = threading.Event()

    def look() -> None:
        while not done.is_set():
            seen.update(p.name for p in directory.rglob("*") if p.is_file())
            time.sleep(0.02)

    watcher = threading.Thread(target=look)
    watcher.start()
    try:
        action()
    finally:
        done.set()
        watcher.join()
    return seen


def _remove(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    else:
        path.unlink()


def test_no_interpreter_that_loads_the_engine_as_nobody_means_no_workspace(
    setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "CANDIDATES", ())
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    process._probed.cache_clear()
    try:
        with pytest.raises(WorkspaceError, match="no interpreter"):
            process.isolation(allow_same_user=False)
    finally:
        monkeypatch.undo()
        process._probed.cache_clear()
