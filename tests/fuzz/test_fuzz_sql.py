"""Fuzzing the SQL gate: the statement filter (hub/workspace/statements.py), the lineage check
(hub/sql/lineage.py) and the disclosure-control analysis (hub/sql/control.py), on random SQL-ish text and on
mutated valid queries. Each answers or refuses with its own documented outcome — QueryRefused, LineageError,
NotControllable — never another exception, never a hang."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from renkei.hub.sql.control import Controllable, NotControllable, analyse
from renkei.hub.sql.lineage import LineageError, id_lineage
from renkei.hub.workspace.errors import QueryRefused
from renkei.hub.workspace.statements import check_select, views_read
from tests.fuzz.support import assert_clear

pytestmark = pytest.mark.timeout(300)

SCHEMA = {
    "juki": {"pid": "VARCHAR", "period": "DATE", "age": "INTEGER", "住所_ward": "VARCHAR"},
    "kaigo": {"pid": "VARCHAR", "period": "DATE", "要介護度": "VARCHAR"},
}
IDS = {"juki": {"pid"}, "kaigo": {"pid"}}
VALID = [
    "SELECT 住所_ward, count(DISTINCT pid) AS n FROM juki GROUP BY 住所_ward",
    "SELECT j.age, count(*) FROM juki j JOIN kaigo k ON j.pid = k.pid WHERE k.要介護度 = '1' GROUP BY j.age",
    "WITH x AS (SELECT pid, age FROM juki) SELECT age, count(DISTINCT pid) FROM x GROUP BY age",
    "SELECT pid FROM juki UNION SELECT pid FROM kaigo",
    "SELECT * FROM juki WHERE age > (SELECT avg(age) FROM juki) ORDER BY 1 LIMIT 5",
]
TOKENS = st.sampled_from(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "GROUP BY",
        "HAVING",
        "UNION",
        "WITH",
        "AS",
        "JOIN",
        "ON",
        "COPY",
        "ATTACH",
        "PRAGMA",
        "INSTALL",
        "read_csv('/etc/passwd')",
        "juki",
        "kaigo",
        "pid",
        "age",
        "*",
        "(",
        ")",
        ",",
        ";",
        "'",
        '"',
        "--",
        "/*",
        "*/",
        "count(",
        "DISTINCT",
        "1",
        "1e999999",
        "9" * 5000,
        "NULL",
        "$1",
        "?",
        "::VARCHAR",
        "住所_ward",
        "\x00",
        "\\",
        "`",
        "[",
        "]",
        "{",
        "}",
        "LATERAL",
        "QUALIFY",
        "PIVOT",
    ]
)


@st.composite
def sqlish(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.text(max_size=120))
    if kind == 1:
        return " ".join(draw(st.lists(TOKENS, max_size=25)))
    sql = draw(st.sampled_from(VALID))  # a valid query with a few cuts, insertions and swaps
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(sql)))
        j = draw(st.integers(i, min(len(sql), i + 12)))
        sql = sql[:i] + draw(st.sampled_from(["", " ", draw(TOKENS)])) + sql[j:]
    return sql


@given(sqlish())
@example("SELECT " + "(" * 2000 + "1" + ")" * 2000)  # deep nesting
@example("SELECT 1; SELECT 2")
@example("WITH x AS (COPY juki TO '/tmp/x') SELECT 1")
@example("SELECT " + "9" * 5000)
@example("")
@example("\x00")
def test_any_text_is_answered_or_refused_by_the_gate(sql: str) -> None:
    try:
        check_select(sql)
    except QueryRefused as error:
        assert_clear(error)
    found = views_read(sql, SCHEMA)
    assert found is None or found <= set(SCHEMA)
    try:
        lineage = id_lineage(sql, SCHEMA, IDS)
        assert lineage.carrying <= set(range(len(lineage.columns)))
    except LineageError as error:
        assert_clear(error)
    outcome = analyse(sql, SCHEMA)
    assert isinstance(outcome, Controllable | NotControllable)
