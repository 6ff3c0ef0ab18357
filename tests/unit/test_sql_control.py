"""Rule 6: an SQL aggregate is shown only when the hub re-derives each group's persons and cell key."""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pytest

from renkei.hub.sql.control import Controllable, NotControllable, analyse

SCHEMA = {
    "juki": {"pid": "VARCHAR", "period": "DATE", "age": "INTEGER", "住所_ward": "VARCHAR"},
    "kaigo": {"pid": "VARCHAR", "period": "DATE", "要介護度": "VARCHAR"},
}
WARDS = ["東灘区", "灘区", "中央区"]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    rng = random.Random(7)
    db = duckdb.connect()
    db.execute("CREATE TABLE juki (pid VARCHAR, period DATE, age INTEGER, 住所_ward VARCHAR)")
    db.execute("CREATE TABLE kaigo (pid VARCHAR, period DATE, 要介護度 VARCHAR)")
    db.execute("CREATE TABLE _record_keys (pid VARCHAR, rkey UBIGINT)")
    pids = [f"{i:032x}" for i in range(300)]
    db.executemany("INSERT INTO _record_keys VALUES (?, ?)", [(p, rng.randrange(2**32)) for p in pids])
    for year in (2024, 2025):
        period = dt.date(year, 1, 1)
        db.executemany(
            "INSERT INTO juki VALUES (?, ?, ?, ?)",
            [(p, period, rng.randrange(100), rng.choice(WARDS)) for p in pids],
        )
        db.executemany(
            "INSERT INTO kaigo VALUES (?, ?, ?)",
            [(p, period, rng.choice("12345")) for p in pids if rng.random() < 0.3],
        )
    return db


def _controlled(sql: str) -> Controllable:
    result = analyse(sql, SCHEMA)
    assert isinstance(result, Controllable), result
    return result


def _compare(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """The control query's n equals the user's count, and its ckey is the sum of the contributors' keys."""
    control = _controlled(sql)
    user = {row[:-1]: row[-1] for row in con.execute(f"SELECT * FROM ({sql})").fetchall()}
    result = con.execute(control.control_sql)
    assert [d[0] for d in result.description] == [*control.group_columns, "n", "ckey"]
    derived = {row[:-2]: row[-2:] for row in result.fetchall()}
    assert set(user) == set(derived)
    assert all(user[group] == derived[group][0] for group in user)


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT "住所_ward", count(*) FROM juki GROUP BY "住所_ward"',
        'SELECT "住所_ward" AS ward, period, count(*) AS n FROM juki WHERE age >= 65 GROUP BY ward, period',
        'SELECT "住所_ward", count(*) FROM juki GROUP BY 1',
        'SELECT j."住所_ward", k."要介護度", count(DISTINCT j.pid) FROM juki j '
        "JOIN kaigo k ON k.pid = j.pid AND k.period = j.period WHERE j.period = DATE '2025-01-01' GROUP BY ALL",
        "SELECT age // 10 * 10 AS band, count(DISTINCT pid) FROM juki GROUP BY band",
    ],
)
def test_counts_are_re_derived(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    _compare(con, sql)


def test_the_cell_key_is_the_sum_of_record_keys(con: duckdb.DuckDBPyConnection) -> None:
    control = _controlled("SELECT age, count(*) FROM juki WHERE age = 50 GROUP BY age")
    ((_, n, ckey),) = con.execute(control.control_sql).fetchall()
    (expected,) = con.execute(
        "SELECT sum(rkey) % 4294967296 FROM juki JOIN _record_keys USING (pid) WHERE age = 50"
    ).fetchone() or (None,)
    assert n > 0 and ckey == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT age FROM juki",  # row-level
        "SELECT age, max(age) FROM juki GROUP BY age",  # a max is one person's value
        "SELECT age, sum(age) FROM juki GROUP BY age",
        "SELECT age, count(*) FROM juki GROUP BY age HAVING count(*) > 5",
        "SELECT age, count(*), count(DISTINCT pid) FROM juki GROUP BY age",  # mixed kinds
        "WITH x AS (SELECT * FROM juki) SELECT age, count(*) FROM x GROUP BY age",
        "SELECT age, count(*) FROM juki WHERE pid IN (SELECT pid FROM _record_keys) GROUP BY age",
        "SELECT age, count(*) FROM read_parquet('/etc/x') GROUP BY age",
        "SELECT age, count(*) FROM juki GROUP BY CUBE (age)",
        "SELECT age, count(*) OVER () FROM juki GROUP BY age",
        "SELECT age, count(*) FROM juki GROUP BY age UNION ALL SELECT 1, 2",
        "SELECT age, count(*) FROM juki GROUP BY age, period",  # a hidden grouping
        "SELEC age",
    ],
)
def test_anything_else_is_not_controllable(sql: str) -> None:
    result = analyse(sql, SCHEMA)
    assert isinstance(result, NotControllable)
    assert result.reason_ja and result.reason_en


@pytest.mark.parametrize("sql", ['"', "SELECT " + "(" * 2000 + "1" + ")" * 2000])
def test_untokenizable_or_deeply_nested_sql_is_not_controllable(sql: str) -> None:
    # Found by tests/fuzz: a TokenError and a RecursionError escaped analyse() as tracebacks.
    assert isinstance(analyse(sql, SCHEMA), NotControllable)


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT "住所_ward", count(*) FROM juki GROUP BY "住所_ward"',
        'SELECT "住所_ward" AS ward, period, count(*) AS n FROM juki WHERE age >= 65 GROUP BY ward, period',
        "SELECT j.period, count(*) FROM juki AS j WHERE EXISTS (SELECT 1 FROM kaigo k WHERE k.pid = j.pid) GROUP BY 1",
    ],
)
def test_rows_of_a_base_without_a_repeated_pid_need_no_deduplication(
    con: duckdb.DuckDBPyConnection, sql: str
) -> None:
    control = _controlled(sql)
    assert control.one_row_control_sql is not None and control.base_view == "juki"
    assert control.control_sql_over(frozenset({"kaigo"})) == control.control_sql
    plain = control.control_sql_over(frozenset({"juki"}))
    assert "DISTINCT" not in plain
    rows = sorted(con.execute(plain).fetchall())
    assert rows == sorted(con.execute(control.control_sql).fetchall())


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT age // 10 * 10 AS band, count(DISTINCT pid) FROM juki GROUP BY band",  # persons across periods
        'SELECT j."住所_ward", count(*) FROM juki j JOIN kaigo k ON k.pid = j.pid GROUP BY ALL',  # a join repeats
    ],
)
def test_distinct_persons_and_joins_stay_deduplicated(sql: str) -> None:
    control = _controlled(sql)
    assert control.one_row_control_sql is None
    assert control.control_sql_over(frozenset({"juki", "kaigo"})) == control.control_sql
