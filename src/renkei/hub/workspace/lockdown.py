"""The DuckDB lock-down of a workspace connection, applied in the order engine facts §2/§9 require.

Order matters: ``temp_directory=''`` first (DuckDB otherwise silently allows ``<cwd>/.tmp/``), then the exact
``allowed_paths`` (they must be set before external access is switched off), then external access and
extensions off, the resource limits (these do not lock themselves), and ``lock_configuration`` last. Every
setting is then READ BACK; a missing setting or a different value (an unknown DuckDB version) raises, so a
workspace whose sandbox cannot be verified never opens (fail closed).

This module imports only DuckDB: it runs inside the worker process, which holds no key and no catalog.
The parent builds the plan (:func:`plan`) and sends it to the worker, which applies it (:func:`apply`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

# (setting, SQL literal, the value current_setting() must give back); None as the literal: verify only.
FIXED_BEFORE_LIMITS: tuple[tuple[str, str | None, Any], ...] = (
    ("enable_external_access", "false", False),
    ("autoinstall_known_extensions", "false", False),
    ("autoload_known_extensions", "false", False),
    ("allow_community_extensions", "false", False),
    ("allow_persistent_secrets", "false", False),
    ("allow_unsigned_extensions", None, False),  # startup-only; it must already be off
    ("enable_progress_bar", "false", False),  # it prints to stdout, which is not a place for output here
)
LOCK = ("lock_configuration", "true", True)
PROBE_AFTER_LOCK = "SET preserve_insertion_order = true"  # harmless if it ran; once locked it must fail
_UNITS = ("KiB", "MiB", "GiB", "TiB")

Setting = tuple[str, "str | None", Any]


class LockdownError(Exception):
    """The lock-down could not be applied or did not read back; the connection must not be used."""

    def __init__(self, ja: str, en: str) -> None:
        super().__init__(f"{ja} ({en})")
        self.ja = ja
        self.en = en


def plan(allowed_paths: Sequence[str], *, memory_mib: int, threads: int) -> list[Setting]:
    """Every setting in the order it must be applied, with its expected read-back."""
    for path in allowed_paths:
        if "'" in path or "\\" in path:
            raise LockdownError("許可パスに使えない文字があります", f"unsafe character in path {path!r}")
    listed = ", ".join(f"'{p}'" for p in allowed_paths)
    return [
        ("temp_directory", "''", ""),
        ("allowed_paths", f"[{listed}]", sorted(allowed_paths)),
        *FIXED_BEFORE_LIMITS,
        ("memory_limit", f"'{memory_mib}MiB'", human_bytes(memory_mib << 20)),
        ("threads", str(threads), threads),
        ("max_temp_directory_size", "'0B'", human_bytes(0)),
        LOCK,
    ]


def apply(con: duckdb.DuckDBPyConnection, settings: Sequence[Setting]) -> None:
    """SET each setting in order, lock, then verify every value and that the lock holds."""
    names = [name for name, _, _ in settings]
    if not names or names[-1] != LOCK[0]:
        raise LockdownError("設定の最後は構成ロックでなければなりません", "the plan must end with the lock")
    for name, literal, _ in settings:
        if literal is not None:
            _set(con, name, literal)
    for name, _, expected in settings:
        _verify(con, name, expected)
    _verify_locked(con)


def human_bytes(size: int) -> str:
    """DuckDB's read-back of a byte size ('0 bytes', '64.0 MiB', '1.5 GiB'): one decimal, truncated."""
    if size < 1024:
        return f"{size} bytes"
    unit = 1024
    for name in _UNITS:
        if size < unit * 1024 or name == _UNITS[-1]:
            return f"{size // unit}.{size % unit * 10 // unit} {name}"
        unit *= 1024
    raise AssertionError("unreachable")


def _set(con: duckdb.DuckDBPyConnection, name: str, literal: str) -> None:
    try:
        con.execute(f"SET {name} = {literal}")
    except duckdb.Error as e:
        raise LockdownError(
            f"サンドボックス設定 {name} を適用できません（DuckDB {duckdb.__version__}）",
            f"cannot apply sandbox setting {name} on DuckDB {duckdb.__version__}: {type(e).__name__}",
        ) from e


def _verify(con: duckdb.DuckDBPyConnection, name: str, expected: Any) -> None:
    try:
        row = con.execute("SELECT current_setting(?)", [name]).fetchone()
    except duckdb.Error as e:
        raise LockdownError(
            f"サンドボックス設定 {name} を確認できません", f"sandbox setting {name} does not read back"
        ) from e
    actual = row[0] if row is not None else None
    if isinstance(actual, list):
        actual = sorted(actual)
    if type(actual) is not type(expected) or actual != expected:
        raise LockdownError(
            f"サンドボックス設定 {name} の値が想定と違います",
            f"sandbox setting {name} reads back {actual!r}, expected {expected!r}",
        )


def _verify_locked(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute(PROBE_AFTER_LOCK)
    except duckdb.Error:
        return
    raise LockdownError("構成ロックが効いていません", "the configuration lock does not hold")
