"""The lock-down on a real DuckDB connection: applied in order, read back, and failing closed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from renkei.hub.workspace import lockdown


def test_applied_lockdown_reads_back_and_confines(tmp_path: Path) -> None:
    allowed, other = tmp_path / "a.csv", tmp_path / "b.csv"
    allowed.write_text("x\n1\n")
    other.write_text("x\n2\n")
    con = duckdb.connect()
    lockdown.apply(con, lockdown.plan([str(allowed)], memory_mib=64, threads=1))
    assert con.execute(f"SELECT x FROM read_csv('{allowed}')").fetchall() == [(1,)]
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"SELECT x FROM read_csv('{other}')")
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET memory_limit = '8GB'")


@pytest.mark.parametrize("mib", [1, 64, 1000, 1024, 1500, 3000, 100 * 1024])
def test_byte_sizes_read_back_as_duckdb_prints_them(mib: int) -> None:
    con = duckdb.connect()
    con.execute(f"SET max_temp_directory_size = '{mib}MiB'")
    assert con.execute("SELECT current_setting('max_temp_directory_size')").fetchone() == (
        lockdown.human_bytes(mib << 20),
    )


def test_a_value_that_does_not_read_back_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = tuple(
        (n, v, 99) if n == "allow_community_extensions" else (n, v, e)
        for n, v, e in lockdown.FIXED_BEFORE_LIMITS
    )
    monkeypatch.setattr(lockdown, "FIXED_BEFORE_LIMITS", changed)
    with pytest.raises(lockdown.LockdownError, match="allow_community_extensions reads back False"):
        lockdown.apply(duckdb.connect(), lockdown.plan([], memory_mib=64, threads=1))


def test_an_unknown_setting_fails_closed() -> None:
    settings = [("no_such_setting_in_this_duckdb", "1", 1), lockdown.LOCK]
    with pytest.raises(lockdown.LockdownError, match="cannot apply"):
        lockdown.apply(duckdb.connect(), settings)


def test_a_plan_must_end_with_the_lock() -> None:
    with pytest.raises(lockdown.LockdownError, match="lock"):
        lockdown.apply(duckdb.connect(), lockdown.plan([], memory_mib=64, threads=1)[:-1])


def test_a_lock_that_does_not_hold_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockdown, "LOCK", ("preserve_insertion_order", "true", True))
    settings = [("threads", "1", 1), lockdown.LOCK]
    with pytest.raises(lockdown.LockdownError, match="does not hold"):
        lockdown.apply(duckdb.connect(), settings)


def test_paths_that_would_break_the_literal_are_refused() -> None:
    with pytest.raises(lockdown.LockdownError, match="unsafe"):
        lockdown.plan(["/x'; SET enable_external_access=true; --"], memory_mib=64, threads=1)
