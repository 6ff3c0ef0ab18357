"""Build GROUP BY CUBE cells from inner cells, as the control query would, for disclosure-control tests."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linprog

from renkei.hub.disclosure.audit import Constraint
from renkei.hub.tables.display import TOTAL
from renkei.hub.tables.service import Cells


def cube(inner: Mapping[tuple[Any, ...], int], seed: int = 0) -> Cells:
    """Every margin of ``inner`` (counts), with random cell keys; zero inner cells are left out like SQL does."""
    rng = random.Random(seed)
    dims = len(next(iter(inner)))
    codes = [sorted({c[d] for c in inner}) for d in range(dims)]
    coordinates, n = [], []
    for coords in itertools.product(*[[*cs, TOTAL] for cs in codes]):
        total = sum(
            v for c, v in inner.items() if all(x in (TOTAL, y) for x, y in zip(coords, c, strict=True))
        )
        if total:
            coordinates.append(coords)
            n.append(total)
    return Cells(coordinates, n, [rng.getrandbits(32) for _ in n], [float(x) for x in n], [None] * len(n))


def lp_intervals(
    constraints: Sequence[Constraint], values: Sequence[float], hidden: set[int], targets: Sequence[int]
) -> dict[int, tuple[float, float]]:
    """Feasible intervals from one LP over the whole table (no decomposition): an independent audit."""
    order = sorted(hidden)
    column = {cell: j for j, cell in enumerate(order)}
    matrix, rhs = [], []
    for c in constraints:
        row = np.zeros(len(order))
        known = 0.0
        for member, sign in [(c.total, -1.0), *((p, 1.0) for p in c.parts)]:
            if member in column:
                row[column[member]] += sign
            else:
                known += sign * values[member]
        if row.any():
            matrix.append(row)
            rhs.append(-known)
    a = np.array(matrix).reshape(len(matrix), len(order))
    pair = np.block([[a, np.zeros_like(a)], [np.zeros_like(a), a]])  # two independent copies: x and y
    out = {}
    for t in targets:
        goal = np.zeros(2 * len(order))
        goal[column[t]], goal[len(order) + column[t]] = -1.0, 1.0  # maximize x_t - y_t
        result = linprog(goal, A_eq=pair, b_eq=rhs + rhs, bounds=(0, None), method="highs")
        if result.status == 0:
            out[t] = (float(result.x[len(order) + column[t]]), float(result.x[column[t]]))
        else:
            assert result.status == 3  # unbounded: nothing pins the cell down
            out[t] = (0.0, np.inf)
    return out
