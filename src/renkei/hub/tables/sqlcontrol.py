"""Disclosure control for results of user-written SQL (issue 8 rule 6).

A result may be shown as an aggregate only when the hub itself can compute each cell's contributors. That is
the case for one plain ``SELECT … FROM views … [WHERE …] GROUP BY …`` whose every output column is either a
grouping expression or ``count(*)`` / ``count(DISTINCT <base>.pid)``: the hub re-derives, from the same FROM,
WHERE and GROUP BY, each group's persons (distinct pid and period of the base view) and their cell key, so
the counts get exactly the perturbation the table builder gives the same cell. Anything else — other
aggregates (a max is one person's value), set operations, window functions, subqueries in FROM — is not
shown automatically: it is row-level, or goes to review.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
import sqlglot.expressions as exp

from renkei.hub.tables.compile import CELL_KEY_MODULUS, PERIOD, PID

DIALECT = "duckdb"


@dataclass(frozen=True, slots=True)
class Controllable:
    """How to re-derive the contributors of an aggregate query's groups."""

    group_columns: tuple[str, ...]  # result columns that are grouping expressions
    count_columns: tuple[str, ...]  # result columns that are person counts
    control_sql: str  # one row per group: the group columns, n, ckey


@dataclass(frozen=True, slots=True)
class NotControllable:
    reason_ja: str
    reason_en: str


def analyse(sql: str, schema: Mapping[str, Mapping[str, str]]) -> Controllable | NotControllable:
    """Whether ``sql`` is an aggregate the hub can protect, and the control query if so."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.ParseError:
        return _no("SQL を解析できません", "the SQL cannot be parsed")
    if not isinstance(tree, exp.Select) or tree.args.get("with_") or tree.args.get("with"):
        return _no(
            "単一の SELECT（WITH なし）のみ自動で集計表示できます",
            "only a single SELECT without WITH is controlled",
        )
    group = tree.args.get("group")
    if group is None or not (group.expressions or group.args.get("all")):
        return _no("GROUP BY のない結果は個票として扱います", "a result without GROUP BY is row-level")
    if tree.find(exp.Window) is not None or tree.args.get("having") is not None:
        return _no(
            "ウィンドウ関数や HAVING を含む結果は審査が必要です", "window functions and HAVING need review"
        )
    base = _base_alias(tree, schema)
    if base is None:
        return _no(
            "FROM の最初の表が仮名IDを持つビューではありません", "the first FROM item is not a view with pid"
        )
    groups = _grouping_expressions(tree, group)
    group_columns, count_columns, selected = [], [], []
    for projection in tree.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        name = projection.alias_or_name
        if inner.sql(dialect=DIALECT) in groups:
            group_columns.append(name)
            selected.append(exp.alias_(inner.copy(), _q(name), quoted=True))
        elif _is_person_count(inner, base):
            count_columns.append(name)
        else:
            return _no(
                f"列 {name} は人数（count）以外の集計のため、自動では表示できません（審査へ）",
                f"column {name!r} is an aggregate other than a person count; it needs review",
            )
    if not count_columns or len(group_columns) != len(groups):
        return _no(
            "グループ列と人数列だけからなる結果が必要です", "the result must be group columns and counts only"
        )
    units = exp.select(
        *selected,
        exp.alias_(exp.column(PID, table=base), "_unit"),
        exp.alias_(exp.column(PERIOD, table=base), "_period"),
    ).distinct()
    units.set("from", tree.args["from"].copy())
    for key in ("joins", "where"):
        if tree.args.get(key):
            units.set(key, tree.args[key].copy() if key == "where" else [j.copy() for j in tree.args[key]])
    names = ", ".join(_q(n) for n in group_columns)
    control = (
        f"SELECT {names}, count(*) AS n, (sum(rk.rkey) % {CELL_KEY_MODULUS})::UBIGINT AS ckey "
        f"FROM ({units.sql(dialect=DIALECT)}) AS u JOIN _record_keys AS rk ON rk.pid = u._unit GROUP BY ALL"
    )
    return Controllable(tuple(group_columns), tuple(count_columns), control)


def _grouping_expressions(tree: exp.Select, group: exp.Group) -> set[str]:
    if not group.args.get("all"):
        return {g.sql(dialect=DIALECT) for g in group.expressions}
    inner = (p.this if isinstance(p, exp.Alias) else p for p in tree.expressions)  # GROUP BY ALL
    return {e.sql(dialect=DIALECT) for e in inner if e.find(exp.AggFunc) is None}


def _base_alias(tree: exp.Select, schema: Mapping[str, Mapping[str, str]]) -> str | None:
    source = tree.args["from"].this if tree.args.get("from") else None
    if not isinstance(source, exp.Table) or source.name not in schema or PID not in schema[source.name]:
        return None
    return source.alias_or_name


def _is_person_count(node: exp.Expression, base: str) -> bool:
    """``count(*)`` or ``count(DISTINCT <base>.pid)``: counts whose contributors are the base's persons."""
    if not isinstance(node, exp.Count):
        return False
    arg = node.this
    if isinstance(arg, exp.Star):
        return True
    if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1:
        column = arg.expressions[0]
        return isinstance(column, exp.Column) and column.name == PID and column.table in {base, ""}
    return False


def _q(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=DIALECT)


def _no(ja: str, en: str) -> NotControllable:
    return NotControllable(ja, en)
