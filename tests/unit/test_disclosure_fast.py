"""The vectorized suppression path against its references, on random tables (Hypothesis).

- the CSR constraints and the numpy closure give exactly what the code before them gave
  (``tests/support/reference_sdc.py``);
- a hypercube proof never claims more than the feasible interval (an independent LP over the whole table), in
  flat and hierarchical tables: the fast audit can only be stricter than the exact one;
- the cheapest cube protects its target by construction;
- the whole fast path (hypercubes only, as a large table gets) protects every table as the reference did: no
  suppressed cell below the threshold, nor a dominated sum, can be recovered from the table's own margins.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.hub.disclosure import suppression
from renkei.hub.disclosure.grid import cube_constraints
from renkei.hub.disclosure.hypercube import Hypercubes
from renkei.hub.disclosure.policy import DisclosurePolicy
from renkei.hub.disclosure.protect import complete, protect_cells
from renkei.hub.disclosure.suppression import secondary_suppression
from renkei.hub.tables.display import TOTAL
from renkei.hub.tables.service import Cells
from tests.support import reference_sdc
from tests.support.cube import cube, lp_intervals
from tests.support.examples import scaled

SUPPRESS = DisclosurePolicy(method="suppression")


@st.composite
def tables(draw: st.DrawFn, max_dims: int = 4) -> Cells:
    dims = draw(st.integers(1, max_dims))
    sizes = [draw(st.integers(2, 6 if dims <= 2 else 3)) for _ in range(dims)]
    count = st.one_of(st.just(0), st.integers(1, 9), st.integers(10, 200))
    codes = [[f"{chr(97 + d)}{i}" for i in range(size)] for d, size in enumerate(sizes)]
    inner = {c: draw(count) for c in itertools.product(*codes)}
    if not any(inner.values()):
        inner[next(iter(inner))] = 3
    return cube(inner, seed=draw(st.integers(0, 2**16)))


WARD_OF = {"t1": "w1", "t2": "w1", "t3": "w1", "t4": "w2", "t5": "w2", "t6": "w3", "t7": "w3"}


@st.composite
def hierarchical(draw: st.DrawFn) -> Cells:
    """Wards and their towns in the first dimension, × a second dimension; sparse (SQL leaves out zeros)."""
    bands = [f"b{i}" for i in range(draw(st.integers(2, 4)))]
    values: dict[tuple[Any, ...], int] = {}
    counts = {
        (t, b): draw(st.one_of(st.just(0), st.integers(1, 9), st.integers(10, 90)))
        for t in WARD_OF
        for b in bands
    }
    if not any(counts.values()):
        counts[("t1", bands[0])] = 3
    for (town, band), n in counts.items():
        for area, b in itertools.product((town, WARD_OF[town], TOTAL), (band, TOTAL)):
            values[(area, b)] = values.get((area, b), 0) + n
    keep = [(c, n) for c, n in sorted(values.items(), key=repr) if n]
    return Cells(
        [c for c, _ in keep],
        [n for _, n in keep],
        [0] * len(keep),
        [float(n) for _, n in keep],
        [None] * len(keep),
    )


def _hierarchy(cells: Cells) -> dict[int, Mapping[Any, Any]]:
    return {0: WARD_OF} if any(c[0] in WARD_OF for c in cells.coordinates) else {}


# --- the parts against the code they replaced ---------------------------------------------------------------


@given(st.one_of(tables(), hierarchical()), st.booleans())
def test_constraints_match_the_reference(cells: Cells, completed: bool) -> None:
    table = complete(cells)[0] if completed else cells
    hierarchies = _hierarchy(cells)
    assert list(cube_constraints(table.coordinates, hierarchies)) == reference_sdc.cube_constraints(
        table.coordinates, hierarchies
    )


@given(st.one_of(tables(3), hierarchical()), st.data())
def test_the_closure_matches_the_reference(cells: Cells, data: st.DataObject) -> None:
    table, _ = complete(cells)
    constraints = cube_constraints(table.coordinates, _hierarchy(cells))
    size = len(table.n)
    cells_of = st.sets(st.integers(0, size - 1), max_size=max(1, size // 4))
    hidden, avoid, forbidden = data.draw(cells_of), data.draw(cells_of), data.draw(cells_of)
    values = [float(n) for n in table.n]
    need = {h: data.draw(st.sampled_from([0.0, 5.0, 10.0, 40.0])) for h in hidden}
    weighed = data.draw(st.booleans())
    args = (hidden, values, avoid, forbidden, need, values if weighed else None)
    assert secondary_suppression(constraints, *args) == reference_sdc.secondary_suppression(
        list(constraints), *args
    )


# --- hypercubes: sound proofs, protective fallbacks --------------------------------------------------------


@settings(max_examples=scaled(0.6))
@given(st.one_of(tables(3), hierarchical()), st.data())
def test_a_hypercube_proof_never_exceeds_the_feasible_interval(cells: Cells, data: st.DataObject) -> None:
    table, _ = complete(cells)
    constraints = cube_constraints(table.coordinates, _hierarchy(cells))
    values = np.asarray(table.n, dtype=np.float64)
    hidden = data.draw(
        st.sets(st.integers(0, len(values) - 1), min_size=1, max_size=max(1, len(values) // 2))
    )
    targets = sorted(hidden)
    mask = np.zeros(len(values), dtype=bool)
    mask[targets] = True
    low, high = Hypercubes(table.coordinates, constraints).intervals(targets, mask, values)
    exact = lp_intervals(list(constraints), list(values), hidden, targets)
    for t, lo, hi in zip(targets, low, high, strict=True):
        if np.isnan(lo):
            continue  # no proof: the LP or more suppression decides
        assert lo <= values[t] <= hi
        assert lo >= exact[t][0] - 1e-6 and hi <= exact[t][1] + 1e-6, (t, (lo, hi), exact[t])


@settings(max_examples=scaled(0.6))
@given(st.one_of(tables(3), hierarchical()), st.data())
def test_the_cheapest_cube_protects_its_target(cells: Cells, data: st.DataObject) -> None:
    table, _ = complete(cells)
    constraints = cube_constraints(table.coordinates, _hierarchy(cells))
    values = np.asarray(table.n, dtype=np.float64)
    small = [i for i, n in enumerate(table.n) if 0 < n < 10]
    if not small:
        return
    target = data.draw(st.sampled_from(small))
    mask = np.zeros(len(values), dtype=bool)
    mask[target] = True
    cubes = Hypercubes(table.coordinates, constraints)
    (cube_cells,) = cubes.cheapest([target], mask, values, values, np.asarray([10.0]), np.zeros_like(mask))
    if cube_cells is None:
        return
    hidden = {target, *cube_cells.tolist()}
    ((lo, hi),) = lp_intervals(list(constraints), list(values), hidden, [target]).values()
    assert hi - lo >= 10 - 1e-6


# --- the whole fast path -----------------------------------------------------------------------------------


def _assert_protected(cells: Cells, policy: DisclosurePolicy, kind: str = "count") -> None:
    """Primary cells hidden, every published value exact (unless perturbed), no constraint with one hidden cell, and each primary
    cell's feasible interval (one LP over the whole table) at least its protection width."""
    hierarchies = _hierarchy(cells)
    result = protect_cells(policy, kind, cells, hierarchies=hierarchies)  # type: ignore[arg-type]
    table, _ = complete(cells) if kind in {"count", "sum"} else (cells, 0)
    if result.pattern is None:  # nothing sensitive: everything shown
        assert all(c.value is not None for c in result.shown)
        return
    assert result.pattern.passed
    hidden = {i for i, c in enumerate(result.shown) if c.value is None}
    assert set(result.pattern.primary) <= hidden
    additive = [float(n) for n in table.n] if kind == "count" else [float(v or 0.0) for v in table.value]
    for i, c in enumerate(result.shown):
        if c.value is not None and not policy.perturbs:
            assert c.value == pytest.approx(additive[i])
    constraints = list(cube_constraints(table.coordinates, hierarchies))
    assert all(sum(m in hidden for m in c.members) != 1 for c in constraints)
    intervals = lp_intervals(constraints, additive, hidden, sorted(result.pattern.primary))
    for t, (low, high) in intervals.items():
        need = policy.threshold if kind == "count" else max(policy.p_percent / 100 * abs(additive[t]), 1.0)
        assert high - low >= need - 1e-6, (t, low, high)


