"""Compile a :class:`TableRequest` into SQL over the workspace's views.

Two statements come out of one request:

- ``sql`` — what the user is shown and could run in the SQL editor: one row per cell, the true measure.
- ``control_sql`` — what the hub runs for disclosure control (on the workspace's control database, which alone
  holds ``_record_keys``): the same cells plus every margin (``GROUP BY CUBE``), each with its person count
  ``n``, its cell key ``ckey`` (the sum of its contributors' record keys, mod 2**32) and, for sums, its two
  largest contributions.

The unit counted is a person in a period (or a household in a period): a resident present in three periods
counts once in each period's cell and three times in an all-periods total. Every identifier and literal is
validated against the workspace's schema and quoted, so a request cannot inject SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot.expressions as exp

from renkei.errors import RenkeiError
from renkei.hub.tables.request import (
    AgeBand,
    Category,
    Filter,
    HouseholdSize,
    Link,
    Measure,
    Period,
    SchoolAge,
    TableRequest,
)

Schema = Mapping[str, Mapping[str, str]]  # view -> column -> DuckDB type

PID, HOUSEHOLD, PERIOD = "pid", "household_id", "period"
RESIDENTS = "juki"  # the dataset household sizes are read from
CELL_KEY_MODULUS = 2**32
TOP_CONTRIBUTIONS = (
    10  # the largest contributions per cell: enough for any (n, k) rule policy allows (n ≤ 10)
)
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT", "DECIMAL", "UBIGINT")

DIMENSION_LABELS = {
    "age_band": "年齢階級",
    "school_age": "学年年齢",
    "period": "基準日",
    "household_size": "世帯人員",
}
MEASURE_LABELS = {
    "persons": "人数",
    "households": "世帯数",
    "sum": "合計",
    "mean": "平均",
    "median": "中央値",
}


class TableRequestError(RenkeiError):
    """A table request names something the workspace does not have, or combines parts that do not fit."""


@dataclass(frozen=True, slots=True)
class CompiledTable:
    request: TableRequest
    dimensions: tuple[str, ...]  # output column of each dimension, in order
    measure: str  # output column of the measure
    sql: str
    control_sql: str


def compile_table(
    request: TableRequest, schema: Schema, unique: frozenset[str] = frozenset()
) -> CompiledTable:
    """The SQL for ``request`` over the views in ``schema``; raises :class:`TableRequestError`.

    ``unique`` names the datasets in which a person is on one row per period: counting their persons needs
    no deduplication of (pid, period) first (the workspace knows them: ``Workspace.unique_units``)."""
    columns = _view(schema, request.dataset)
    _check_measure(request.measure, columns, request.dataset)
    names = tuple(_dimension_name(d) for d in request.dimensions)
    exprs = [_dimension_expr(d, columns, request.dataset) for d in request.dimensions]
    unit = HOUSEHOLD if request.measure.kind == "households" else PID
    if unit not in columns:
        raise _error(f"{request.dataset} には世帯番号がありません", f"{request.dataset} has no household_id")
    value = f"b.{_quote(request.measure.column)}" if request.measure.column else None
    where = _where(request, columns, schema)
    joins = _household_join(request, schema)
    dims_select = ", ".join(f"{e} AS {_quote(n)}" for e, n in zip(exprs, names, strict=True))
    if _one_row_per_unit(request, unit, unique):
        units = (
            f"SELECT b.{_quote(unit)} AS _unit, b.{PERIOD} AS _period, {dims_select}"
            + (f", {value} AS _v" if value else "")
            + f" FROM {_quote(request.dataset)} AS b{joins}{where}"
        )
    else:
        units = (
            f"SELECT b.{_quote(unit)} AS _unit, b.{PERIOD} AS _period, {dims_select}"
            + (f", sum({value}) AS _v" if value else "")
            + f" FROM {_quote(request.dataset)} AS b{joins}{where} GROUP BY ALL"
        )
    measure = _measure_label(request.measure)
    dim_list = ", ".join(_quote(n) for n in names)
    user_sql = (
        f"SELECT {dim_list}, {_measure_sql(request.measure)} AS {_quote(measure)}\n"
        f"FROM ({units}) AS u\nGROUP BY ALL\nORDER BY ALL NULLS LAST"
    )
    groupings = ", ".join(f"GROUPING({_quote(n)}) AS {_quote('_total_' + n)}" for n in names)
    control_sql = (
        f"SELECT {dim_list}, {groupings}, count(*) AS n, "
        f"(sum(rk.rkey) % {CELL_KEY_MODULUS})::UBIGINT AS ckey, ({_measure_sql(request.measure)})::DOUBLE AS value, "
        + (f"max(abs(u._v), {TOP_CONTRIBUTIONS})::DOUBLE[] AS top" if value else "NULL::DOUBLE[] AS top")
        + f"\nFROM ({units}) AS u JOIN _record_keys AS rk ON rk.pid = u._unit"
        f"\nGROUP BY CUBE ({dim_list})\nORDER BY ALL NULLS LAST"
    )
    return CompiledTable(request, names, measure, user_sql, control_sql)


# --- parts ------------------------------------------------------------------------------------------------


def _one_row_per_unit(request: TableRequest, unit: str, unique: frozenset[str]) -> bool:
    """Whether each row of the request's base is already one unit in one period: persons of a dataset
    without a repeated pid, joined (for household sizes) to a register without one. Links are EXISTS
    conditions, which never repeat a row."""
    if unit != PID or request.dataset not in unique:
        return False
    return RESIDENTS in unique or not any(isinstance(d, HouseholdSize) for d in request.dimensions)


def _view(schema: Schema, dataset: str) -> Mapping[str, str]:
    if dataset not in schema:
        raise _error(
            f"データセット {dataset} はこのワークスペースにありません（利用承認のあるもの: {', '.join(sorted(schema))}）",
            f"dataset {dataset!r} is not in this workspace (granted: {', '.join(sorted(schema))})",
        )
    return schema[dataset]


def _column(columns: Mapping[str, str], name: str, dataset: str) -> str:
    if name in {PID, HOUSEHOLD} or name.endswith("_id") or name.endswith("_pid"):
        raise _error(
            f"仮名IDの列 {name} は集計の軸や条件に使えません（連携にのみ使います）",
            f"pseudonymous-ID column {name!r} cannot be a dimension or a filter (it is for linking only)",
        )
    if name not in columns:
        raise _error(f"{dataset} に列 {name} はありません", f"{dataset} has no column {name!r}")
    return name


def _check_measure(measure: Measure, columns: Mapping[str, str], dataset: str) -> None:
    if measure.column is None:
        return
    name = _column(columns, measure.column, dataset)
    if not columns[name].upper().startswith(NUMERIC):
        raise _error(
            f"列 {name} は数値ではないため {MEASURE_LABELS[measure.kind]} を計算できません",
            f"column {name!r} is not numeric ({columns[name]}), so it has no {measure.kind}",
        )


def _dimension_name(dimension: AgeBand | SchoolAge | Period | HouseholdSize | Category) -> str:
    if isinstance(dimension, Category):
        return dimension.column
    return DIMENSION_LABELS[dimension.kind]


def _dimension_expr(
    dimension: AgeBand | SchoolAge | Period | HouseholdSize | Category,
    columns: Mapping[str, str],
    dataset: str,
) -> str:
    match dimension:
        case AgeBand(width=width, top=top, column=column):
            age = f"b.{_quote(_column(columns, column, dataset))}"
            return f"(least({age}, {top}) // {width}) * {width}"
        case SchoolAge(column=column):
            return f"b.{_quote(_column(columns, column, dataset))}"
        case Period():
            return f"b.{PERIOD}"
        case HouseholdSize(top=top):
            return f"least(hs._size, {top})"
        case Category(column=column):
            return f"b.{_quote(_column(columns, column, dataset))}"
    raise AssertionError(dimension)  # pragma: no cover - the union is exhaustive


def _household_join(request: TableRequest, schema: Schema) -> str:
    if not any(isinstance(d, HouseholdSize) for d in request.dimensions):
        return ""
    residents = _view(schema, RESIDENTS)
    if HOUSEHOLD not in residents:
        raise _error("住基に世帯番号がありません", "juki has no household_id")
    sizes = f"SELECT {PERIOD}, {PID}, count(*) OVER (PARTITION BY {PERIOD}, {HOUSEHOLD}) AS _size FROM {RESIDENTS}"
    return f" JOIN ({sizes}) AS hs ON hs.{PERIOD} = b.{PERIOD} AND hs.{PID} = b.{PID}"


def _where(request: TableRequest, columns: Mapping[str, str], schema: Schema) -> str:
    conditions = [_filter_sql("b", f, columns, request.dataset) for f in request.filters]
    if request.periods:
        conditions.append(f"b.{PERIOD} IN ({', '.join(_literal(p) for p in request.periods)})")
    conditions += [_link_sql(link, columns, schema, request.dataset) for link in request.links]
    return (" WHERE " + " AND ".join(conditions)) if conditions else ""


def _filter_sql(alias: str, item: Filter, columns: Mapping[str, str], dataset: str) -> str:
    column = f"{alias}.{_quote(_column(columns, item.column, dataset))}"
    if item.op == "between":
        parts = []
        if item.low is not None:
            parts.append(f"{column} >= {_literal(item.low)}")
        if item.high is not None:
            parts.append(f"{column} <= {_literal(item.high)}")
        return "(" + " AND ".join(parts) + ")"
    values = ", ".join(_literal(v) for v in item.values)
    return f"{column} {'NOT IN' if item.op == 'not_in' else 'IN'} ({values})"


def _link_sql(link: Link, base_columns: Mapping[str, str], schema: Schema, base: str) -> str:
    columns = _view(schema, link.dataset)
    if PID not in columns or PID not in base_columns:
        raise _error(f"{link.dataset} とは仮名IDで連携できません", f"{link.dataset} cannot be linked by pid")
    conditions = [f"l.{PERIOD} = b.{PERIOD}"] + [
        _filter_sql("l", f, columns, link.dataset) for f in link.filters
    ]
    if link.level == "person":
        conditions.append(f"l.{PID} = b.{PID}")
        source = f"{_quote(link.dataset)} AS l"
    else:
        if HOUSEHOLD not in base_columns:
            raise _error(f"{base} には世帯番号がありません", f"{base} has no household_id")
        source = f"{_quote(link.dataset)} AS l JOIN {RESIDENTS} AS r ON r.{PID} = l.{PID} AND r.{PERIOD} = l.{PERIOD}"
        conditions.append(f"r.{HOUSEHOLD} = b.{HOUSEHOLD}")
    exists = f"EXISTS (SELECT 1 FROM {source} WHERE {' AND '.join(conditions)})"
    return exists if link.present else f"NOT {exists}"


def _measure_sql(measure: Measure) -> str:
    return {
        "persons": "count(*)",
        "households": "count(*)",
        "sum": "sum(u._v)",
        "mean": "avg(u._v)",
        "median": "median(u._v)",
    }[measure.kind]


def _measure_label(measure: Measure) -> str:
    label = MEASURE_LABELS[measure.kind]
    return f"{label}_{measure.column}" if measure.column else label


def _quote(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def _literal(value: str | int | dt.date) -> str:
    if isinstance(value, dt.date):
        return f"DATE {exp.Literal.string(value.isoformat()).sql(dialect='duckdb')}"
    return exp.convert(value).sql(dialect="duckdb")


def _error(ja: str, en: str) -> TableRequestError:
    return TableRequestError(ja, en)
