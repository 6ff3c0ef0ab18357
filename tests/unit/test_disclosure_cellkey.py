"""Cell key perturbation: counts and magnitudes stay within their published bounds; keys are well spread."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from renkei.hub.disclosure.cellkey import (
    derived_key,
    magnitude_bound,
    magnitude_noise,
    perturb_counts,
    unit_noise,
)
from renkei.hub.disclosure.ptable import KEY_SPACE, build_ptable

PTABLE = build_ptable(5, 3.0, 5)
keys = st.integers(0, KEY_SPACE - 1)


@given(st.lists(st.tuples(st.integers(0, 10_000), keys), min_size=1, max_size=200))
def test_counts_move_at_most_d_never_below_zero_nor_into_the_small_range(
    cells: list[tuple[int, int]],
) -> None:
    n = np.array([c for c, _ in cells])
    published = perturb_counts(PTABLE, n, [k for _, k in cells])
    assert np.all(np.abs(published - n) <= PTABLE.max_noise)
    assert np.all(published >= 0) and not np.any((published > 0) & (published < PTABLE.small_cells))
    assert np.all(published[n == 0] == 0)


@given(
    st.sampled_from(["sum", "mean", "median"]),
    st.lists(st.floats(0, 1e9), min_size=1, max_size=2).map(lambda xs: sorted(xs, reverse=True)),
    st.integers(2, 5000),
    keys,
    st.floats(0.1, 99),
)
def test_magnitudes_move_within_their_bound_and_non_negative_sums_stay_non_negative(
    kind: str, top: list[float], n: int, ckey: int, pct: float
) -> None:
    total = sum(top) * 3
    value = {"sum": total, "mean": total / n, "median": top[-1]}[kind]
    noise = magnitude_noise(PTABLE, kind, value, n, top, ckey, pct)  # type: ignore[arg-type]
    assert abs(noise) <= magnitude_bound(kind, value, n, top, pct) * (1 + 1e-12)  # type: ignore[arg-type]
    assert value + noise >= 0
    assert magnitude_noise(PTABLE, kind, value, n, top, ckey, pct) == noise  # type: ignore[arg-type]


def test_a_zero_sum_stays_zero() -> None:
    assert magnitude_noise(PTABLE, "sum", 0.0, 12, [0.0, 0.0], 12345, 10) == 0
    assert magnitude_noise(PTABLE, "median", 0.0, 12, [5.0, 4.0], 12345, 10) == 0


def test_derived_keys_are_distinct_and_spread_like_cell_keys() -> None:
    rng = np.random.default_rng(0)
    ckeys = [int(k) for k in rng.integers(0, KEY_SPACE, 20_000)]
    for j in (1, 2):
        derived = [derived_key(k, j) for k in ckeys]
        assert len(set(derived)) == len(set(ckeys))  # a bijection loses nothing
        counts = np.bincount(np.array(derived) >> 28, minlength=16)  # 16 equal slices of the key space
        assert counts.min() > 1000 and counts.max() < 1500
    assert sum(derived_key(k, 1) == derived_key(k, 2) for k in ckeys) < 5  # the two contributions differ


def test_unit_noise_has_mean_zero_and_the_scaled_variance() -> None:
    draws = np.array([unit_noise(PTABLE, k, 1) for k in range(0, KEY_SPACE, KEY_SPACE // 50_000)])
    assert abs(draws.mean()) < 0.01 and np.all(np.abs(draws) <= 1)
    assert abs(draws.var() - 3.0 / 25) < 0.01
