"""Control results kept for reuse: bounded in bytes, least recently used out, and only what is deterministic."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from renkei.hub.sql.control import Controllable, analyse
from renkei.hub.workspace.reuse import ControlResults

SCHEMA = {"juki": {"pid": "VARCHAR", "period": "DATE", "ward": "VARCHAR", "age": "INTEGER"}}
A = frozenset({(1, False), (2, False)})
B = frozenset({(1, False)})


def table(rows: int) -> pa.Table:
    return pa.table({"n": pa.array(range(rows), pa.int64())})


def test_a_result_is_found_only_for_the_same_snapshots_and_sql() -> None:
    kept = ControlResults(1 << 20)
    kept.put(A, "SELECT 1", table(3))
    assert kept.get(A, "SELECT 1") == table(3)
    assert kept.get(B, "SELECT 1") is None and kept.get(A, "SELECT 2") is None
    assert (kept.hits, kept.misses) == (1, 2)


def test_the_least_recently_used_go_first_and_the_bytes_stay_bounded() -> None:
    size = table(100).nbytes
    kept = ControlResults(3 * size)
    for sql in ("a", "b", "c"):
        kept.put(A, sql, table(100))
    assert kept.get(A, "a") is not None  # "a" is now the most recent
    kept.put(A, "d", table(100))
    assert kept.get(A, "b") is None and all(kept.get(A, s) is not None for s in ("a", "c", "d"))
    assert len(kept) == 3 and kept.size_bytes == 3 * size
    kept.put(A, "a", table(100))  # the same key again replaces, never double-counts
    assert kept.size_bytes == 3 * size


def test_a_result_larger_than_the_cache_and_a_cache_of_zero_keep_nothing() -> None:
    kept = ControlResults(table(10).nbytes)
    kept.put(A, "big", table(1000))
    off = ControlResults(0)
    off.put(A, "small", table(1))
    assert kept.get(A, "big") is None and off.get(A, "small") is None and len(kept) == len(off) == 0


def waiting_for(kept: ControlResults, answers: list[pa.Table | None]) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.append(kept.get(A, "q", wait=30)))
    thread.start()
    time.sleep(0.2)  # it is waiting now (nothing else can let it through)
    return thread


def test_a_result_being_computed_is_waited_for_not_computed_again() -> None:
    kept = ControlResults(1 << 20)
    assert kept.get(A, "q", wait=30) is None  # the first caller computes it
    answers: list[pa.Table | None] = []
    thread = waiting_for(kept, answers)
    assert not answers
    kept.put(A, "q", table(5))
    thread.join(5)
    assert answers == [table(5)] and (kept.hits, kept.misses) == (1, 1)


def test_when_the_computing_caller_fails_the_waiting_one_computes_it() -> None:
    kept = ControlResults(1 << 20)
    assert kept.get(A, "q") is None
    answers: list[pa.Table | None] = []
    thread = waiting_for(kept, answers)
    kept.abandon(A, "q")
    thread.join(5)
    assert answers == [None] and kept.misses == 2  # and it is now the one computing it
    assert kept.get(A, "q", wait=0.05) is None  # a third caller waits only as long as it is told to


@pytest.mark.parametrize(
    ("sql", "reusable"),
    [
        ("SELECT ward, count(*) AS n FROM juki GROUP BY ALL", True),
        (
            "SELECT ward, least(age, 90) // 10 AS b, count(*) FROM juki WHERE age BETWEEN 20 AND 64 GROUP BY ALL",
            True,
        ),
        (
            "SELECT ward, count(*) FROM juki WHERE coalesce(ward, '') <> '' AND year(period) = 2024 GROUP BY ALL",
            True,
        ),
        ("SELECT ward, count(*) FROM juki WHERE random() < 0.5 GROUP BY ALL", False),
        ("SELECT ward, count(*) FROM juki WHERE period < current_date GROUP BY ALL", False),
        ("SELECT ward, count(*) FROM juki WHERE period < now() GROUP BY ALL", False),
        ("SELECT ward, count(*) FROM juki WHERE my_function(age) GROUP BY ALL", False),
    ],
)
def test_only_queries_without_volatile_or_unknown_functions_are_reusable(sql: str, reusable: bool) -> None:
    analysed = analyse(sql, SCHEMA)
    assert isinstance(analysed, Controllable)
    assert analysed.deterministic is reusable
