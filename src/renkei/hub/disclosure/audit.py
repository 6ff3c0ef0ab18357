"""The suppression audit: what an attacker can infer about each suppressed cell from the published table.

Given the constraints (``total = Σ parts``) and every published value, each suppressed cell lies in a
feasible interval: the minimum and maximum of that cell over all non-negative solutions of the constraints
(non-negativity is assumed whenever the true values allow it — counts always — which only narrows the
interval, so the audit errs on the safe side). The published values used are the true ones, even when the
table is also perturbed: an attacker with exact margins is the worst case. Each interval is a pair of linear
programs (``scipy.optimize.linprog``, HiGHS), solved per connected group of suppressed cells — many goals per
solver call, as independent blocks — so a large table is many small problems.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import csr_array, identity, kron

_BATCH_VARIABLES = 2_000  # LP size per solver call: HiGHS slows down on large stacked blocks


@dataclass(frozen=True, slots=True)
class Constraint:
    """``cell[total] = Σ cell[parts]``, by cell index."""

    total: int
    parts: tuple[int, ...]

    @property
    def members(self) -> tuple[int, ...]:
        return (self.total, *self.parts)


def audit(
    constraints: Sequence[Constraint],
    values: Sequence[float],
    hidden: Set[int],
    targets: Iterable[int],
) -> dict[int, tuple[float, float]]:
    """The feasible interval of each target (a hidden cell) given the visible cells and the constraints."""
    wanted = set(targets)
    touching = [c for c in constraints if any(m in hidden for m in c.members)]
    intervals: dict[int, tuple[float, float]] = {}
    for component, rows in _components(touching, hidden):
        goals = sorted(wanted & set(component))
        if goals:
            intervals.update(_solve(component, rows, values, goals))
    for t in wanted - set(intervals):  # a hidden cell in no constraint: nothing bounds it
        intervals[t] = (-math.inf, math.inf) if t in hidden else (values[t], values[t])
    return intervals


def _components(
    constraints: Sequence[Constraint], hidden: Set[int]
) -> list[tuple[list[int], list[Constraint]]]:
    """Hidden cells linked by shared constraints, each with the constraints that mention them."""
    parent = {h: h for h in hidden}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for c in constraints:
        members = [m for m in c.members if m in hidden]
        for m in members[1:]:
            a, b = find(members[0]), find(m)
            if a != b:
                parent[max(a, b)] = min(a, b)
    cells: dict[int, list[int]] = {}
    for h in sorted(hidden):
        cells.setdefault(find(h), []).append(h)
    rows: dict[int, list[Constraint]] = {root: [] for root in cells}
    for c in constraints:
        first = next(m for m in c.members if m in hidden)
        rows[find(first)].append(c)
    return [(cells[root], rows[root]) for root in sorted(cells)]


def _solve(
    cells: list[int], rows: list[Constraint], values: Sequence[float], goals: list[int]
) -> dict[int, tuple[float, float]]:
    """Max and min of each goal in one LP per batch: two independent copies of the component per goal
    (maximize x_goal in one, minimize it in the other), stacked block-diagonally."""
    local = {cell: j for j, cell in enumerate(cells)}
    a_eq, rhs = _equations(cells, local, rows, values)
    big = 2 * sum(abs(v) for v in values) + 1.0  # no cell exceeds the table's total mass: a box, not ∞
    low = 0.0 if all(values[c] >= 0 for c in cells) else -big
    size = len(cells)
    batch = max(1, _BATCH_VARIABLES // (2 * size))
    out: dict[int, tuple[float, float]] = {}
    for start in range(0, len(goals), batch):
        chunk = goals[start : start + batch]
        copies = 2 * len(chunk)
        objective = np.zeros(copies * size)
        for j, goal in enumerate(chunk):
            objective[2 * j * size + local[goal]] = -1.0  # maximize in copy 2j
            objective[(2 * j + 1) * size + local[goal]] = 1.0  # minimize in copy 2j+1
        result = linprog(
            objective,
            A_eq=kron(identity(copies, format="csr"), a_eq, format="csr"),
            b_eq=np.tile(rhs, copies),
            bounds=(low, big),
            method="highs",
        )
        for j, goal in enumerate(chunk):
            if result.status != 0:  # the true values are a solution, so this is numerical trouble
                out[goal] = (values[goal], values[goal])
                continue
            high = float(result.x[2 * j * size + local[goal]])
            least = float(result.x[(2 * j + 1) * size + local[goal]])
            out[goal] = (-math.inf if least <= low < 0 else least, math.inf if high >= big else high)
    return out


def _equations(
    cells: list[int], local: dict[int, int], rows: list[Constraint], values: Sequence[float]
) -> tuple[csr_array, npt.NDArray[np.float64]]:
    """The constraints over the component's cells, visible cells moved to the right-hand side."""
    data, row_index, col_index, rhs = [], [], [], []
    for r, c in enumerate(rows):
        known = 0.0
        for member, sign in [(c.total, -1.0), *((p, 1.0) for p in c.parts)]:
            if member in local:
                data.append(sign)
                row_index.append(r)
                col_index.append(local[member])
            else:
                known += sign * values[member]
        rhs.append(-known)
    matrix = csr_array((data, (row_index, col_index)), shape=(len(rows), len(cells)))
    return matrix, np.asarray(rhs, dtype=np.float64)
