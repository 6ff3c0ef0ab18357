"""Cell key perturbation: the noise of a cell is a function of who is in it, so it is the same in every table.

**Counts** (ABS TableBuilder, ONS Census 2021). A cell's key is the sum of its contributors' record keys mod
2**32 (uniform, because record keys are AES outputs). Its noise is the ptable's value for row min(n, N) at that
key: the same persons give the same cell key, hence the same noise, whichever table the cell appears in, so
subtracting two overlapping tables leaves noise, not a person. Bound: |noise| <= D, 0 stays 0, and no positive
count below js is published.

**Magnitudes** (sum, mean, median; the "top contributions" variant of the Destatis/Eurostat cellKey package).
For a sum with largest absolute contributions x_1 >= x_2 >= … (the control query gives the top two)::

    sum' = sum + m · Σ_j x_j · v_j,     v_j = noise(N, key_j) / D  ∈ [-1, 1]

where m is ``magnitude_pct`` / 100 and key_j is the cell key scrambled with j by a bijective 32-bit mixer
(so each v_j is again uniform, and the same cell gets the same v_j everywhere). The v_j have mean 0 and
variance V / D². Bounds: |sum' − sum| <= m · Σ_j x_j; a sum of non-negative values stays non-negative
(sum >= x_1 + x_2 and m < 1). A mean is perturbed through its sum: mean' = mean + m · Σ_j x_j · v_j / n, bound
m · Σ_j x_j / n. A median is one or two persons' values, not a sum, so it moves relative to itself:
median' = median · (1 + m · v_1), bound m · |median|.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from renkei.hub.disclosure.ptable import KEY_SPACE, PTable

Magnitude = Literal["sum", "mean", "median"]
_MASK = KEY_SPACE - 1
_GOLDEN = 0x9E3779B9  # 2**32 / golden ratio: spreads j over the key space


def perturb_counts(ptable: PTable, n: npt.ArrayLike, ckey: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Published counts: n + ptable noise at each cell's key (vectorized over a whole table)."""
    counts = np.asarray(n, dtype=np.int64)
    return counts + ptable.noise_array(counts, ckey)


def derived_key(ckey: int, j: int) -> int:
    """The j-th key of a cell (j >= 1): murmur3's 32-bit finalizer of ckey XOR j·golden, a bijection."""
    x = (ckey ^ (j * _GOLDEN)) & _MASK
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & _MASK
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & _MASK
    x ^= x >> 16
    return x


def unit_noise(ptable: PTable, ckey: int, j: int) -> float:
    """v_j in [-1, 1]: the large-count ptable row at the j-th derived key, scaled by D."""
    return ptable.noise(ptable.top, derived_key(ckey, j)) / ptable.max_noise


def magnitude_noise(
    ptable: PTable, kind: Magnitude, value: float, n: int, top: Sequence[float], ckey: int, pct: float
) -> float:
    """The noise added to a magnitude cell (see the module docstring for the method and its bound)."""
    m = pct / 100
    if kind == "median":
        return m * abs(value) * unit_noise(ptable, ckey, 1)
    shift = m * sum(abs(x) * unit_noise(ptable, ckey, j) for j, x in enumerate(top, start=1))
    return shift / n if kind == "mean" else shift


def magnitude_bound(kind: Magnitude, value: float, n: int, top: Sequence[float], pct: float) -> float:
    """The largest |noise| :func:`magnitude_noise` can add to this cell."""
    m = pct / 100
    if kind == "median":
        return m * abs(value)
    total = m * sum(abs(x) for x in top)
    return total / n if kind == "mean" else total
