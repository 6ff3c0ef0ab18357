"""The suppression code as it was before it was vectorized (renkei a0e4848), kept as an oracle: the CSR
constraints and the numpy closure must give exactly what these give. Not used by the hub."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from typing import Any

from renkei.hub.disclosure.grid import Constraint
from renkei.hub.tables.display import TOTAL

Hierarchy = Mapping[Any, Any]


def cube_constraints(
    coordinates: Sequence[tuple[Any, ...]], hierarchies: Mapping[int, Hierarchy] | None = None
) -> list[Constraint]:
    """The additive constraints of a CUBE table: each margin is the sum of its parts along one dimension.

    ``hierarchies[d]`` maps codes of dimension d to their parent code in the same dimension; a parent cell
    is then the sum of its children, and 計 the sum of the codes that have no parent.
    """
    hierarchies = hierarchies or {}
    index = {c: i for i, c in enumerate(coordinates)}
    groups: dict[tuple[int, tuple[Any, ...]], list[int]] = defaultdict(list)
    for i, coords in enumerate(coordinates):
        for d, code in enumerate(coords):
            if code == TOTAL:
                continue
            parent = hierarchies.get(d, {}).get(code, TOTAL)
            groups[(d, (*coords[:d], parent, *coords[d + 1 :]))].append(i)
    constraints = [
        Constraint(index[total], tuple(sorted(parts)))
        for (_, total), parts in groups.items()
        if total in index
    ]
    return sorted(constraints, key=lambda c: (c.total, c.parts))


def secondary_suppression(
    constraints: Sequence[Constraint],
    hidden: Set[int],
    cost: Sequence[float],
    avoid: Set[int] = frozenset(),
    forbidden: Set[int] = frozenset(),
    need: Mapping[int, float] | None = None,
    values: Sequence[float] | None = None,
) -> set[int]:
    """``hidden`` plus complements until no constraint gives a hidden cell away (where fixable).

    A constraint gives cells away when it has exactly one hidden member, or — given each primary cell's
    protection ``need`` and the cells' ``values`` — when its total is visible and its hidden parts add up
    to less than a hidden primary part needs (each part then lies within [0, that sum]).
    """
    state = _Closure(constraints, hidden, need or {}, values)
    queue = [ci for ci in range(len(constraints)) if state.open(ci)]
    heapq.heapify(queue)
    while queue:
        ci = heapq.heappop(queue)
        if not state.open(ci):
            continue
        candidates = [m for m in constraints[ci].members if m not in state.hidden and m not in forbidden]
        if not candidates:
            continue  # only structural zeros left: nothing to hide; the audit judges the result
        pick = min(candidates, key=lambda m: (m in avoid, -state.closes(m, ci), cost[m], m))
        for cj in state.hide(pick):
            heapq.heappush(queue, cj)
    return state.hidden


class _Closure:
    """Per constraint: how many members are hidden, what its hidden parts add up to, what they need."""

    def __init__(
        self,
        constraints: Sequence[Constraint],
        hidden: Set[int],
        need: Mapping[int, float],
        values: Sequence[float] | None,
    ) -> None:
        self.constraints, self.hidden, self.values = constraints, set(hidden), values
        self.of_cell: dict[int, list[int]] = defaultdict(list)
        for ci, c in enumerate(constraints):
            for member in c.members:
                self.of_cell[member].append(ci)
        self.count = [sum(m in self.hidden for m in c.members) for c in constraints]
        self.part_sum = [self._sum(c.parts) for c in constraints]
        self.need = [max((need.get(p, 0.0) for p in c.parts), default=0.0) for c in constraints]

    def _sum(self, parts: Sequence[int]) -> float:
        if self.values is None:
            return 0.0
        return sum(abs(self.values[p]) for p in parts if p in self.hidden)

    def open(self, ci: int) -> bool:
        if self.count[ci] == 1:
            return True
        visible_total = self.constraints[ci].total not in self.hidden
        return visible_total and self.values is not None and self.part_sum[ci] < self.need[ci] * (1 - 1e-9)

    def closes(self, cell: int, current: int) -> int:
        return sum(self.open(cj) for cj in self.of_cell[cell] if cj != current)

    def hide(self, cell: int) -> list[int]:
        """Hide ``cell``; the constraints of it that are (still or now) open."""
        self.hidden.add(cell)
        for cj in self.of_cell[cell]:
            self.count[cj] += 1
            if cell != self.constraints[cj].total and self.values is not None:
                self.part_sum[cj] += abs(self.values[cell])
        return [cj for cj in self.of_cell[cell] if self.open(cj)]
