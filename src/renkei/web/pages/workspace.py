"""The analyst's workspace (分析ワークスペース): granted views, the table builder, the SQL editor, saved analyses.

Each route parses the form, calls one function of :mod:`renkei.hub.analysis.service` (the functions the JSON
API calls) and renders. A result is shown in the answer to the POST itself, never carried in a URL; after a
save the page says so with ``?done=``. Charts are server-rendered SVG (:mod:`renkei.web.charts`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from renkei.errors import RenkeiError
from renkei.hub.access.people import Role
from renkei.hub.analysis import service
from renkei.hub.analysis.ledger import ReleaseKind
from renkei.hub.analysis.sqlpath import SqlResult
from renkei.hub.tables.display import SUPPRESSED, TOTAL
from renkei.hub.tables.request import TableRequest
from renkei.web.charts import chart_of
from renkei.web.context import Caller, SignedIn
from renkei.web.i18n import language_of
from renkei.web.pages.common import RawForm, done, error_page, page

router = APIRouter(include_in_schema=False)

MAX_SQL = 20_000
MAX_TEXT = 2000
DIMENSION_SLOTS = 3
SPECIAL = {
    "pid",
    "household_id",
    "period",
    "age",
    "school_age",
}  # offered as dimensions of their own, or never
NUMERIC = ("INT", "BIGINT", "INTEGER", "SMALLINT", "DOUBLE", "FLOAT", "REAL", "DECIMAL", "HUGEINT")


@dataclass(frozen=True, slots=True)
class Result:
    """What the page shows of one outcome: rows with a status per value cell, notes, and what it came from."""

    kind: str  # table | aggregate | rows | review
    header: list[str]
    rows: list[list[Any]]
    statuses: list[str]  # one per row: ok | perturbed | suppressed (the value cell's)
    notes: list[str]
    release_id: int | None = None
    sql: str = ""
    record: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False
    chart: Any = None


def _outline(caller: Caller) -> list[service.OutlinedView]:
    return service.workspace_outline(caller.portal.hub, caller.actor, clock=caller.portal.clock)


def _saved(caller: Caller) -> list[Any]:
    if caller.signed_in.role is not Role.ANALYST:
        return []
    return service.saved_analyses(caller.portal.hub, caller.actor)


def _is_numeric(kind: str) -> bool:
    return kind.upper().startswith(NUMERIC)


def _choices(views: list[service.OutlinedView]) -> dict[str, Any]:
    """The builder's choices per granted view: categorical and numeric columns, and every period."""
    categorical = {
        v.name: [
            c
            for c, kind in v.columns.items()
            if c not in SPECIAL and not _is_numeric(kind) and kind != "DATE"
        ]
        for v in views
    }
    numeric = {
        v.name: [c for c, kind in v.columns.items() if c not in SPECIAL and _is_numeric(kind)] for v in views
    }
    periods = sorted({p for v in views for p in v.periods})
    columns = sorted({c for v in views for c in categorical[v.name]})
    return {"categorical": categorical, "numeric": numeric, "periods": periods, "all_categorical": columns,
            "all_numeric": sorted({c for v in views for c in numeric[v.name]})}  # fmt: skip


def _page(
    request: Request,
    caller: Caller,
    *,
    values: dict[str, Any] | None = None,
    result: Result | None = None,
    exc: Exception | None = None,
    status: int = 200,
) -> HTMLResponse:
    views = _outline(caller)  # a catalog.read decision for every caller; none but analysts hold grants
    context: dict[str, Any] = {
        "views": views,
        "choices": _choices(views),
        "saved": _saved(caller),
        "values": {**DEFAULTS, **(values or {})},
        "result": result,
        "slots": range(1, DIMENSION_SLOTS + 1),
        "completion": {v.name: list(v.columns) for v in views},
    }
    if exc is not None:
        return error_page(request, caller, "workspace.html", exc, **context)
    return page(request, caller, "workspace.html", status=status, problem=None, **context)


DEFAULTS: dict[str, Any] = {
    "dataset": "juki", "periods": [], "dim1": "column:住所_ward", "dim2": "", "dim3": "", "band_width": "5",
    "band_top": "100", "measure": "persons", "measure_column": "", "filter_column": "", "filter_op": "in",
    "filter_values": "", "filter_low": "", "filter_high": "", "link_dataset": "", "link_level": "person", "link_present": "present", "chart": "bar", "title": "",
    "sql": "", "review_reason": "", "name": "",
}  # fmt: skip


