"""The suppression audit: what an attacker can infer about each suppressed cell from the published table.

Given the constraints (``total = Σ parts``) and every published value, each suppressed cell lies in a
feasible interval: the minimum and maximum of that cell over all non-negative solutions of the constraints
(non-negativity is assumed whenever the true values allow it — counts always — which only narrows the
interval, so the audit errs on the safe side). The published values used are the true ones, even when the
table is also perturbed: an attacker with exact margins is the worst case. Each interval is a pair of linear
programs (``scipy.optimize.linprog``, HiGHS), solved per connected group of suppressed cells (an independent
subtable: no constraint links it to another) — the max and min problems of many goals, from one group or
several, stacked as independent blocks in one solver call — so a large table is many small problems. The
constraints arrive as CSR arrays (:class:`renkei.hub.disclosure.grid.Constraints`); groups are found with
``scipy.sparse.csgraph``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence, Set

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import block_diag, coo_array, csr_array
from scipy.sparse.csgraph import connected_components

from renkei.hub.disclosure.grid import Constraint, Constraints

__all__ = ["Constraint", "audit"]

_BATCH_VARIABLES = 2_000  # LP size per solver call: HiGHS slows down on large stacked blocks


def audit(
    constraints: Sequence[Constraint],
    values: Sequence[float] | npt.NDArray[np.float64],
    hidden: Set[int],
    targets: Iterable[int],
    budget: int | None = None,
) -> dict[int, tuple[float, float]]:
    """The feasible interval of each target (a hidden cell) given the visible cells and the constraints.

    With ``budget`` (variables over all linear programs: two copies of a group per goal), groups are solved
    smallest first while they fit; targets in the groups left over are missing from the answer."""
    table = Constraints.of(constraints)
    v = np.asarray(values, dtype=np.float64)
    wanted = sorted(set(targets))
    intervals: dict[int, tuple[float, float]] = {}
    groups = _components(table, len(v), hidden, wanted)
    bounded = {c for group in groups for c in group[0]}
    if budget is not None:
        groups.sort(key=lambda g: (2 * len(g[0]) * len(g[2]), g[0][0]))
        spent, fitting = 0, []
        for group in groups:
            spent += 2 * len(group[0]) * len(group[2])
            if spent > budget:
                break
            fitting.append(group)
        groups = fitting
    intervals.update(_solve(table, v, groups))
    for t in wanted:  # a hidden cell in no constraint: nothing bounds it
        if t not in bounded:
            intervals[t] = (-math.inf, math.inf) if t in hidden else (float(v[t]), float(v[t]))
    return intervals


Group = tuple[list[int], npt.NDArray[np.int64], list[int]]  # cells, constraint rows, goals
Block = tuple[
    csr_array, npt.NDArray[np.float64], int, float, int
]  # equations, rhs, goal, lower bound, column


def _components(table: Constraints, size: int, hidden: Set[int], goals: Sequence[int]) -> list[Group]:
    """Groups of hidden cells linked by shared constraints, each with its constraints and goals."""
    mask = np.zeros(size, dtype=bool)
    if hidden:
        mask[np.fromiter(hidden, dtype=np.int64, count=len(hidden))] = True
    rows = table.rows()
    on = mask[table.members]
    touching = np.flatnonzero(np.add.reduceat(on, table.indptr[:-1]) > 0) if len(table) else rows[:0]
    entries = on & np.isin(rows, touching)
    # a graph over cells and constraints: a hidden member is joined to its constraint
    graph = coo_array(
        (np.ones(int(entries.sum())), (table.members[entries], size + rows[entries])),
        shape=(size + len(table), size + len(table)),
    )
    _, label = connected_components(graph, directed=False)
    cells = np.fromiter(sorted(hidden), dtype=np.int64, count=len(hidden))
    by_cell = np.argsort(label[cells], kind="stable")  # cells grouped by component, ascending within
    cell_groups = np.split(cells[by_cell], np.flatnonzero(np.diff(label[cells][by_cell])) + 1)
    row_label = label[size + touching]
    by_row = np.argsort(row_label, kind="stable")
    row_keys = row_label[by_row]
    goal_mask = np.zeros(size, dtype=bool)
    goal_mask[np.asarray(goals, dtype=np.int64)] = True
    groups: list[Group] = []
    for members in cell_groups:
        if not len(members) or not goal_mask[members].any():
            continue
        root = label[members[0]]
        lo, hi = np.searchsorted(row_keys, [root, root + 1])
        if hi > lo:
            groups.append(
                (members.tolist(), touching[np.sort(by_row[lo:hi])], members[goal_mask[members]].tolist())
            )
    groups.sort(key=lambda g: g[0][0])
    return groups


def _solve(
    table: Constraints, values: npt.NDArray[np.float64], groups: list[Group]
) -> dict[int, tuple[float, float]]:
    """Max and min of each goal: two independent copies of its group per goal (maximize x_goal in one,
    minimize it in the other), stacked block-diagonally, up to ``_BATCH_VARIABLES`` per solver call."""
    big = 2 * float(np.abs(values).sum()) + 1.0  # no cell exceeds the table's total mass: a box, not ∞
    blocks: list[Block] = []
    for cells, rows, goals in groups:
        local = {cell: j for j, cell in enumerate(cells)}
        a_eq, rhs = _equations(table, cells, rows, values)
        low = 0.0 if all(values[c] >= 0 for c in cells) else -big
        blocks += [(a_eq, rhs, goal, low, local[goal]) for goal in goals]
    out: dict[int, tuple[float, float]] = {}
    start = 0
    while start < len(blocks):
        end, variables = start, 0
        while end < len(blocks) and (
            end == start or variables + 2 * blocks[end][0].shape[1] <= _BATCH_VARIABLES
        ):
            variables += 2 * blocks[end][0].shape[1]
            end += 1
        out.update(_solve_batch(blocks[start:end], values, big))
        start = end
    return out


def _solve_batch(
    blocks: list[Block],
    values: npt.NDArray[np.float64],
    big: float,
) -> dict[int, tuple[float, float]]:
    matrices, rhs, objective, lows, offsets = [], [], [], [], []
    offset = 0
    for a_eq, b, _, low, j in blocks:
        size = a_eq.shape[1]
        for sense in (-1.0, 1.0):  # maximize in the first copy, minimize in the second
            goal = np.zeros(size)
            goal[j] = sense
            matrices.append(a_eq)
            rhs.append(b)
            objective.append(goal)
            lows.append(np.full(size, low))
            offsets.append(offset + j)
            offset += size
    result = linprog(
        np.concatenate(objective),
        A_eq=block_diag(matrices, format="csr"),
        b_eq=np.concatenate(rhs),
        bounds=np.stack([np.concatenate(lows), np.full(offset, big)], axis=1),
        method="highs",
    )
    out: dict[int, tuple[float, float]] = {}
    for i, block in enumerate(blocks):
        target, low = block[2], block[3]
        if result.status != 0:  # the true values are a solution, so this is numerical trouble
            out[target] = (float(values[target]), float(values[target]))
            continue
        high = float(result.x[offsets[2 * i]])
        least = float(result.x[offsets[2 * i + 1]])
        out[target] = (-math.inf if least <= low < 0 else least, math.inf if high >= big else high)
    return out


def _equations(
    table: Constraints, cells: list[int], rows: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> tuple[csr_array, npt.NDArray[np.float64]]:
    """The constraints over the group's cells, visible cells moved to the right-hand side."""
    starts, ends = table.indptr[rows], table.indptr[rows + 1]
    lengths = ends - starts
    entries = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(int(lengths.sum()))
    member = table.members[entries]
    row = np.repeat(np.arange(len(rows)), lengths)
    sign = np.where(np.isin(entries, starts), -1.0, 1.0)
    column = np.full(len(values), -1, dtype=np.int64)
    column[cells] = np.arange(len(cells))
    inside = column[member] >= 0
    matrix = csr_array((sign[inside], (row[inside], column[member[inside]])), shape=(len(rows), len(cells)))
    known = np.bincount(row[~inside], weights=sign[~inside] * values[member[~inside]], minlength=len(rows))
    rhs: npt.NDArray[np.float64] = -known.astype(np.float64)
    return matrix, rhs
