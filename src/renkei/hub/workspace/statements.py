"""The first filter on user SQL, and which views a query reads (for the audit log).

The filter is NOT the security boundary: ``WITH x AS (COPY …) SELECT 1`` is classified SELECT (engine facts
§9); the lock-down, the sealed memfds, the OS user and the process boundary are. It only keeps obvious
non-queries out and fails closed on a statement type this DuckDB's Python enum does not know.
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb
import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import SqlglotError

from renkei.hub.workspace.errors import QueryRefused


def check_select(sql: str) -> None:
    """Raise :class:`QueryRefused` unless ``sql`` is exactly one statement of type SELECT."""
    try:
        statements = duckdb.extract_statements(sql)
        types = [s.type for s in statements]
    except (duckdb.Error, ValueError) as e:  # ValueError: a type the enum lacks (e.g. UPDATE EXTENSIONS)
        raise QueryRefused(
            "SQL を解釈できないため実行しません", f"the SQL cannot be classified ({type(e).__name__})"
        ) from e
    if len(types) != 1:
        raise QueryRefused(
            "一度に実行できる文は SELECT 文ひとつだけです",
            f"expected exactly one statement, got {len(types)}",
        )
    if types[0] != duckdb.StatementType.SELECT:
        raise QueryRefused(
            "実行できるのは SELECT 文（問い合わせ）だけです",
            f"only SELECT statements run here, not {types[0].name}",
        )


def views_read(sql: str, views: Collection[str]) -> set[str] | None:
    """The workspace views ``sql`` names, or None when that cannot be told (a table function, a parse failure).

    None means: count every opened snapshot as read.
    """
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except (SqlglotError, RecursionError):  # RecursionError: nesting deeper than sqlglot's recursion
        return None
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    found: set[str] = set()
    for table in tree.find_all(exp.Table):
        if table.name in views:
            found.add(table.name)
        elif not table.name or table.name not in ctes:
            return None
    return found