@router.get("/workspace", response_class=HTMLResponse)
def workspace(request: Request, caller: SignedIn) -> HTMLResponse:
    """The granted views, the builder and the SQL editor; an empty state that says to apply."""
    return _page(request, caller)


# --- the table builder -------------------------------------------------------------------------------------


def _builder_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {
        key: str(form.get(key, default))[:MAX_TEXT] for key, default in DEFAULTS.items() if key != "periods"
    }
    values["periods"] = [str(p)[:10] for p in form.getlist("period")][:100]
    return values


def _dimension(choice: str, values: dict[str, Any]) -> dict[str, Any]:
    if choice == "age_band":
        return {"kind": "age_band", "width": values["band_width"], "top": values["band_top"]}
    if choice in ("school_age", "period", "household_size"):
        return {"kind": choice}
    return {"kind": "column", "column": choice.removeprefix("column:")}


def table_request(values: dict[str, Any]) -> TableRequest:
    """The builder's form as the hub's :class:`TableRequest` (its validation names the wrong field)."""
    dimensions = [
        _dimension(values[f"dim{i}"], values) for i in range(1, DIMENSION_SLOTS + 1) if values[f"dim{i}"]
    ]
    measure: dict[str, Any] = {"kind": values["measure"]}
    if values["measure"] in ("sum", "mean", "median"):
        measure["column"] = values["measure_column"] or None
    filters: list[dict[str, Any]] = []
    if values["filter_column"]:
        raw = values["filter_values"].replace("、", ",").split(",")
        chosen: dict[str, Any] = {"column": values["filter_column"], "op": values["filter_op"]}
        if values["filter_op"] == "between":
            chosen.update(low=values["filter_low"] or None, high=values["filter_high"] or None)
        else:
            chosen["values"] = [v.strip() for v in raw if v.strip()]
        filters.append(chosen)
    links = []
    if values["link_dataset"]:
        links.append({"dataset": values["link_dataset"], "present": values["link_present"] != "absent",
                      "level": values["link_level"]})  # fmt: skip
    data = {
        "dataset": values["dataset"], "periods": values["periods"], "dimensions": dimensions, "measure": measure,
        "filters": filters, "links": links, "chart": values["chart"], "title": values["title"],
    }  # fmt: skip
    try:
        return TableRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


def values_of_request(request: TableRequest) -> dict[str, Any]:
    """A saved builder request back in the form's fields (for re-running and editing)."""
    values: dict[str, Any] = {"dataset": request.dataset, "periods": [p.isoformat() for p in request.periods],
                              "chart": request.chart, "title": request.title, "measure": request.measure.kind,
                              "measure_column": request.measure.column or ""}  # fmt: skip
    for i in range(1, DIMENSION_SLOTS + 1):
        values[f"dim{i}"] = ""
    for i, dimension in enumerate(request.dimensions[:DIMENSION_SLOTS], start=1):
        if dimension.kind == "age_band":
            values[f"dim{i}"] = "age_band"
            values["band_width"], values["band_top"] = str(dimension.width), str(dimension.top)
        elif dimension.kind == "column":
            values[f"dim{i}"] = f"column:{dimension.column}"
        else:
            values[f"dim{i}"] = dimension.kind
    if request.filters:
        first = request.filters[0]
        values.update(
            filter_column=first.column,
            filter_op=first.op,
            filter_values=", ".join(map(str, first.values)),
            filter_low="" if first.low is None else str(first.low),
            filter_high="" if first.high is None else str(first.high),
        )
    if request.links:
        link = request.links[0]
        values.update(link_dataset=link.dataset, link_present="present" if link.present else "absent",
                      link_level=link.level)  # fmt: skip
    return values


def _table_result(
    outcome: service.TableOutcome, chart_title: str, chart_desc: str, language: str = "ja"
) -> Result:
    shown = outcome.shown
    statuses = [c.status for c in shown.cells] if shown.cells else ["ok"] * len(shown.rows)
    if outcome.status == "review":
        return Result("review", shown.header, [], [], shown.notes, outcome.release_id, outcome.sql)
    return Result(
        "table", shown.header, shown.rows, statuses, shown.notes, outcome.release_id, outcome.sql,
        outcome.record,
        chart=chart_of(shown.chart, chart_title or shown.header[-1], chart_desc, language=language),
    )  # fmt: skip


def _sql_result(result: SqlResult) -> Result:
    statuses = ["suppressed" if SUPPRESSED in row else "ok" for row in result.rows]
    return Result(result.kind, result.header, result.rows, statuses, result.notes, result.release_id,
                  truncated=result.truncated)  # fmt: skip


