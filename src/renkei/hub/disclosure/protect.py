"""The table builder's disclosure control: the rules wired together per policy, and the release record.

Order, for one table of CUBE cells:

1. complete the table: every combination of observed codes (and 計) gets a cell, empty ones as zeros, so
   zeros are shown or suppressed by rule rather than silently missing (counts and sums);
2. primary suppression (:mod:`.suppression`) — for counts only when the method includes suppression; for
   sums, means and medians always (perturbation alone does not protect a dominated sum);
3. secondary suppression and its audit over the table's additive constraints (not for medians, which no
   margin determines); if the audit cannot pass, every cell is suppressed (fail closed);
4. cell key perturbation (:mod:`.cellkey`) of every visible cell when the method includes perturbation;
5. the release record (SATRE 3.3.09): rules, parameters, ptable hash, library versions, cell counts — never a
   value, and never which cells were primary (that would point at the small ones).
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import platform
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei.hub.disclosure.cellkey import Magnitude, magnitude_noise, perturb_counts
from renkei.hub.disclosure.grid import Constraint, Constraints
from renkei.hub.disclosure.policy import DisclosurePolicy, PolicySet
from renkei.hub.disclosure.ptable import build_ptable
from renkei.hub.disclosure.suppression import (
    Hierarchy,
    Kind,
    Pattern,
    cube_constraints,
    primary_suppression,
    protect_pattern,
)
from renkei.hub.tables.compile import RESIDENTS, CompiledTable
from renkei.hub.tables.display import TOTAL, ShownCell
from renkei.hub.tables.request import HouseholdSize, TableRequest
from renkei.hub.tables.service import Cells

RECORD_SCHEMA = "renkei.disclosure.release/1"
MAX_COMPLETED_CELLS = 250_000  # beyond this, empty cells stay implicit (they are zeros either way)
VERSIONED = ("renkei", "duckdb", "pyarrow", "numpy", "scipy", "pydantic")
REASON_SUPPRESSED = "sdc"  # one reason for every suppressed cell: primary and secondary look alike
REASON_PERTURBED = "cell_key"


@dataclass(frozen=True, slots=True)
class Protection:
    shown: list[ShownCell]
    record: dict[str, Any]  # released with the table
    pattern: Pattern | None  # internal: which rule hid which cell (for stewards and tests, never released)


class DisclosureControl:
    """The :class:`renkei.hub.tables.service.CellProtector` of the hub.

    ``hierarchies`` maps a dimension's output column to child → parent codes within it (for tables whose
    dimension mixes levels, such as towns and their wards).
    """

    def __init__(
        self, policies: PolicySet | None = None, hierarchies: Mapping[str, Hierarchy] | None = None
    ) -> None:
        self.policies = policies or PolicySet()
        self.hierarchies = dict(hierarchies or {})

    def __call__(
        self, request: TableRequest, compiled: CompiledTable, cells: Cells
    ) -> tuple[list[ShownCell], dict[str, Any]]:
        policy = self.policies.for_datasets(datasets_of(request))
        hierarchies = {
            d: self.hierarchies[name]
            for d, name in enumerate(compiled.dimensions)
            if name in self.hierarchies
        }
        result = protect_cells(policy, measure_kind(request), cells, hierarchies=hierarchies)
        return result.shown, {**result.record, "datasets": sorted(datasets_of(request))}


def datasets_of(request: TableRequest) -> set[str]:
    """Every dataset whose rows decide the table's cells: the base, the linked ones, 住基 for households."""
    names = {request.dataset, *(link.dataset for link in request.links)}
    if any(isinstance(d, HouseholdSize) for d in request.dimensions) or any(
        link.level == "household" for link in request.links
    ):
        names.add(RESIDENTS)
    return names


def measure_kind(request: TableRequest) -> Kind:
    kind = request.measure.kind
    if kind in {"persons", "households"}:
        return "count"
    assert kind in {"sum", "mean", "median"}
    return kind


