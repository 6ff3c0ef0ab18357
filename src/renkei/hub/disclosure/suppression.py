"""Cell suppression: primary rules, then secondary suppression so no suppressed cell can be recomputed.

**Primary** (the rules of sdcTable, ACRO and the ONS "10 rule", with this hub's defaults):

- ``threshold``: 0 < n < threshold contributors (persons or households);
- ``dominance``: (n, k) rule for sums and means — the n largest absolute contributions reach k% of the
  cell's absolute total (flagged at equality, as ACRO does);
- ``p_percent``: the second largest contributor could estimate the largest within p%:
  total − x_1 − x_2 < p/100 · x_1 (ACRO's p-ratio rule; a cell of zeros is sensitive too);
- ``zero``: an empty cell, when the policy says zeros are disclosive (structural zeros never are);
- ``contributions``: the cell lacks the largest contributions the dominance rule needs (fail closed).

**Secondary.** A table is a set of additive constraints, each ``total = Σ parts`` along one dimension:
:func:`cube_constraints` builds them from the GROUP BY CUBE coordinates for any number of dimensions, and a
caller's hierarchy (towns inside wards, 5-year bands inside 10-year bands, all in one dimension) turns into
``parent = Σ children`` with only top-level codes summing to 計. A constraint left with exactly one suppressed
cell gives that cell away, so :func:`secondary_suppression` adds, constraint by constraint in a fixed order,
the member that closes the most other such constraints, then the smallest (zeros last — suppressing a zero
protects nothing), then the lowest index. In a 2-D table a single small cell costs exactly the four corners of
a rectangle. :func:`protect_pattern` then audits the pattern (:mod:`renkei.hub.disclosure.audit`) and
suppresses more until every primary cell's feasible interval is at least its protection width wide.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from renkei.hub.disclosure.audit import audit
from renkei.hub.disclosure.grid import Constraint, Constraints, Hierarchy, Ints, cube_constraints
from renkei.hub.disclosure.hypercube import Hypercubes, narrow
from renkei.hub.disclosure.policy import DisclosurePolicy

__all__ = ["Constraint", "Hierarchy", "Kind", "Pattern", "cube_constraints", "protect_pattern"]

Kind = Literal["count", "sum", "mean", "median"]
_FEW = 24  # candidates up to which the closure picks in Python
DIRECT_CELLS = 256  # sensitive cells above which hypercubes alone audit and protect (no LP first)
LP_BUDGET = 6_000  # variables over an audit's linear programs (two copies of a group per goal; ~15 ms each
# 2,000): the groups that do not fit are protected by hypercubes instead — more suppression, bounded time


@dataclass(frozen=True, slots=True)
class Pattern:
    """The outcome of suppression: which cells are hidden and why, and whether the audit passed."""

    primary: dict[int, str]  # cell -> rule
    hidden: frozenset[int]  # primary and secondary
    by_hypercube: int  # primary cells proven protected by a hypercube of suppressed cells
    by_lp: int  # ... by their feasible interval (linear programs)
    passed: bool


def primary_suppression(
    policy: DisclosurePolicy,
    kind: Kind,
    n: Sequence[int],
    value: Sequence[float | None],
    top: Sequence[Sequence[float] | None],
    structural: Set[int] = frozenset(),
) -> dict[int, str]:
    """The rule that suppresses each sensitive cell (cells not listed pass every primary rule)."""
    counts = np.asarray(n, dtype=np.int64)
    free = np.ones(len(counts), dtype=bool)
    if structural:
        free[np.fromiter(structural, dtype=np.int64, count=len(structural))] = False
    reasons: dict[int, str] = {}
    counting = kind == "count"
    zero = free & (counts == 0)
    if policy.suppresses and policy.zeros == "suppress":
        reasons.update((i, "zero") for i in np.flatnonzero(zero).tolist())
    if counting and not policy.suppresses:
        return reasons
    small = free & (counts > 0) & (counts < policy.threshold)
    reasons.update((i, "threshold") for i in np.flatnonzero(small).tolist())
    if kind in {"sum", "mean"}:
        for i in np.flatnonzero(free & (counts >= policy.threshold)).tolist():
            rule = _magnitude_rule(policy, kind, int(counts[i]), value[i], top[i])
            if rule:
                reasons[i] = rule
    return dict(sorted(reasons.items()))


def _magnitude_rule(
    policy: DisclosurePolicy, kind: Kind, n: int, value: float | None, top: Sequence[float] | None
) -> str:
    contributions = sorted((abs(x) for x in (top or [])), reverse=True)
    if value is None or len(contributions) < min(n, max(policy.dominance_n, 2)):
        return "contributions"
    total = abs(value * n if kind == "mean" else value)
    if dominated(contributions, total, policy.dominance_n, policy.dominance_k):
        return "dominance"
    if p_percent_sensitive(contributions, total, policy.p_percent):
        return "p_percent"
    return ""


def dominated(contributions: Sequence[float], total: float, n: int, k_percent: float) -> bool:
    """(n, k) rule: the ``n`` largest contributions (descending) make up at least k% of ``total``.

    Contributions that cancel out to a zero total are dominated; all-zero contributions are not (as in ACRO).
    """
    largest = sum(contributions[:n])
    return largest > 0 and (total <= 0 or largest / total >= k_percent / 100)


def p_percent_sensitive(contributions: Sequence[float], total: float, p_percent: float) -> bool:
    """p% rule: the second largest contributor, subtracting itself from the total, learns the largest
    to within p% — (total − x1 − x2) / x1 < p/100. When every contribution is 0 each one is known exactly:
    sensitive (ACRO flags these too)."""
    x1 = contributions[0] if contributions else 0.0
    x2 = contributions[1] if len(contributions) > 1 else 0.0
    if x1 <= 0:
        return True
    return (total - (x1 + x2)) / x1 < p_percent / 100


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
    state = _Closure(Constraints.of(constraints), len(cost), hidden, need or {}, values)
    far = np.zeros(len(cost), dtype=bool)
    near = np.zeros(len(cost), dtype=bool)
    for cells, mask in ((forbidden, far), (avoid, near)):
        if cells:
            mask[np.fromiter(cells, dtype=np.int64, count=len(cells))] = True
    price = np.asarray(cost, dtype=np.float64)
    price_l = price.tolist()
    queue = np.flatnonzero(state.open).tolist()  # already in heap order: ascending
    state.lists()
    while queue:
        ci = heapq.heappop(queue)
        if not state.open_l[ci]:
            continue
        members = state.members_of(ci)
        candidates = members[~state.hidden[members] & ~far[members]]
        if not len(candidates):
            continue  # only structural zeros left: nothing to hide; the audit judges the result
        # (avoided last, closes the most other open constraints, cheapest, lowest index)
        if len(candidates) <= _FEW:  # plain Python beats numpy's per-call cost on a short line
            pick = min(
                candidates.tolist(), key=lambda m: (bool(near[m]), -int(state.open_count[m]), price_l[m], m)
            )
        else:
            best = np.lexsort(
                (candidates, price[candidates], -state.open_count[candidates], near[candidates])
            )
            pick = int(candidates[best[0]])
        for cj in state.hide(pick):
            heapq.heappush(queue, cj)
    return set(np.flatnonzero(state.hidden).tolist())


class _Closure:
    """Per constraint: how many members are hidden, what its hidden parts add up to, what they need; per
    cell: how many open constraints it is in (what hiding it would close)."""

    def __init__(
        self,
        table: Constraints,
        size: int,
        hidden: Set[int],
        need: Mapping[int, float],
        values: Sequence[float] | None,
    ) -> None:
        self.table = table
        self.hidden = np.zeros(size, dtype=bool)
        if hidden:
            self.hidden[np.fromiter(hidden, dtype=np.int64, count=len(hidden))] = True
        self.weighing = values is not None
        self.value = np.abs(np.asarray(values, dtype=np.float64)) if values is not None else np.zeros(size)
        rows, starts = table.rows(), table.indptr[:-1]
        is_total = table.is_total()
        members = table.members
        order = np.argsort(members, kind="stable")
        self.cell_indptr = np.zeros(size + 1, dtype=np.int64)
        np.add.at(self.cell_indptr, members + 1, 1)
        self.cell_indptr = np.cumsum(self.cell_indptr)
        self.cell_rows = rows[order]
        self.totals = table.totals
        wanted = np.zeros(size)
        if need:
            keys = np.fromiter(need.keys(), dtype=np.int64, count=len(need))
            wanted[keys] = np.fromiter(need.values(), dtype=np.float64, count=len(need))
        if len(table):
            self.count = np.add.reduceat(self.hidden[members].astype(np.int64), starts)
            part = self.hidden[members] & ~is_total
            self.part_sum = np.add.reduceat(np.where(part, self.value[members], 0.0), starts)
            self.need = np.maximum.reduceat(np.where(is_total, 0.0, wanted[members]), starts)
        else:
            self.count = np.zeros(0, dtype=np.int64)
            self.part_sum, self.need = np.zeros(0), np.zeros(0)
        self.open = self._open(np.arange(len(table)))
        self.open_count = np.bincount(members, weights=self.open[rows], minlength=size).astype(np.int64)

    def members_of(self, ci: int) -> Ints:
        members: Ints = self.table.members[self.table.indptr[ci] : self.table.indptr[ci + 1]]
        return members

    def _open(self, rows: Ints) -> npt.NDArray[np.bool_]:
        single: npt.NDArray[np.bool_] = self.count[rows] == 1
        if not self.weighing:
            return single
        visible_total = ~self.hidden[self.totals[rows]]
        short = self.part_sum[rows] < self.need[rows] * (1 - 1e-9)
        result: npt.NDArray[np.bool_] = single | (visible_total & short)
        return result

    def lists(self) -> None:
        """Per-constraint state as Python lists: the sequential steps touch one or two scalars each."""
        self.count_l: list[int] = self.count.tolist()
        self.part_l: list[float] = self.part_sum.tolist()
        self.need_l: list[float] = (self.need * (1 - 1e-9)).tolist()
        self.open_l: list[bool] = self.open.tolist()
        self.totals_l: list[int] = self.totals.tolist()
        self.value_l: list[float] = self.value.tolist()

    def hide(self, cell: int) -> list[int]:
        """Hide ``cell``; the constraints of it that are (still or now) open."""
        self.hidden[cell] = True
        opened = []
        for ci in self.cell_rows[self.cell_indptr[cell] : self.cell_indptr[cell + 1]].tolist():
            self.count_l[ci] += 1
            total = self.totals_l[ci]
            if total != cell:
                self.part_l[ci] += self.value_l[cell]
            now = self.count_l[ci] == 1 or (
                self.weighing and not self.hidden[total] and self.part_l[ci] < self.need_l[ci]
            )
            if now != self.open_l[ci]:
                self.open_count[self.members_of(ci)] += 1 if now else -1
                self.open_l[ci] = now
            if now:
                opened.append(ci)
        return opened


def protect_pattern(
    constraints: Sequence[Constraint],
    primary: Mapping[int, str],
    values: Sequence[float],
    cost: Sequence[float],
    width: Mapping[int, float],
    avoid: Set[int] = frozenset(),
    forbidden: Set[int] = frozenset(),
    coordinates: Sequence[tuple[Any, ...]] | None = None,
) -> Pattern:
    """Secondary suppression, audited: every primary cell's feasible interval must be ``width[cell]`` wide.

    While cells fail, the cheapest hypercube around each that is wide enough is suppressed (with
    ``coordinates``; in chunks, each chunk reusing the cells the earlier ones hid), else the cheapest visible
    cell sharing a constraint with it or its suppressed neighbours, and the pattern is re-closed; if nothing
    is left to suppress, every cell that may be is (fail closed). Suppressing more only widens intervals, so
    a cell that passed is not audited again, and a hypercube certificate spares most linear programs.
    """
    table = Constraints.of(constraints)
    v = np.asarray(values, dtype=np.float64)
    price = np.asarray(cost, dtype=np.float64)
    hidden = secondary_suppression(table, set(primary), cost, avoid, forbidden, width, values)
    of_cell: dict[int, list[int]] | None = None
    cubes = Hypercubes(coordinates, table) if coordinates else None
    pending, proven = sorted(primary), [0, 0]
    # many sensitive cells: linear programs could not afford their groups, so hypercubes prove and protect
    # them straight away, chunk by chunk (each chunk first tries a proof from what is hidden by then)
    direct = cubes is not None and len(pending) > DIRECT_CELLS
    while True:
        if not direct:
            pending, by_cube, by_lp = _still_failing(pending, table, v, hidden, width, cubes)
            proven = [proven[0] + by_cube, proven[1] + by_lp]
        if not pending:
            return Pattern(dict(primary), frozenset(hidden), proven[0], proven[1], True)
        fresh: set[int] = set()
        still = pending
        if cubes is not None:  # protected by construction once a cube is hidden
            fresh, still, done = cubes.protect(
                pending, hidden, v, price, width, forbidden, proven_already=not direct
            )
            proven[0] += done
        direct = False
        if still:
            of_cell = of_cell or _cells_to_constraints(table)
        for t in still:
            assert of_cell is not None
            one = _widen(t, table, of_cell, hidden | fresh, cost, avoid, forbidden)
            fresh |= {one} if one is not None else set()
        pending = still
        if not pending:  # every constraint a cube touches holds two or more of its corners: still closed
            return Pattern(dict(primary), frozenset(hidden | fresh), proven[0], proven[1], True)
        if not fresh:
            everything = hidden | (set(range(len(values))) - set(forbidden))
            pending, by_cube, by_lp = _still_failing(pending, table, v, everything, width, None)
            return Pattern(dict(primary), frozenset(everything), proven[0], proven[1] + by_lp, not pending)
        hidden = secondary_suppression(table, hidden | fresh, cost, avoid, forbidden, width, values)


def _cells_to_constraints(table: Constraints) -> dict[int, list[int]]:
    of_cell: dict[int, list[int]] = defaultdict(list)
    for ci, member in zip(table.rows().tolist(), table.members.tolist(), strict=True):
        of_cell[member].append(ci)
    return of_cell


def _still_failing(
    pending: list[int],
    table: Constraints,
    values: npt.NDArray[np.float64],
    hidden: Set[int],
    width: Mapping[int, float],
    cubes: Hypercubes | None,
) -> tuple[list[int], int, int]:
    """The targets not (yet) shown to be protected; how many a hypercube and a linear program proved.

    Linear programs are solved for the groups of suppressed cells that fit in ``LP_BUDGET`` variables,
    smallest first; without hypercubes (the last resort) for all of them. Cells whose group is too large count
    as failing and get hypercubes instead: more suppression, but bounded time."""
    need = np.asarray([width[t] for t in pending], dtype=np.float64)
    if cubes is not None and pending:
        mask = np.zeros(len(values), dtype=bool)
        mask[np.fromiter(hidden, dtype=np.int64, count=len(hidden))] = True
        certified = cubes.protected(pending, mask, values, need)
    else:
        certified = np.zeros(len(pending), dtype=bool)
    unproven = [t for t, ok in zip(pending, certified.tolist(), strict=True) if not ok]
    by_cube = len(pending) - len(unproven)
    if not unproven:
        return [], by_cube, 0
    intervals = audit(table, values, hidden, unproven, LP_BUDGET if cubes is not None else None)
    failing = [t for t in unproven if t not in intervals or _narrow(intervals[t], width[t])]
    return failing, by_cube, len(unproven) - len(failing)


def _narrow(interval: tuple[float, float], width: float) -> bool:
    """Whether the interval is narrower than ``width`` (with slack for the LP solver's rounding)."""
    low, high = interval
    return bool(narrow(high - low, width))


def _widen(
    target: int,
    constraints: Constraints,
    of_cell: Mapping[int, list[int]],
    hidden: Set[int],
    cost: Sequence[float],
    avoid: Set[int],
    forbidden: Set[int],
) -> int | None:
    """The cheapest visible cell in a constraint of ``target``, else of the suppressed cells near it."""
    seen, frontier = {target}, [target]
    while frontier:
        candidates = {
            m
            for cell in frontier
            for ci in of_cell.get(cell, [])
            for m in constraints[ci].members
            if m not in hidden and m not in forbidden
        }
        if candidates:
            return min(candidates, key=lambda m: (m in avoid, cost[m], m))
        nxt = {m for cell in frontier for ci in of_cell.get(cell, []) for m in constraints[ci].members} - seen
        seen |= nxt
        frontier = sorted(nxt)
    return None
