"""The table builder's one service function, called by the CLI, the API and the demo alike.

request → SQL (:mod:`compile`) → cells with person counts and cell keys, computed inside the workspace's
sandbox on its control database → disclosure control (:mod:`renkei.hub.disclosure`) → a shown table. Only
the protected values leave this function; the audit log records the request and the rules, never a value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from renkei.hub.tables.compile import CompiledTable, Schema, compile_table
from renkei.hub.tables.display import TOTAL, ShownCell, ShownTable, show
from renkei.hub.tables.request import TableRequest


class TableWorkspace(Protocol):
    """What the builder needs of a workspace (:class:`renkei.hub.workspace.Workspace` provides it)."""

    def schema(self) -> Schema: ...

    def unique_units(self) -> frozenset[str]: ...

    def control_query(self, sql: str, *, reusable: bool = False) -> pa.Table: ...


@dataclass(frozen=True, slots=True)
class BuiltTable:
    compiled: CompiledTable
    shown: ShownTable
    record: dict[str, Any]  # the machine-readable release record: rules, parameters, versions
    cells: Cells  # the true inputs, for the release ledger's differencing check; never shown

    @property
    def sql(self) -> str:
        return self.compiled.sql

    def record_sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.record, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Cells:
    """The control query's result as Python columns: coordinates per cell (TOTAL for a margin) and inputs."""

    coordinates: list[tuple[Any, ...]]
    n: list[int]
    ckey: list[int]
    value: list[float | None]
    top: list[list[float] | None]


def read_cells(table: pa.Table, dimensions: Sequence[str]) -> Cells:
    """Turn GROUPING() flags into TOTAL coordinates, so a margin never looks like a missing value."""
    columns = table.to_pydict()
    rows = table.num_rows
    coordinates = [
        tuple(TOTAL if columns["_total_" + d][i] else columns[d][i] for d in dimensions) for i in range(rows)
    ]
    return Cells(coordinates, columns["n"], columns["ckey"], columns["value"], columns["top"])


def build_table(workspace: TableWorkspace, request: TableRequest, protect: CellProtector) -> BuiltTable:
    """Compile, compute inside the sandbox, protect and shape one table."""
    compiled = compile_table(request, workspace.schema(), workspace.unique_units())
    # Compiled from the request alone (no volatile function): the same table over the same snapshots may
    # reuse another workspace's result (renkei.hub.workspace.reuse).
    cells = read_cells(workspace.control_query(compiled.control_sql, reusable=True), compiled.dimensions)
    shown_cells, record = protect(request, compiled, cells)
    shown = show(request, compiled.dimensions, compiled.measure, shown_cells)
    record = {
        **record,
        "request": request.model_dump(mode="json"),
        "created": dt.datetime.now(dt.UTC).isoformat(),
    }
    return BuiltTable(compiled, shown, record, cells)


class CellProtector(Protocol):
    """Disclosure control over computed cells: the protected cells and the release record."""

    def __call__(
        self, request: TableRequest, compiled: CompiledTable, cells: Cells
    ) -> tuple[list[ShownCell], Mapping[str, Any]]: ...