@settings(max_examples=scaled(0.8))
@given(st.one_of(tables(), hierarchical()), st.sampled_from(["lp", "cubes", "direct"]))
def test_the_fast_path_protects_random_tables(cells: Cells, audit: str) -> None:
    """``lp``: linear programs where they fit; ``cubes``: none (a large table's groups); ``direct``: hypercubes
    audit and protect from the start (a table with many sensitive cells)."""
    with pytest.MonkeyPatch.context() as patch:
        if audit != "lp":
            patch.setattr(suppression, "LP_BUDGET", 0)
        if audit == "direct":
            patch.setattr(suppression, "DIRECT_CELLS", 0)
        _assert_protected(cells, SUPPRESS)


@settings(max_examples=scaled(0.3))
@given(tables(2), st.sampled_from(["both", "suppression"]))
def test_the_fast_path_protects_suppressed_zeros(cells: Cells, method: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suppression, "LP_BUDGET", 0)
        _assert_protected(cells, DisclosurePolicy(method=method, zeros="suppress"))  # type: ignore[arg-type]


@settings(max_examples=scaled(0.3))
@given(tables(3), st.data())
def test_the_fast_path_protects_dominated_sums(cells: Cells, data: st.DataObject) -> None:
    """Sums whose top contributions make some cells dominated: protected by p% of their value."""
    top: list[list[float] | None] = []
    value: list[float | None] = []
    for n in cells.n:
        share = data.draw(st.sampled_from([0.3, 0.5, 0.95]))
        total = 1000.0 * n
        top.append([share * total, (1 - share) * total / 2])
        value.append(total)
    sums = Cells(cells.coordinates, cells.n, cells.ckey, value, top)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suppression, "LP_BUDGET", 0)
        patch.setattr(suppression, "DIRECT_CELLS", 0)
        _assert_protected(sums, DisclosurePolicy(method="suppression"), "sum")


