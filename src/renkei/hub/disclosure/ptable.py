"""The perturbation table (ptable) of the cell key method, built deterministically from (D, V, js).

For each original count i = 0..N (N = D + js; every larger count uses row N) the table gives a distribution
over integer noise v in [-D, D] such that

- i + v >= 0, and i + v is never in 1..js-1 (a published positive count is at least js), so 0 stays 0;
- the mean of v is 0 (unbiased), and its variance is V — or, for the few small rows where no distribution
  on the allowed targets has variance V, the feasible variance nearest to V;
- among such distributions it has maximum entropy, p(v) ∝ exp(a·v + b·v²): the construction of the
  Destatis/Eurostat ``ptable`` R package (Giessing 2016), solved here by Newton's method on the dual.

Probabilities are quantized to units of 2**-32, the resolution of a cell key, so a lookup is exact integer
arithmetic: a cell with count i and key k gets the noise whose cumulative interval contains k. The table is
published as CSV (``i,noise,p,cumulative``); its SHA-256 goes into every release record.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

KEY_SPACE = 2**32  # cell keys are sums of uint32 record keys mod 2**32
CSV_HEADER = "i,noise,p,cumulative"
_NEWTON_STEPS = 200
_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class PRow:
    """The noise distribution of one original count: values and cumulative upper bounds in key units."""

    count: int
    noise: tuple[int, ...]
    upper: tuple[int, ...]  # upper[j] = 2**32 · P(v <= noise[j]); the last is 2**32

    def probabilities(self) -> list[float]:
        lower = (0, *self.upper[:-1])
        return [(u - low) / KEY_SPACE for u, low in zip(self.upper, lower, strict=True)]

    def mean(self) -> float:
        return sum(v * p for v, p in zip(self.noise, self.probabilities(), strict=True))

    def variance(self) -> float:
        mean = self.mean()
        return sum((v - mean) ** 2 * p for v, p in zip(self.noise, self.probabilities(), strict=True))


@dataclass(frozen=True, slots=True)
class PTable:
    max_noise: int  # D
    variance: float  # V
    small_cells: int  # js
    rows: tuple[PRow, ...]  # rows[i] for i = 0..N

    @property
    def top(self) -> int:
        """N: counts at or above it share row N."""
        return len(self.rows) - 1

    def noise(self, count: int, key: int) -> int:
        row = self.rows[min(count, self.top)]
        return row.noise[int(np.searchsorted(row.upper, key % KEY_SPACE, side="right"))]

    def noise_array(self, counts: npt.ArrayLike, keys: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Vectorized :meth:`noise` for whole tables."""
        counts_a = np.minimum(np.asarray(counts, dtype=np.int64), self.top)
        keys_a = np.asarray(keys, dtype=np.int64) % KEY_SPACE
        out = np.zeros(counts_a.shape, dtype=np.int64)
        for i, row in enumerate(self.rows):
            here = counts_a == i
            if here.any():
                picks = np.searchsorted(np.asarray(row.upper, dtype=np.int64), keys_a[here], side="right")
                out[here] = np.asarray(row.noise, dtype=np.int64)[picks]
        return out

    def to_csv(self) -> str:
        """The publishable table: one line per (i, noise) with its probability and cumulative probability."""
        lines = [CSV_HEADER]
        for row in self.rows:
            for v, p, upper in zip(row.noise, row.probabilities(), row.upper, strict=True):
                lines.append(f"{row.count},{v},{p!r},{upper / KEY_SPACE!r}")
        return "\n".join(lines) + "\n"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_csv().encode()).hexdigest()

    def describe(self) -> dict[str, object]:
        """The ptable's identity for a release record."""
        return {
            "method": "cell key (ABS/ONS), maximum-entropy ptable",
            "label": f"D{self.max_noise}-V{self.variance:g}-js{self.small_cells}",
            "max_noise": self.max_noise,
            "variance": self.variance,
            "small_cells": self.small_cells,
            "rows": len(self.rows),
            "sha256": self.sha256,
        }


@functools.lru_cache(maxsize=16)
def build_ptable(max_noise: int, variance: float, small_cells: int) -> PTable:
    """The ptable for (D, V, js); the same parameters always give the same table, bit for bit."""
    if max_noise < 1 or variance <= 0 or not 1 <= small_cells <= max_noise:
        raise ValueError("need D >= 1, V > 0 and 1 <= js <= D")
    top = max_noise + small_cells
    rows = [PRow(0, (0,), (KEY_SPACE,))]
    for count in range(1, top + 1):
        support = [
            v for v in range(-max_noise, max_noise + 1) if count + v >= 0 and not 0 < count + v < small_cells
        ]
        probabilities = _max_entropy(np.asarray(support, dtype=np.float64), variance)
        rows.append(_quantize(count, support, probabilities))
    return PTable(max_noise, float(variance), small_cells, tuple(rows))


def _max_entropy(v: npt.NDArray[np.float64], variance: float) -> npt.NDArray[np.float64]:
    """The maximum-entropy distribution on ``v`` with mean 0 and the feasible variance nearest ``variance``."""
    negative, positive = v[v < 0], v[v > 0]
    low = -negative.max() * positive.min() if 0 not in v else 0.0  # closest two-point split around 0
    high = -negative.min() * positive.max()  # the two extremes
    if variance <= low:
        return _two_point(v, negative.max(), positive.min())
    if variance >= high:
        return _two_point(v, negative.min(), positive.max())
    return _newton(v, variance)


def _two_point(v: npt.NDArray[np.float64], a: float, b: float) -> npt.NDArray[np.float64]:
    p = np.zeros_like(v)
    p[v == a] = b / (b - a)  # mean 0: p_a·a + p_b·b = 0
    p[v == b] = -a / (b - a)
    return p


def _newton(v: npt.NDArray[np.float64], variance: float) -> npt.NDArray[np.float64]:
    """Minimize the convex dual log Σ exp(λ1·v + λ2·(v² − V)); its gradient is (E v, E v² − V)."""
    features = np.stack([v, v * v - variance])
    lam = np.zeros(2)

    def dual(x: npt.NDArray[np.float64]) -> float:
        z = x @ features
        top = float(z.max())
        return top + math.log(float(np.exp(z - top).sum()))

    for _ in range(_NEWTON_STEPS):
        z = lam @ features
        p = np.exp(z - z.max())
        p /= p.sum()
        grad = features @ p
        if float(np.abs(grad).max()) < _TOLERANCE:
            break
        centered = features - grad[:, None]
        hessian = (centered * p) @ centered.T
        step = np.linalg.solve(hessian + 1e-15 * np.eye(2), grad)
        t, here = 1.0, dual(lam)
        while dual(lam - t * step) > here - 1e-4 * t * float(grad @ step) and t > 1e-12:
            t /= 2
        lam = lam - t * step
    z = lam @ features
    p = np.exp(z - z.max())
    result: npt.NDArray[np.float64] = p / p.sum()
    return result


def _quantize(count: int, support: list[int], probabilities: npt.NDArray[np.float64]) -> PRow:
    """Probabilities as whole key units summing to 2**32 (largest remainders; ties by position)."""
    scaled = probabilities * KEY_SPACE
    units = np.floor(scaled).astype(np.int64)
    short = KEY_SPACE - int(units.sum())
    order = sorted(range(len(support)), key=lambda j: (-(scaled[j] - units[j]), j))
    for j in order[:short]:
        units[j] += 1
    kept = [(v, int(u)) for v, u in zip(support, units, strict=True) if u > 0]
    upper = np.cumsum([u for _, u in kept])
    return PRow(count, tuple(v for v, _ in kept), tuple(int(x) for x in upper))