def protect_cells(
    policy: DisclosurePolicy,
    kind: Kind,
    cells: Cells,
    *,
    hierarchies: Mapping[int, Hierarchy] | None = None,
    structural: Set[tuple[Any, ...]] = frozenset(),
    extra_constraints: Sequence[tuple[tuple[Any, ...], Sequence[tuple[Any, ...]]]] = (),
) -> Protection:
    """Protect one table's cells. ``structural`` are coordinates of cells that are empty by definition
    (always shown as 0, never suppressed); ``extra_constraints`` are further ``(total, parts)`` relations."""
    table, added = complete(cells) if kind in {"count", "sum"} else (cells, 0)
    index = {c: i for i, c in enumerate(table.coordinates)}
    fixed = {index[c] for c in structural if c in index}
    primary = primary_suppression(policy, kind, table.n, table.value, table.top, fixed)
    pattern = None
    hidden: frozenset[int] = frozenset(primary)
    if primary and kind != "median":
        constraints = cube_constraints(table.coordinates, hierarchies) + [
            Constraint(index[total], tuple(index[p] for p in parts)) for total, parts in extra_constraints
        ]
        pattern = _suppress(policy, kind, table, primary, constraints, fixed)
        hidden = pattern.hidden if pattern.passed else frozenset(range(len(table.n))) - fixed
    elif primary:
        pattern = Pattern(primary, hidden, 0, 0, True)
    shown = _show(policy, kind, table, hidden)
    return Protection(shown, release_record(policy, kind, shown, pattern, added), pattern)


def complete(cells: Cells) -> tuple[Cells, int]:
    """``cells`` plus a zero cell for every missing combination of observed codes and 計."""
    if not cells.coordinates:
        return cells, 0
    dims = len(cells.coordinates[0])
    seen: list[dict[Any, None]] = [{} for _ in range(dims)]  # ordered sets: first-seen order, O(1) lookups
    for coords in cells.coordinates:
        for d, code in enumerate(coords):
            if code != TOTAL:
                seen[d][code] = None
    codes = [[*d_codes, TOTAL] for d_codes in seen]
    sizes = [len(d_codes) for d_codes in codes]
    if math.prod(sizes) > MAX_COMPLETED_CELLS:
        return cells, 0
    # every combination by its position in itertools.product order; the missing ones, in that order
    position = np.zeros(len(cells.coordinates), dtype=np.int64)
    for d, d_codes in enumerate(codes):
        index = {code: j for j, code in enumerate(d_codes)}
        position = position * sizes[d] + np.asarray([index[c[d]] for c in cells.coordinates])
    absent = np.ones(math.prod(sizes), dtype=bool)
    absent[position] = False
    where = np.unravel_index(np.flatnonzero(absent), sizes)
    columns = [np.asarray(d_codes, dtype=object)[w].tolist() for d_codes, w in zip(codes, where, strict=True)]
    missing = list(zip(*columns, strict=True)) if columns else []
    zero_top: list[list[float] | None] = [None] * len(missing)
    return (
        Cells(
            [*cells.coordinates, *missing],
            [*cells.n, *[0] * len(missing)],
            [*cells.ckey, *[0] * len(missing)],
            [*cells.value, *[0.0] * len(missing)],
            [*cells.top, *zero_top],
        ),
        len(missing),
    )


def _suppress(
    policy: DisclosurePolicy,
    kind: Kind,
    table: Cells,
    primary: Mapping[int, str],
    constraints: Constraints,
    structural: Set[int],
) -> Pattern:
    additive = _additive(kind, table)
    targets = np.fromiter(primary, dtype=np.int64, count=len(primary))
    if kind == "count":
        widths = np.full(len(targets), float(policy.threshold))
    else:
        widths = np.maximum(policy.p_percent / 100 * np.abs(additive[targets]), 1.0)
    width = dict(zip(targets.tolist(), widths.tolist(), strict=True))
    empty = set(np.flatnonzero(np.asarray(table.n) == 0).tolist())
    cost = np.abs(additive).tolist()
    return protect_pattern(
        constraints, primary, additive.tolist(), cost, width, empty, structural, table.coordinates
    )


def _additive(kind: Kind, table: Cells) -> npt.NDArray[np.float64]:
    """The quantity margins add up: counts, sums, and a mean's sum (n · mean — n may be known elsewhere)."""
    n = np.asarray(table.n, dtype=np.float64)
    if kind == "count":
        return n
    v = np.asarray([0.0 if x is None else x for x in table.value], dtype=np.float64)
    return v * n if kind == "mean" else v


