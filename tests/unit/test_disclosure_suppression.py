"""Primary and secondary suppression: rules at their boundaries, CUBE and hierarchical constraints, and the
audit — no suppressed cell below the threshold can be recovered from the table's own margins."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.hub.disclosure import suppression
from renkei.hub.disclosure.audit import Constraint
from renkei.hub.disclosure.policy import DisclosurePolicy
from renkei.hub.disclosure.protect import complete, protect_cells
from renkei.hub.disclosure.suppression import (
    cube_constraints,
    dominated,
    p_percent_sensitive,
    primary_suppression,
    secondary_suppression,
)
from renkei.hub.tables.display import TOTAL
from renkei.hub.tables.service import Cells
from tests.support.cube import cube, lp_intervals

SUPPRESS = DisclosurePolicy(method="suppression")


# --- primary rules ----------------------------------------------------------------------------------------


def test_threshold_and_zero_rules_at_their_boundaries() -> None:
    n = [0, 1, 9, 10, 11]
    values: list[float | None] = [float(x) for x in n]
    tops: list[list[float] | None] = [None] * 5
    assert primary_suppression(SUPPRESS, "count", n, values, tops) == {1: "threshold", 2: "threshold"}
    zeros = SUPPRESS.model_copy(update={"zeros": "suppress"})
    assert primary_suppression(zeros, "count", n, values, tops) == {0: "zero", 1: "threshold", 2: "threshold"}
    assert primary_suppression(zeros, "count", n, values, tops, structural={0}) == {
        1: "threshold",
        2: "threshold",
    }
    assert (
        primary_suppression(DisclosurePolicy(), "count", n, values, tops) == {}
    )  # perturbation protects counts


def test_dominance_and_p_percent_at_their_boundaries() -> None:
    assert dominated([60, 25, 15], 100, 2, 85)  # exactly 85%: flagged, as ACRO does
    assert not dominated([60, 24, 16], 100, 2, 85)
    assert dominated([5, 5], 0, 2, 85)  # contributions cancel out: flagged
    assert not dominated([0, 0], 0, 2, 85)  # nobody contributes anything: nothing to dominate
    assert p_percent_sensitive([100, 50, 9], 159, 10)  # others add up to 9 < 10% of 100
    assert not p_percent_sensitive([100, 50, 10], 160, 10)
    assert p_percent_sensitive([0, 0], 0, 10)  # all zeros: everyone's value is known


def test_magnitude_cells_get_the_rules_whatever_the_method() -> None:
    n = [12, 12, 12, 3, 12]
    value: list[float | None] = [1000.0, 1000.0, 1000.0, 30.0, 100.0]
    top: list[list[float] | None] = [[900, 50], [500, 200], [100, 90], [10, 10], [80]]
    reasons = primary_suppression(DisclosurePolicy(), "sum", n, value, top)
    assert reasons == {0: "dominance", 3: "threshold", 4: "contributions"}
    mean_value: list[float | None] = [100 / 12, 1000 / 12]
    assert primary_suppression(DisclosurePolicy(), "mean", [12, 12], mean_value, [[90, 1], [100, 90]]) == {
        0: "dominance"
    }
    assert primary_suppression(DisclosurePolicy(), "median", [3, 12], [5.0, 5.0], [[9, 9], [9, 9]]) == {
        0: "threshold"
    }


# --- secondary suppression --------------------------------------------------------------------------------


def _constraint_holds(constraint: Constraint, values: list[float]) -> bool:
    return values[constraint.total] == pytest.approx(sum(values[p] for p in constraint.parts))


def _check_protected(
    cells: Cells, policy: DisclosurePolicy, hierarchies: Mapping[int, Any] | None = None
) -> None:
    """The invariants of a suppressed count table, checked from the outside."""
    result = protect_cells(policy, "count", cells, hierarchies=hierarchies)
    table, _ = complete(cells)
    assert [c.coordinates for c in result.shown] == table.coordinates
    hidden = {i for i, c in enumerate(result.shown) if c.value is None}
    primary = {i for i, n in enumerate(table.n) if 0 < n < policy.threshold}
    assert primary <= hidden
    for i, c in enumerate(result.shown):
        if c.value is not None:
            assert c.value == table.n[i] and c.status == "ok"
    constraints = cube_constraints(table.coordinates, hierarchies)
    values = [float(n) for n in table.n]
    assert all(_constraint_holds(c, values) for c in constraints)
    assert all(sum(m in hidden for m in c.members) != 1 for c in constraints)
    for low, high in lp_intervals(constraints, values, hidden, sorted(primary)).values():
        assert high - low >= policy.threshold - 1e-6


def _inner(draw: st.DrawFn, sizes: list[int]) -> dict[tuple[Any, ...], int]:
    count = st.one_of(st.just(0), st.integers(1, 9), st.integers(10, 300))
    codes = [[f"{chr(97 + d)}{i}" for i in range(size)] for d, size in enumerate(sizes)]
    inner = {c: draw(count) for c in itertools.product(*codes)}
    if not any(inner.values()):
        inner[next(iter(inner))] = 1
    return inner


@st.composite
def tables(draw: st.DrawFn, dims: int) -> Cells:
    sizes = [draw(st.integers(2, 5 if dims == 2 else 3)) for _ in range(dims)]
    return cube(_inner(draw, sizes), seed=draw(st.integers(0, 2**16)))


@given(tables(2))
def test_two_dimensional_tables_cannot_be_recovered(cells: Cells) -> None:
    _check_protected(cells, SUPPRESS)


@given(tables(3))
def test_three_dimensional_tables_cannot_be_recovered(cells: Cells) -> None:
    _check_protected(cells, SUPPRESS)


@given(st.sampled_from([2, 3]).flatmap(tables))
def test_hypercubes_alone_protect_tables_too_large_for_linear_programs(cells: Cells) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suppression, "LP_BUDGET", 0)  # what a 10,000-cell table gets
        _check_protected(cells, SUPPRESS)


@given(tables(2), st.sampled_from(["both", "suppression"]))
def test_zeros_suppressed_by_policy_are_protected_too(cells: Cells, method: str) -> None:
    policy = DisclosurePolicy(method=method, zeros="suppress")  # type: ignore[arg-type]
    result = protect_cells(policy, "count", cells)
    table, _ = complete(cells)
    assert all(c.value is None for c, n in zip(result.shown, table.n, strict=True) if n < policy.threshold)


def test_one_small_cell_in_a_two_dimensional_table_costs_exactly_a_rectangle() -> None:
    inner = {(f"r{i}", f"c{j}"): 40 + 7 * i + j for i in range(4) for j in range(5)}
    inner[("r2", "c3")] = 3
    cells = cube(inner)
    result = protect_cells(SUPPRESS, "count", cells)
    hidden = [c.coordinates for c in result.shown if c.value is None]
    assert len(hidden) == 4
    rows, cols = {r for r, _ in hidden}, {c for _, c in hidden}
    assert len(rows) == len(cols) == 2 and ("r2", "c3") in hidden and TOTAL not in rows | cols
    # the cheapest complements: the smallest cell in row r2 and in column c3, and their corner
    assert set(hidden) == {("r2", "c3"), ("r2", "c0"), ("r0", "c3"), ("r0", "c0")}
    assert result.record["cells"]["suppressed"] == 4


def test_the_same_input_gives_the_same_pattern() -> None:
    inner = {(f"r{i}", f"c{j}"): (i * 7 + j * 3) % 23 for i in range(6) for j in range(6)}
    first = protect_cells(SUPPRESS, "count", cube(inner))
    second = protect_cells(SUPPRESS, "count", cube(inner))
    assert first.shown == second.shown and first.record == second.record


WARD_OF = {"t1": "w1", "t2": "w1", "t3": "w2", "t4": "w2", "t5": "w2"}


def _hierarchical(towns: Mapping[tuple[str, str], int]) -> Cells:
    """A table whose first dimension holds wards and their towns, as sdcTable's hierarchies do."""
    values: dict[tuple[Any, ...], int] = {}
    for (town, sex), n in towns.items():
        for area in (town, WARD_OF[town], TOTAL):
            for s in (sex, TOTAL):
                values[(area, s)] = values.get((area, s), 0) + n
    keep = [(c, n) for c, n in sorted(values.items(), key=repr) if n]
    return Cells(
        [c for c, _ in keep],
        [n for _, n in keep],
        [0] * len(keep),
        [float(n) for _, n in keep],
        [None] * len(keep),
    )


