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

from renkei.hub.disclosure.audit import Constraint, audit
from renkei.hub.disclosure.hypercube import Hypercubes
from renkei.hub.disclosure.policy import DisclosurePolicy
from renkei.hub.tables.display import TOTAL

Kind = Literal["count", "sum", "mean", "median"]
Hierarchy = Mapping[Any, Any]  # child code -> parent code, within one dimension
LP_BUDGET = 200_000  # unproven cells × suppressed cells above which hypercubes replace linear programs


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
    reasons: dict[int, str] = {}
    counting = kind == "count"
    for i, count in enumerate(n):
        if i in structural:
            continue
        if count == 0:
            if policy.suppresses and policy.zeros == "suppress":
                reasons[i] = "zero"
        elif counting and not policy.suppresses:
            continue
        elif count < policy.threshold:
            reasons[i] = "threshold"
        elif kind in {"sum", "mean"}:
            rule = _magnitude_rule(policy, kind, count, value[i], top[i])
            if rule:
                reasons[i] = rule
    return reasons


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

    While a cell fails, the cheapest hypercube around it that is wide enough is suppressed (with
    ``coordinates``), else the cheapest visible cell sharing a constraint with it or its suppressed
    neighbours, and the pattern is re-closed; if nothing is left to suppress, every cell that may be is
    (fail closed). Suppressing more only widens intervals, so a cell that passed is not audited again, and
    a hypercube certificate spares most linear programs.
    """
    hidden = secondary_suppression(constraints, set(primary), cost, avoid, forbidden, width, values)
    of_cell: dict[int, list[int]] = defaultdict(list)
    for ci, constraint in enumerate(constraints):
        for member in constraint.members:
            of_cell[member].append(ci)
    cubes = Hypercubes(coordinates, constraints) if coordinates else None
    pending, proven = sorted(primary), [0, 0]
    while True:
        pending, by_cube, by_lp = _still_failing(pending, constraints, values, hidden, width, cubes)
        proven = [proven[0] + by_cube, proven[1] + by_lp]
        if not pending:
            return Pattern(dict(primary), frozenset(hidden), proven[0], proven[1], True)
        fresh: set[int] = set()
        still = []
        for t in pending:
            cube = cubes.cheapest(t, hidden | fresh, values, cost, width[t], forbidden) if cubes else None
            if cube is not None:  # protected by construction once these are hidden
                fresh |= cube
                proven[0] += 1
                continue
            still.append(t)
            one = _widen(t, constraints, of_cell, hidden, cost, avoid, forbidden)
            fresh |= {one} if one is not None else set()
        pending = still
        if not pending:
            hidden = secondary_suppression(constraints, hidden | fresh, cost, avoid, forbidden, width, values)
            return Pattern(dict(primary), frozenset(hidden), proven[0], proven[1], True)
        if not fresh:
            everything = hidden | (set(range(len(values))) - set(forbidden))
            pending, by_cube, by_lp = _still_failing(pending, constraints, values, everything, width, None)
            return Pattern(dict(primary), frozenset(everything), proven[0], proven[1] + by_lp, not pending)
        hidden = secondary_suppression(constraints, hidden | fresh, cost, avoid, forbidden, width, values)


def _still_failing(
    pending: list[int],
    constraints: Sequence[Constraint],
    values: Sequence[float],
    hidden: Set[int],
    width: Mapping[int, float],
    cubes: Hypercubes | None,
) -> tuple[list[int], int, int]:
    """The targets not (yet) shown to be protected; how many a hypercube and a linear program proved.

    When the linear programs would be too large (many unproven cells in a large pattern), the unproven
    cells count as failing and get hypercubes instead: more suppression, but bounded time."""
    unproven = []
    for t in pending:
        certified = cubes.interval(t, hidden, values) if cubes else None
        if certified is None or _narrow(certified, width[t]):
            unproven.append(t)
    by_cube = len(pending) - len(unproven)
    if not unproven:
        return [], by_cube, 0
    if cubes is not None and len(unproven) * len(hidden) > LP_BUDGET:
        return unproven, by_cube, 0
    intervals = audit(constraints, values, hidden, unproven)
    failing = [t for t in unproven if _narrow(intervals[t], width[t])]
    return failing, by_cube, len(unproven) - len(failing)


def _narrow(interval: tuple[float, float], width: float) -> bool:
    """Whether the interval is narrower than ``width`` (with slack for the LP solver's rounding)."""
    low, high = interval
    return high - low < width * (1 - 1e-9) - 1e-9


def _widen(
    target: int,
    constraints: Sequence[Constraint],
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