def _show(policy: DisclosurePolicy, kind: Kind, table: Cells, hidden: Set[int]) -> list[ShownCell]:
    perturb = policy.perturbs
    ptable = build_ptable(
        policy.perturbation.max_noise, policy.perturbation.variance, policy.perturbation.small_cells
    )
    if kind == "count":
        counts = perturb_counts(ptable, table.n, table.ckey) if perturb else np.asarray(table.n)
        values: list[float | None] = counts.astype(np.float64).tolist()
    else:
        values = list(table.value)
    status = "perturbed" if perturb else "ok"
    reason = REASON_PERTURBED if perturb else ""
    if kind == "count" or not perturb:  # one comprehension: ~10,000 cells, no per-cell branching
        return [
            ShownCell(coords, None, "suppressed", REASON_SUPPRESSED)
            if i in hidden
            else (
                ShownCell(coords, value, status, reason)
                if value is not None
                else ShownCell(coords, None, "ok")
            )
            for i, (coords, value) in enumerate(zip(table.coordinates, values, strict=True))
        ]
    shown = []
    for i, (coords, value) in enumerate(zip(table.coordinates, values, strict=True)):
        if i in hidden:
            shown.append(ShownCell(coords, None, "suppressed", REASON_SUPPRESSED))
        elif value is None:
            shown.append(ShownCell(coords, None, "ok"))
        else:
            magnitude: Magnitude = kind
            noisy = value + magnitude_noise(
                ptable,
                magnitude,
                value,
                table.n[i],
                table.top[i] or [],
                table.ckey[i],
                policy.perturbation.magnitude_pct,
            )
            shown.append(ShownCell(coords, noisy, "perturbed", REASON_PERTURBED))
    return shown


def release_record(
    policy: DisclosurePolicy, kind: Kind, shown: Iterable[ShownCell], pattern: Pattern | None, added: int
) -> dict[str, Any]:
    """What the table passed, machine-readable (SATRE 3.3.09): rules, parameters, versions, counts."""
    statuses = [c.status for c in shown]
    magnitude = kind != "count"
    suppressing = policy.suppresses or magnitude
    ptable = build_ptable(
        policy.perturbation.max_noise, policy.perturbation.variance, policy.perturbation.small_cells
    )
    rules: list[dict[str, Any]] = [
        _rule("threshold", suppressing, threshold=policy.threshold),
        _rule("dominance", kind in {"sum", "mean"}, n=policy.dominance_n, k_percent=policy.dominance_k),
        _rule("p_percent", kind in {"sum", "mean"}, p=policy.p_percent),
        _rule("zeros", policy.suppresses, zeros=policy.zeros),
        _rule(
            "secondary_suppression",
            suppressing and kind != "median",
            method="greedy closure of additive constraints (CUBE margins and hierarchies)",
            audit="feasible interval per primary cell: hypercube proof, else scipy.optimize.linprog (HiGHS)",
            protection_width="threshold (counts); max(p% of the value, 1) (magnitudes)",
            proven_by_hypercube=pattern.by_hypercube if pattern else 0,
            proven_by_lp=pattern.by_lp if pattern else 0,
            audit_passed=pattern.passed if pattern else True,
        ),
        _rule(
            "cell_key_perturbation",
            policy.perturbs,
            ptable=ptable.describe(),
            magnitude_pct=policy.perturbation.magnitude_pct if magnitude else None,
        ),
    ]
    return {
        "schema": RECORD_SCHEMA,
        "standard": "SATRE 3.3.09",
        "method": policy.method,
        "measure": kind,
        "policy": policy.model_dump(mode="json"),
        "rules": rules,
        "cells": {
            "total": len(statuses),
            "suppressed": statuses.count("suppressed"),
            "perturbed": statuses.count("perturbed"),
            "unchanged": statuses.count("ok"),
            "empty_added": added,
        },
        "versions": dict(versions()),
    }


def _rule(name: str, applied: bool, **parameters: Any) -> dict[str, Any]:
    return {"rule": name, "applied": applied, "parameters": parameters}


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found
