"""The perturbation table: allowed targets only, mean 0, variance V where feasible, published and reproducible."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.hub.disclosure.ptable import KEY_SPACE, PTable, build_ptable


@st.composite
def parameters(draw: st.DrawFn) -> tuple[int, float, int]:
    d = draw(st.integers(1, 8))
    v = draw(st.floats(0.1, d * d - 0.01, allow_nan=False))
    js = draw(st.integers(1, d))
    return d, v, js


def _targets(count: int, d: int, js: int) -> list[int]:
    """Allowed noise, derived here from the definition, independently of the module."""
    return [v for v in range(-d, d + 1) if count + v >= 0 and not 0 < count + v < js]


def _feasible_variance(support: list[int], v: float) -> float:
    """The variance nearest v that a mean-0 distribution on ``support`` can have."""
    negative, positive = [x for x in support if x < 0], [x for x in support if x > 0]
    low = 0.0 if 0 in support else -max(negative) * min(positive)
    high = -min(negative) * max(positive)
    return min(max(v, low), high)


@given(parameters())
def test_every_row_has_allowed_targets_mean_zero_and_the_nearest_feasible_variance(
    params: tuple[int, float, int],
) -> None:
    d, v, js = params
    table = build_ptable(d, v, js)
    assert table.top == d + js
    assert table.rows[0].noise == (0,) and table.rows[0].upper == (KEY_SPACE,)  # zeros stay zeros
    for row in table.rows[1:]:
        support = _targets(row.count, d, js)
        assert set(row.noise) <= set(support)
        assert all(abs(n) <= d and row.count + n >= 0 and not 0 < row.count + n < js for n in row.noise)
        assert row.upper[-1] == KEY_SPACE and list(row.upper) == sorted(set(row.upper))
        assert abs(row.mean()) < 1e-6
        assert row.variance() == pytest.approx(_feasible_variance(support, v), rel=1e-6, abs=1e-6)


@given(parameters())
def test_large_counts_get_exactly_the_published_variance(params: tuple[int, float, int]) -> None:
    d, v, js = params
    top = build_ptable(d, v, js).rows[-1]
    assert top.variance() == pytest.approx(v, rel=1e-6)
    assert top.noise == tuple(sorted(top.noise)) and top.noise == tuple(-x for x in reversed(top.noise))


def test_the_same_parameters_give_the_same_table_bit_for_bit() -> None:
    first = build_ptable(5, 3.0, 5)
    build_ptable.cache_clear()
    second = build_ptable(5, 3.0, 5)
    assert first is not second
    assert first.to_csv() == second.to_csv() and first.sha256 == second.sha256
    assert build_ptable(5, 3.1, 5).sha256 != first.sha256


def _from_csv(text: str) -> dict[int, list[tuple[int, float]]]:
    rows: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for line in csv.DictReader(io.StringIO(text)):
        rows[int(line["i"])].append((int(line["noise"]), float(line["cumulative"])))
    return rows


@given(parameters(), st.lists(st.tuples(st.integers(0, 500), st.integers(0, KEY_SPACE - 1)), max_size=50))
def test_the_published_csv_alone_reproduces_every_lookup(
    params: tuple[int, float, int], cells: list[tuple[int, int]]
) -> None:
    table: PTable = build_ptable(*params)
    published = _from_csv(table.to_csv())
    for rows in published.values():
        assert rows[-1][1] == 1.0
    for count, key in cells:
        row = published[min(count, max(published))]
        expected = next(noise for noise, cumulative in row if key < cumulative * KEY_SPACE)
        assert table.noise(count, key) == expected
    counts, keys = [c for c, _ in cells], [k for _, k in cells]
    assert table.noise_array(counts, keys).tolist() == [table.noise(c, k) for c, k in cells]


def test_the_default_table_has_the_documented_small_rows() -> None:
    table = build_ptable(5, 3.0, 5)
    assert table.rows[1].noise == (-1, 4)  # a 1 is published as 0 or 5
    assert table.rows[1].probabilities() == pytest.approx([0.8, 0.2])
    assert table.rows[4].noise == (-4, 1)


@pytest.mark.parametrize(("d", "v", "js"), [(0, 1.0, 1), (3, 0.0, 1), (3, 1.0, 4), (3, 1.0, 0)])
def test_impossible_parameters_are_refused(d: int, v: float, js: int) -> None:
    with pytest.raises(ValueError, match="need D"):
        build_ptable(d, v, js)
