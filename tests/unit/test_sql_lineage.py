"""Rule 3: a result column carrying pseudonymous-ID values is found by lineage, not by name."""

from __future__ import annotations

import pytest

from renkei.hub.sql.lineage import LineageError, id_lineage

SCHEMA = {
    "juki": {
        "pid": "VARCHAR",
        "age": "INTEGER",
        "period": "DATE",
        "household_id": "VARCHAR",
        "住所_ward": "VARCHAR",
    },
    "kaigo": {"pid": "VARCHAR", "要介護度": "VARCHAR", "period": "DATE"},
}
IDS = {"juki": {"pid", "household_id"}, "kaigo": {"pid"}}

CASES = {
    "select * from juki": True,
    "select age, count(*) from juki group by age": False,
    "select age, count(distinct pid) c from juki group by age": False,
    'select "要介護度", min(pid) from kaigo group by all': True,
    "select pid::varchar from juki": True,
    "select md5(pid) from juki": True,
    "select age || household_id from juki": True,
    "with a as (select pid as x, age from juki) select x from a": True,
    "with a as (select pid as x, age from juki) select age from a": False,
    "select x from (select pid as x from juki) t": True,
    "select age from juki union all select pid from kaigo": True,
    "select age from juki union all select 1 from kaigo": False,
    "select case when pid < '8' then 1 else 0 end from juki": True,
    "select list(pid) from juki": True,
    "select string_agg(pid, ',') from juki": True,
    "select j.age, count(distinct k.pid) from juki j join kaigo k on j.pid=k.pid and j.period=k.period group by 1": False,
    "from juki select pid": True,
    "select * exclude (pid, household_id) from juki": False,
    "select columns(*) from juki": True,
    "select first(pid) over () from juki": True,
    "select approx_count_distinct(pid) from juki": False,
    "select count(pid) + length(min(pid)) from juki": True,
    "select age from juki where pid = 'ab'": False,
    "select unnest([pid]) from juki": True,
    "select (select max(pid) from kaigo) from juki": True,
    "select * from read_parquet('x')": True,
    "select struct_pack(a := pid) from juki": True,
    "select juki from juki": True,
}


@pytest.mark.parametrize(("sql", "carries"), CASES.items())
def test_lineage_finds_every_id_carrying_column(sql: str, carries: bool) -> None:
    try:
        got = id_lineage(sql, SCHEMA, IDS).carries_ids
    except LineageError:
        got = True  # not analysable is treated as carrying
    assert got is carries


def test_the_carrying_column_is_named_by_position() -> None:
    lineage = id_lineage("select age, pid as x, count(*) from juki group by all", SCHEMA, IDS)
    assert lineage.carrying == {1}
    assert lineage.carrying_names() == ["x"]


def test_an_unknown_view_is_not_analysable() -> None:
    with pytest.raises(LineageError):
        id_lineage("select pid from jido_teate", SCHEMA, IDS)


def test_deeply_nested_sql_is_a_lineage_error() -> None:
    # Found by tests/fuzz: sqlglot's RecursionError escaped as a traceback.
    with pytest.raises(LineageError):
        id_lineage("SELECT " + "(" * 2000 + "1" + ")" * 2000, SCHEMA, IDS)
