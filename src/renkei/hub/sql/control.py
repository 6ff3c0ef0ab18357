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

    columns: tuple[str, ...]  # every result column's name, in order (made unique: ``_col_<i>``)
    group_columns: tuple[str, ...]  # result columns that are grouping expressions
    count_columns: tuple[str, ...]  # result columns that are person counts
    control_sql: str  # one row per group: the group columns, n, ckey
    base_view: str = ""  # the view of the first FROM item
    one_row_control_sql: str | None = None  # the same without deduplication, for a count of rows over a base
    deterministic: bool = False  # only functions of DETERMINISTIC: its result may be reused (workspace.reuse)

    def control_sql_over(self, unique: frozenset[str]) -> str:
        """The control query, given the views in which a person is on one row per period (``unique``): over
        such a base, without joins, a person in a period is one row already, so it is not deduplicated."""
        if self.one_row_control_sql is not None and self.base_view in unique:
            return self.one_row_control_sql
        return self.control_sql


@dataclass(frozen=True, slots=True)
class NotControllable:
    reason_ja: str
    reason_en: str


def analyse(sql: str, schema: Mapping[str, Mapping[str, str]]) -> Controllable | NotControllable:
    """Whether ``sql`` is an aggregate the hub can protect, and the control query if so."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except (sqlglot.errors.SqlglotError, RecursionError):  # a token error too; RecursionError: deep nesting
        return _no("SQL を解析できません", "the SQL cannot be parsed")
    refusal = _shape_refusal(tree, schema)
    if refusal is not None:
        return refusal
    assert isinstance(tree, exp.Select)
    base = _base_alias(tree, schema)
    if base is None:
        return _no(
            "FROM の最初の表が仮名IDを持つビューではありません", "the first FROM item is not a view with pid"
        )
    groups = _grouping_expressions(tree)
    group_columns, count_kinds, selected = [], set(), []
    count_columns = []
    names = _unique_names(tree)
    for projection, name in zip(tree.expressions, names, strict=True):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        kind = _person_count_kind(inner, base)
        if kind is not None:
            count_columns.append(name)
            count_kinds.add(kind)
        elif inner.sql(dialect=DIALECT) in groups:
            group_columns.append(name)
            selected.append(exp.alias_(inner.copy(), name, quoted=True))
        else:
            return _no(
                f"列 {name} は人数（count）以外の集計のため、自動では表示できません（審査へ）",
                f"column {name!r} is an aggregate other than a person count; it needs review",
            )
    if not count_columns or len(group_columns) != len(groups) or len(count_kinds) != 1:
        return _no(
            "グループ列と、同じ種類の人数列だけからなる結果が必要です",
            "the result must be its group columns and counts of one kind only",
        )
    kind = count_kinds.pop()
    one_row = kind == "rows" and not tree.args.get("joins")
    return Controllable(
        tuple(names),
        tuple(group_columns),
        tuple(count_columns),
        _control_sql(tree, base, selected, kind),
        tree.args["from_"].this.name,
        _control_sql(tree, base, selected, kind, distinct=False) if one_row else None,
        deterministic(tree),
    )


# Functions whose value depends on their arguments alone. Anything else — random(), now(), current_date,
# uuid(), nextval(), a function sqlglot does not know (Anonymous) — makes a query's result not reusable.
DETERMINISTIC: tuple[type[exp.Func], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Count", "Sum", "Cast", "TryCast", "Least", "Greatest", "Coalesce", "Nullif", "If", "Case", "And",
        "Or", "Xor", "Abs", "Round", "Floor", "Ceil", "Extract", "TimestampTrunc", "DateTrunc", "Year",
        "Month", "Day", "TimeToStr", "Upper", "Lower", "Substring", "Length", "Concat", "Trim", "StrPosition",
    )
    if hasattr(exp, name)
)  # fmt: skip


def deterministic(tree: exp.Expr) -> bool:
    """Whether every function in ``tree`` is one of :data:`DETERMINISTIC` (unknown ones count as volatile)."""
    return all(isinstance(f, DETERMINISTIC) for f in tree.find_all(exp.Func))


def _unique_names(tree: exp.Select) -> list[str]:
    names: list[str] = []
    for i, projection in enumerate(tree.expressions):
        name = projection.alias_or_name
        names.append(name if name and name != "*" and name not in names else f"_col_{i}")
    return names


def _shape_refusal(tree: exp.Expr, schema: Mapping[str, Mapping[str, str]]) -> NotControllable | None:
    if not isinstance(tree, exp.Select) or tree.args.get("with_"):
        return _no(
            "単一の SELECT（WITH なし）のみ自動で集計表示できます",
            "only a single SELECT without WITH is controlled",
        )
    unknown = sorted({t.sql(dialect=DIALECT) for t in tree.find_all(exp.Table) if t.name not in schema})
    if unknown:
        return _no(
            f"ワークスペースのビュー以外を参照しています: {', '.join(unknown)}",
            f"the query reads something other than the workspace's views: {', '.join(unknown)}",
        )
    group = tree.args.get("group")
    if group is None or not (group.expressions or group.args.get("all")):
        return _no("GROUP BY のない結果は個票として扱います", "a result without GROUP BY is row-level")
    if any(isinstance(g, (exp.Cube, exp.Rollup, exp.GroupingSets)) for g in group.find_all(exp.Expression)):
        return _no("CUBE・ROLLUP は集計表作成機能をご利用ください", "CUBE and ROLLUP: use the table builder")
    if tree.find(exp.Window) is not None or tree.args.get("having") is not None:
        return _no(
            "ウィンドウ関数や HAVING を含む結果は審査が必要です", "window functions and HAVING need review"
        )
    return None


def _control_sql(
    tree: exp.Select, base: str, selected: list[exp.Expr], kind: str, *, distinct: bool = True
) -> str:
    """One row per group: the group columns, its persons n and their cell key, from the same FROM and WHERE."""
    unit_columns = [exp.alias_(exp.column(PID, table=base), "_unit")]
    if kind == "rows":
        unit_columns.append(exp.alias_(exp.column(PERIOD, table=base), "_period"))
    units = exp.select(*selected, *unit_columns)
    if distinct:
        units = units.distinct()
    units.set("from_", tree.args["from_"].copy())
    if tree.args.get("joins"):
        units.set("joins", [j.copy() for j in tree.args["joins"]])
    if tree.args.get("where"):
        units.set("where", tree.args["where"].copy())
    names = "".join(f"u.{_q(e.alias)}, " for e in selected)
    return (
        f"SELECT {names}count(*) AS n, (sum(rk.rkey) % {CELL_KEY_MODULUS})::UBIGINT AS ckey "
        f"FROM ({units.sql(dialect=DIALECT)}) AS u JOIN _record_keys AS rk ON rk.pid = u._unit GROUP BY ALL"
    )


def _grouping_expressions(tree: exp.Select) -> set[str]:
    """The grouping expressions as SQL text; ``GROUP BY 1`` and ``GROUP BY alias`` name a projection."""
    group = tree.args["group"]
    projections = [p.this if isinstance(p, exp.Alias) else p for p in tree.expressions]
    if group.args.get("all"):
        return {e.sql(dialect=DIALECT) for e in projections if e.find(exp.AggFunc) is None}
    aliases = {p.alias: p.this for p in tree.expressions if isinstance(p, exp.Alias)}
    result = set()
    for item in group.expressions:
        g = item
        if isinstance(item, exp.Literal) and item.is_int and 1 <= int(item.this) <= len(projections):
            g = projections[int(item.this) - 1]
        elif isinstance(item, exp.Column) and not item.table and item.name in aliases:
            g = aliases[item.name]
        result.add(g.sql(dialect=DIALECT))
    return result


def _base_alias(tree: exp.Select, schema: Mapping[str, Mapping[str, str]]) -> str | None:
    source = tree.args["from_"].this if tree.args.get("from_") else None
    if not isinstance(source, exp.Table) or source.name not in schema or PID not in schema[source.name]:
        return None
    return source.alias_or_name


def _person_count_kind(node: exp.Expression, base: str) -> str | None:
    """``count(*)`` counts rows ("rows": a person in a period); ``count(DISTINCT <base>.pid)`` persons."""
    if not isinstance(node, exp.Count):
        return None
    arg = node.this
    if isinstance(arg, exp.Star):
        return "rows"
    if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1:
        column = arg.expressions[0]
        if isinstance(column, exp.Column) and column.name == PID and column.table in {base, ""}:
            return "persons"
    return None


def _q(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=DIALECT)


def _no(ja: str, en: str) -> NotControllable:
    return NotControllable(ja, en)