def test_hierarchies_sum_only_top_level_codes_into_the_total() -> None:
    cells = _hierarchical({(t, s): 20 for t in WARD_OF for s in ("M", "F")})
    values = [float(n) for n in cells.n]
    flat = cube_constraints(cells.coordinates)
    assert not all(_constraint_holds(c, values) for c in flat)  # towns and wards would both count in 計
    nested = cube_constraints(cells.coordinates, {0: WARD_OF})
    assert all(_constraint_holds(c, values) for c in nested)
    index = {c: i for i, c in enumerate(cells.coordinates)}
    assert Constraint(index[("w1", "F")], (index[("t1", "F")], index[("t2", "F")])) in nested


@given(st.dictionaries(st.sampled_from(list(WARD_OF)), st.integers(1, 60), min_size=len(WARD_OF)), st.data())
def test_hierarchical_tables_cannot_be_recovered(sizes: dict[str, int], data: st.DataObject) -> None:
    towns = {
        (t, s): data.draw(st.one_of(st.integers(1, 9), st.integers(10, 80))) for t in sizes for s in "MF"
    }
    _check_protected(_hierarchical(towns), SUPPRESS, {0: WARD_OF})


def test_structural_cells_are_never_complements() -> None:
    constraints = [Constraint(0, (1, 2, 3))]
    assert secondary_suppression(constraints, {1}, [10, 3, 0, 5], avoid={2}) == {1, 3}
    assert secondary_suppression(constraints, {1}, [10, 3, 0, 5], avoid={2}, forbidden={3}) == {0, 1}


def test_sum_tables_protect_a_dominated_cell_by_its_p_percent() -> None:
    inner = {(f"r{i}", f"c{j}"): 20 for i in range(3) for j in range(3)}
    cells = cube(inner)
    value = [1000.0 * n / 20 for n in cells.n]
    top: list[list[float] | None] = [[40.0, 40.0] for _ in cells.n]
    dominant = cells.coordinates.index(("r1", "c1"))
    top[dominant] = [950.0, 10.0]
    sums = Cells(cells.coordinates, cells.n, cells.ckey, list(value), top)
    result = protect_cells(DisclosurePolicy(), "sum", sums)
    assert result.pattern is not None and result.pattern.primary == {dominant: "dominance"}
    hidden = {i for i, c in enumerate(result.shown) if c.value is None}
    assert len(hidden) == 4 and all(c.status == "perturbed" for c in result.shown if c.value is not None)
    ((low, high),) = lp_intervals(cube_constraints(cells.coordinates), value, hidden, [dominant]).values()
    assert high - low >= 0.1 * value[dominant]
