"""A stored Parquet snapshot is read by a locked-down DuckDB from a sealed memfd (engine facts §9, design b)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from renkei.hub.keys import AesGcmKek
from renkei.hub.vault import SnapshotRef, Vault, memfd_path

ROWS = 5000
REF = SnapshotRef("juki", dt.date(2024, 1, 1), 1)


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Vault, pa.Table]:
    table = pa.table(
        {
            "pid": [f"{i:032x}" for i in range(ROWS)],
            "ward": [f"区{i % 9}" for i in range(ROWS)],
            "age": [i % 100 for i in range(ROWS)],
        }
    )
    source = tmp_path / "data.parquet"
    pq.write_table(table, source, compression="zstd", row_group_size=1000, data_page_size=4096)
    vault = Vault(tmp_path / "vault", AesGcmKek(os.urandom(32), "test"))
    vault.store(REF, {"data.parquet": source})
    return vault, table


@pytest.fixture
def memfd(stored: tuple[Vault, pa.Table]) -> Iterator[int]:
    fd = stored[0].decrypt_to_memfd(REF, "data.parquet")
    yield fd
    os.close(fd)


def locked_connection(allowed: str) -> duckdb.DuckDBPyConnection:
    """The lock-down order that works (engine facts §2, §9): paths, then external access off, then lock."""
    con = duckdb.connect()
    con.execute("SET temp_directory=''")
    con.execute(f"SET allowed_paths=['{allowed}']")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


def test_locked_duckdb_queries_the_decrypted_snapshot(stored: tuple[Vault, pa.Table], memfd: int) -> None:
    path = memfd_path(memfd)
    con = locked_connection(path)
    rows = con.sql(
        f"SELECT ward, count(*) AS n, sum(age) AS total FROM read_parquet('{path}') WHERE age >= 18 "
        "GROUP BY ward ORDER BY ward"
    ).fetchall()
    table = stored[1].filter(pc.greater_equal(stored[1]["age"], 18))
    expected = table.group_by("ward").aggregate([("age", "count"), ("age", "sum")]).sort_by("ward")
    assert rows == list(
        zip(*(expected[c].to_pylist() for c in ("ward", "age_count", "age_sum")), strict=True)
    )
    assert con.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall() == [(ROWS,)]


def test_sandbox_and_seals_stop_writes_and_escapes(memfd: int) -> None:
    path = memfd_path(memfd)
    con = locked_connection(path)
    size = os.fstat(memfd).st_size
    with pytest.raises(duckdb.Error, match="Operation not permitted"):
        # the overwrite trick that beat a plain granted file (engine facts §9) fails on a sealed memfd
        con.execute(f"COPY (SELECT 1) TO '{path}' (FORMAT csv, USE_TMP_FILE false)")
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        con.execute("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET enable_external_access=true")
    with pytest.raises(OSError):
        os.write(memfd, b"x")
    assert os.fstat(memfd).st_size == size
    assert con.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall() == [(ROWS,)]
