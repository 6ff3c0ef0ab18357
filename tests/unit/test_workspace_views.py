"""What the hub learns of opened snapshots in its own process: which have no pid on two rows."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from renkei.hub.vault import SnapshotRef
from renkei.hub.workspace.views import unique_pid_refs

P = dt.date(2025, 1, 1)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[dict[str, int]]:
    tables = {
        "once": pa.table({"pid": ["a", "b", None, None], "x": [1, 2, 3, 4]}),  # nulls are nobody
        "twice": pa.table({"pid": ["a", "b", "a"], "x": [1, 2, 3]}),
        "no_pid": pa.table({"household_id": ["h", "h"]}),
        "empty": pa.table({"pid": pa.array([], pa.string())}),
    }
    fds = {}
    for name, table in tables.items():
        pq.write_table(table, tmp_path / f"{name}.parquet")
        fds[name] = os.open(tmp_path / f"{name}.parquet", os.O_RDONLY)
    yield fds
    for fd in fds.values():
        os.close(fd)


def test_only_snapshots_without_a_repeated_pid_are_unique(files: dict[str, int]) -> None:
    refs = {name: SnapshotRef(name, P, 1) for name in files}
    with duckdb.connect() as con:
        unique = unique_pid_refs(con, list(files.values()), list(refs.values()))
    assert unique == {refs["once"], refs["empty"]}