def _chart_desc(request: TableRequest) -> str:
    return f"{request.dataset}: " + " × ".join(getattr(d, "column", d.kind) for d in request.dimensions)


@router.post("/workspace/table", response_model=None)
def build_table(request: Request, caller: SignedIn, form: RawForm) -> Response:
    """Build (集計) or save the builder's table; the result is the answer to this POST."""
    values = _builder_values(form)
    try:
        table = table_request(values)
        if form.get("action") == "save":
            saved = service.save_analysis(caller.portal.hub, caller.actor, values["name"], table,
                                          clock=caller.portal.clock)  # fmt: skip
            return done("/workspace", "analysis_saved", saved.id)
        outcome = service.table_for(caller.portal.hub, caller.actor, table, clock=caller.portal.clock)
    except (RequestValidationError, RenkeiError) as exc:
        return _page(request, caller, values=values, exc=exc)
    result = _table_result(outcome, table.title, _chart_desc(table), language_of(request))
    return _page(request, caller, values=values, result=result)


# --- the SQL editor ----------------------------------------------------------------------------------------


def _sql_values(form: FormData) -> dict[str, Any]:
    return {"sql": str(form.get("sql", ""))[: MAX_SQL + 1], "review_reason": str(form.get("review_reason", ""))[:MAX_TEXT],
            "name": str(form.get("name", ""))[:MAX_TEXT]}  # fmt: skip


def _sql_text(values: dict[str, Any]) -> str:
    sql = values["sql"]
    if not sql.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body", "sql"), "msg": "", "ctx": {}}])
    if len(sql) > MAX_SQL:
        raise RequestValidationError(
            [{"type": "string_too_long", "loc": ("body", "sql"), "msg": "", "ctx": {"max_length": MAX_SQL}}]
        )
    return str(sql)


@router.post("/workspace/query", response_model=None)
def run_query(request: Request, caller: SignedIn, form: RawForm) -> Response:
    """Run (or save) one SELECT: refused with the reason, a protected aggregate, capped rows, or review."""
    values = _sql_values(form)
    try:
        sql = _sql_text(values)
        if form.get("action") == "save":
            saved = service.save_analysis(caller.portal.hub, caller.actor, values["name"], sql,
                                          clock=caller.portal.clock)  # fmt: skip
            return done("/workspace", "analysis_saved", saved.id)
        outcome = service.sql_for(caller.portal.hub, caller.actor, sql, review_reason=values["review_reason"] or None,
                                  clock=caller.portal.clock)  # fmt: skip
    except (RequestValidationError, RenkeiError) as exc:
        return _page(request, caller, values=values, exc=exc)
    return _page(request, caller, values=values, result=_sql_result(outcome))


# --- saved analyses ----------------------------------------------------------------------------------------


@router.post("/workspace/rerun", response_model=None)
def rerun(request: Request, caller: SignedIn, form: RawForm) -> Response:
    """Run a saved analysis again, on one chosen period or on every period granted now (a new import too)."""
    name, period = str(form.get("name", ""))[:200], str(form.get("period", ""))[:10]
    values: dict[str, Any] = {}
    try:
        periods = [dt.date.fromisoformat(period)] if period else []
    except ValueError:
        exc = RequestValidationError(
            [{"type": "date_from_datetime_parsing", "loc": ("body", "period"), "msg": ""}]
        )
        return _page(request, caller, exc=exc)
    try:
        saved = next((s for s in _saved(caller) if s.name == name), None)
        if saved is not None and saved.kind == ReleaseKind.SQL:
            values = {"sql": str(saved.definition.get("sql", "")), "name": name}
        elif saved is not None:
            values = {**values_of_request(TableRequest.model_validate(saved.definition)), "name": name}
            if periods:
                values["periods"] = [period]
        outcome = service.rerun_saved(caller.portal.hub, caller.actor, name, periods=periods,
                                      clock=caller.portal.clock)  # fmt: skip
    except RenkeiError as exc:
        return _page(request, caller, values=values, exc=exc)
    if isinstance(outcome, SqlResult):
        return _page(request, caller, values=values, result=_sql_result(outcome))
    title = str(values.get("title", "")) or name
    result = _table_result(outcome, title, name, language_of(request))
    return _page(request, caller, values=values, result=result)


__all__ = ["TOTAL", "router", "table_request", "values_of_request"]
