"""Rule 3: pseudonymous IDs are joined on, never shown.

A result column *carries* an ID when its value depends on an ID column (pid, household_id, guardian_pid …)
through anything but counting: directly, cast, hashed, sliced, concatenated, compared in a CASE, or as
``min(pid)`` / ``list(pid)``. Only ``count(x)``, ``count(DISTINCT x)`` and ``approx_count_distinct(x)`` turn an
ID into a number that reveals none of its values. The decision follows the parsed query's lineage (sqlglot,
DuckDB dialect) through subqueries, CTEs and set operations, never column names: ``SELECT pid AS x`` carries.
A query that cannot be analysed is treated as carrying (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from renkei.errors import RenkeiError

DIALECT = "duckdb"
_COUNTING = (exp.Count, exp.ApproxDistinct)


class LineageError(RenkeiError):
    """The query could not be analysed; its result is not shown."""


@dataclass(frozen=True, slots=True)
class Lineage:
    """Which result columns (by position) carry ID values."""

    columns: tuple[str, ...]
    carrying: frozenset[int]

    @property
    def carries_ids(self) -> bool:
        return bool(self.carrying)

    def carrying_names(self) -> list[str]:
        return [self.columns[i] for i in sorted(self.carrying)]


def id_lineage(
    sql: str, schema: Mapping[str, Mapping[str, str]], id_columns: Mapping[str, Set[str]]
) -> Lineage:
    """The lineage of ``sql``'s result columns over the workspace's views; ``id_columns``: view → ID columns."""
    try:
        tree = qualify(sqlglot.parse_one(sql, read=DIALECT), schema=_lowered(schema), dialect=DIALECT)
        root = build_scope(tree)
    except (SqlglotError, KeyError, ValueError, RecursionError) as exc:  # RecursionError: deep nesting
        raise LineageError(
            "SQL の列の由来を解析できないため、結果は表示できません",
            f"cannot analyse the lineage of the query's columns: {exc}",
            None,
        ) from None
    if root is None:
        raise LineageError("SQL を解析できません", "the query has no SELECT to analyse", None)
    carrying = _carrying(root, id_columns)
    names = tuple(_output_names(root))
    return Lineage(names, frozenset(i for i, name in enumerate(names) if name in carrying or i in carrying))


def _carrying(scope: Scope, id_columns: Mapping[str, Set[str]]) -> set[str | int]:
    """Output columns of ``scope`` (by name and by position) whose values depend on an ID."""
    if scope.set_operation_scopes:
        branches = [_carrying(s, id_columns) for s in scope.set_operation_scopes]
        positions = {p for b in branches for p in b if isinstance(p, int)}
        return positions | {n for i, n in enumerate(_output_names(scope)) if i in positions}
    if not isinstance(scope.expression, exp.Select):
        return set(range(len(_output_names(scope))))  # VALUES, PIVOT …: not analysed, so carrying
    result: set[str | int] = set()
    for position, projection in enumerate(scope.expression.expressions):
        if _depends_on_id(projection, scope, id_columns):
            result |= {position, projection.alias_or_name}
    return result


def _depends_on_id(node: exp.Expression, scope: Scope, id_columns: Mapping[str, Set[str]]) -> bool:
    for column in node.find_all(exp.Column):
        if _under_counting(column, node):
            continue
        if _column_carries(column, scope, id_columns):
            return True
    if any(not _under_counting(t, node) for t in node.find_all(exp.TableColumn)):
        return True  # `SELECT juki FROM juki`: the whole row as a struct
    return any(not isinstance(star.parent, _COUNTING) for star in node.find_all(exp.Star))  # unexpanded


def _column_carries(column: exp.Column, scope: Scope, id_columns: Mapping[str, Set[str]]) -> bool:
    source = scope.sources.get(column.table)
    if isinstance(source, exp.Table):
        return column.name.lower() in {c.lower() for c in id_columns.get(source.name.lower(), ())}
    if isinstance(source, Scope):
        inner = _carrying(source, id_columns)
        return column.name in inner
    return True  # an unresolved source (table function, lateral …): fail closed


def _under_counting(column: exp.Expression, top: exp.Expression) -> bool:
    node = column.parent
    while node is not None and node is not top.parent:
        if isinstance(node, _COUNTING):
            return True
        node = node.parent
    return False


def _output_names(scope: Scope) -> list[str]:
    expression = scope.expression
    while isinstance(expression, exp.SetOperation):
        expression = expression.this
    if isinstance(expression, exp.Select):
        return [p.alias_or_name for p in expression.expressions]
    return []


def _lowered(schema: Mapping[str, Mapping[str, str]]) -> dict[str, object]:
    return {view: dict(columns) for view, columns in schema.items()}