def test_ward_and_city_cells_of_a_hierarchy_are_proven_by_hypercubes() -> None:
    """A small count in a ward (and so in 計) needs a cube that moves the ward, its town and 計 together: the
    vertical direction. Without it these cells had no hypercube, and large hierarchical tables fell back to
    suppressing one cell at a time."""
    values: dict[tuple[Any, ...], int] = {}
    for i, town in enumerate(WARD_OF):
        for band, n in (("young", 1 if i < 2 else 0), ("old", 40 + i)):
            for area in (town, WARD_OF[town], TOTAL):
                for b in (band, TOTAL):
                    values[(area, b)] = values.get((area, b), 0) + n
    keep = sorted(values.items(), key=repr)
    cells = Cells(
        [c for c, _ in keep],
        [n for _, n in keep],
        [0] * len(keep),
        [float(n) for _, n in keep],
        [None] * len(keep),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suppression, "LP_BUDGET", 0)
        result = protect_cells(SUPPRESS, "count", cells, hierarchies={0: WARD_OF})
        _assert_protected(cells, SUPPRESS)
    assert result.pattern is not None
    primary = {cells.coordinates[i] for i in result.pattern.primary}
    assert {("w1", "young"), (TOTAL, "young")} <= primary  # 1 + 1 persons: the ward and the city are small
    assert result.pattern.by_hypercube == len(result.pattern.primary) and result.pattern.by_lp == 0


def test_a_small_cell_among_zeros_gets_the_cube_through_its_margin() -> None:
    """Its line holds only zeros and other small cells, so the cheapest second codes (zeros) give no width;
    moving it with its margin (計) does. Without 計 among the options no cube was found, and the table fell back
    to suppressing one cell per round (hundreds of rounds on a linked 10,000-cell table)."""
    inner = {
        (f"r{i}", f"c{j}"): (1 if i < 3 else 0) if j == 0 else 50 + i for i in range(10) for j in range(3)
    }
    cells = cube(inner)
    table, _ = complete(cells)
    constraints = cube_constraints(table.coordinates)
    values = np.asarray(table.n, dtype=np.float64)
    target = table.coordinates.index(("r0", "c0"))
    hidden = np.zeros(len(values), dtype=bool)
    hidden[[i for i, n in enumerate(table.n) if 0 < n < 10]] = True
    cubes = Hypercubes(table.coordinates, constraints)
    (found,) = cubes.cheapest([target], hidden, values, values, np.asarray([10.0]), np.zeros_like(hidden))
    assert found is not None
    protected = {*np.flatnonzero(hidden).tolist(), *found.tolist()}
    ((low, high),) = lp_intervals(list(constraints), list(values), protected, [target]).values()
    assert high - low >= 10
