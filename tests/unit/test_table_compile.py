"""The table builder's SQL: right numbers on a small fixture, computed independently in Python."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import duckdb
import pydantic
import pytest

from renkei.hub.tables.compile import TableRequestError, compile_table
from renkei.hub.tables.request import (
    AgeBand,
    Category,
    Filter,
    HouseholdSize,
    Link,
    Measure,
    Period,
    TableRequest,
)

P1, P2 = dt.date(2024, 1, 1), dt.date(2025, 1, 1)
# pid, household, age, sex, ward, period
RESIDENTS = [
    ("p1", "h1", 3, "男", "中央区", P1),
    ("p2", "h1", 34, "女", "中央区", P1),
    ("p3", "h2", 81, "女", "灘区", P1),
    ("p4", "h3", 77, "男", "灘区", P1),
    ("p1", "h1", 4, "男", "中央区", P2),
    ("p2", "h1", 35, "女", "中央区", P2),
    ("p3", "h2", 82, "女", "灘区", P2),
    ("p5", "h4", 101, "男", "灘区", P2),
]
CARE = [("p3", "要介護1", 1000, P1), ("p3", "要介護2", 2000, P2), ("p4", "要介護1", 500, P1)]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE juki (pid VARCHAR, household_id VARCHAR, age SMALLINT, 性別 VARCHAR,"
        " 住所_ward VARCHAR, period DATE)"
    )
    con.executemany("INSERT INTO juki VALUES (?, ?, ?, ?, ?, ?)", RESIDENTS)
    con.execute("CREATE TABLE kaigo (pid VARCHAR, 要介護度 VARCHAR, 給付費月額 BIGINT, period DATE)")
    con.executemany("INSERT INTO kaigo VALUES (?, ?, ?, ?)", CARE)
    con.execute(
        "CREATE TABLE _record_keys AS SELECT DISTINCT pid, (hash(pid) % 4294967296)::UBIGINT AS rkey"
        " FROM (SELECT pid FROM juki UNION SELECT household_id FROM juki)"
    )
    return con


def _schema(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns").fetchall()
    schema: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        schema.setdefault(table, {})[column] = kind
    return schema


def test_linked_persons_by_ward_and_band_match_python(con: duckdb.DuckDBPyConnection) -> None:
    request = TableRequest(
        dataset="juki",
        dimensions=[Category(column="住所_ward"), AgeBand(width=10), Period()],
        links=[Link(dataset="kaigo")],
    )
    compiled = compile_table(request, _schema(con))
    got = {tuple(r[:3]): r[3] for r in con.execute(compiled.sql).fetchall()}
    cared = {(pid, period) for pid, _, _, period in CARE}
    expected = Counter(
        (ward, min(age, 100) // 10 * 10, period)
        for pid, _, age, _, ward, period in RESIDENTS
        if (pid, period) in cared
    )
    assert got == dict(expected)


def test_control_sql_has_every_margin_with_cell_keys(con: duckdb.DuckDBPyConnection) -> None:
    request = TableRequest(dataset="juki", dimensions=[Category(column="性別"), Period()])
    compiled = compile_table(request, _schema(con))
    rows = con.execute(compiled.control_sql).fetchall()
    keys = dict(con.execute("SELECT pid, rkey FROM _record_keys").fetchall())
    grand = next(r for r in rows if r[2] == 1 and r[3] == 1)
    assert grand[4] == len(RESIDENTS)
    assert grand[5] == sum(keys[r[0]] for r in RESIDENTS) % 2**32
    women_p1 = next(r for r in rows if r[0] == "女" and r[1] == P1)
    assert women_p1[4] == 2 and women_p1[5] == (keys["p2"] + keys["p3"]) % 2**32
    assert len(rows) == 2 * 2 + 2 + 2 + 1  # cells, two margins, grand total


def test_households_by_size_and_sum_with_top_contributions(con: duckdb.DuckDBPyConnection) -> None:
    schema = _schema(con)
    households = compile_table(
        TableRequest(
            dataset="juki", dimensions=[HouseholdSize(), Period()], measure=Measure(kind="households")
        ),
        schema,
    )
    got = {(r[0], r[1]): r[2] for r in con.execute(households.sql).fetchall()}
    assert got == {(2, P1): 1, (1, P1): 2, (2, P2): 1, (1, P2): 2}
    sums = compile_table(
        TableRequest(
            dataset="kaigo",
            dimensions=[Category(column="要介護度")],
            measure=Measure(kind="sum", column="給付費月額"),
        ),
        schema,
    )
    rows = {r[0]: r for r in con.execute(sums.control_sql).fetchall()}
    assert rows["要介護1"][4] == 1500 and rows["要介護1"][5] == [1000, 500]


def test_filters_periods_and_absent_links(con: duckdb.DuckDBPyConnection) -> None:
    request = TableRequest(
        dataset="juki",
        periods=[P2],
        dimensions=[Category(column="住所_ward")],
        filters=[Filter(column="age", op="between", low=65)],
        links=[Link(dataset="kaigo", present=False)],
    )
    rows = con.execute(compile_table(request, _schema(con)).sql).fetchall()
    assert rows == [("灘区", 1)]  # p5 (101, no care); p3 has care in P2


@pytest.mark.parametrize(
    "request_",
    [
        TableRequest(dataset="kokuho", dimensions=[Period()]),
        TableRequest(dataset="juki", dimensions=[Category(column="氏名")]),
        TableRequest(dataset="juki", dimensions=[Category(column="pid")]),
        TableRequest(dataset="juki", dimensions=[Category(column="household_id")]),
        TableRequest(dataset="juki", dimensions=[Period()], measure=Measure(kind="sum", column="性別")),
        TableRequest(dataset="juki", dimensions=[Period()], filters=[Filter(column="pid", values=["p1"])]),
        TableRequest(dataset="kaigo", dimensions=[Period()], measure=Measure(kind="households")),
    ],
)
def test_bad_requests_are_refused_naming_the_part(
    con: duckdb.DuckDBPyConnection, request_: TableRequest
) -> None:
    with pytest.raises(TableRequestError):
        compile_table(request_, _schema(con))


def test_literals_cannot_inject_sql(con: duckdb.DuckDBPyConnection) -> None:
    hostile = "x') OR 1=1 --"
    request = TableRequest(
        dataset="juki", dimensions=[Period()], filters=[Filter(column="性別", values=[hostile])]
    )
    assert con.execute(compile_table(request, _schema(con)).sql).fetchall() == []


def test_request_validation() -> None:
    with pytest.raises(pydantic.ValidationError):
        TableRequest(dataset="juki", dimensions=[])
    with pytest.raises(pydantic.ValidationError):
        TableRequest(dataset="juki", dimensions=[Period(), Period()])
    with pytest.raises(pydantic.ValidationError):
        Measure(kind="sum")
    with pytest.raises(pydantic.ValidationError):
        Filter(column="age", op="between")


UNIQUE_REQUESTS = [
    TableRequest(dataset="juki", dimensions=[Category(column="住所_ward"), AgeBand(width=10), Period()]),
    TableRequest(dataset="juki", dimensions=[HouseholdSize(), Period()]),
    TableRequest(dataset="juki", dimensions=[Category(column="性別")], links=[Link(dataset="kaigo")]),
    TableRequest(
        dataset="kaigo",
        dimensions=[Category(column="要介護度")],
        measure=Measure(kind="sum", column="給付費月額"),
    ),
    TableRequest(dataset="juki", dimensions=[Period()], measure=Measure(kind="households")),
]


@pytest.mark.parametrize("request_", UNIQUE_REQUESTS)
def test_a_base_without_a_repeated_pid_gives_the_same_cells_without_deduplication(
    con: duckdb.DuckDBPyConnection, request_: TableRequest
) -> None:
    schema = _schema(con)
    deduplicated = compile_table(request_, schema)
    plain = compile_table(request_, schema, frozenset({"juki", "kaigo"}))
    persons = request_.measure.kind != "households"
    assert ("GROUP BY ALL) AS u" not in plain.control_sql) is persons  # households are always deduplicated
    assert con.execute(plain.control_sql).fetchall() == con.execute(deduplicated.control_sql).fetchall()
    assert con.execute(plain.sql).fetchall() == con.execute(deduplicated.sql).fetchall()


def test_household_sizes_are_deduplicated_unless_the_register_has_no_repeated_pid(
    con: duckdb.DuckDBPyConnection,
) -> None:
    request = TableRequest(dataset="kaigo", dimensions=[HouseholdSize()])
    schema = _schema(con)
    assert "GROUP BY ALL) AS u" in compile_table(request, schema, frozenset({"kaigo"})).control_sql
    assert (
        "GROUP BY ALL) AS u" not in compile_table(request, schema, frozenset({"kaigo", "juki"})).control_sql
    )


def test_a_repeated_pid_counts_once_only_when_deduplicated(con: duckdb.DuckDBPyConnection) -> None:
    """Why the workspace must know: over a base with a pid on two rows of a period, skipping the
    deduplication would count that person twice."""
    con.execute("INSERT INTO kaigo VALUES ('p3', '要介護1', 700, DATE '2024-01-01')")
    request = TableRequest(dataset="kaigo", dimensions=[Category(column="要介護度"), Period()])
    schema = _schema(con)
    cell = ("要介護1", P1)
    deduplicated = {
        tuple(r[:2]): r[4] for r in con.execute(compile_table(request, schema).control_sql).fetchall()
    }
    plain = compile_table(request, schema, frozenset({"kaigo"})).control_sql
    assert deduplicated[cell] == 2
    assert {tuple(r[:2]): r[4] for r in con.execute(plain).fetchall()}[cell] == 3
