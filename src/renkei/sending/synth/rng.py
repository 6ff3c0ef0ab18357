"""Named, reproducible random streams on pyarrow.compute.

Every draw is named: ``rng.uniform("sex", n)``. The same (seed, scope, name, n) always gives the same numbers,
whatever else was drawn before, so adding a column does not reshuffle the people and output is byte-identical
for a seed. Scopes separate the base population from each simulated year.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth.vec import Array, floor_int, unit_hash


class Rng:
    """A seed and a scope; every draw is named within the scope (see the module docstring)."""

    def __init__(self, seed: int, scope: str = "") -> None:
        self.seed = seed
        self.scope = scope

    def child(self, scope: str) -> Rng:
        return Rng(self.seed, f"{self.scope}/{scope}")

    def key(self, name: str) -> int:
        digest = hashlib.blake2b(f"{self.seed}|{self.scope}|{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") >> 1

    def uniform(self, name: str, n: int) -> Array:
        """Doubles in [0, 1)."""
        return pc.random(n, initializer=self.key(name)) if n else pa.array([], pa.float64())

    def normal(self, name: str, n: int) -> Array:
        """Standard normal deviates (Box-Muller)."""
        u1 = pc.subtract(1.0, self.uniform(name + ".r", n))
        u2 = self.uniform(name + ".a", n)
        return pc.multiply(pc.sqrt(pc.multiply(pc.ln(u1), -2.0)), pc.cos(pc.multiply(u2, 2 * math.pi)))

    def integers(self, name: str, n: int, low: int | Array, high: int | Array) -> Array:
        """Integers in [low, high); the bounds may be arrays."""
        span = pc.subtract(high, low)
        return pc.add(floor_int(pc.multiply(self.uniform(name, n), span)), low)

    def bernoulli(self, name: str, p: float | Array, n: int) -> Array:
        return pc.less(self.uniform(name, n), p)

    def choice(self, name: str, n: int, weights: Sequence[float]) -> Array:
        """Category indices 0 … len(weights)-1 drawn with the given relative weights."""
        return choice_from(self.uniform(name, n), weights)

    def choice_by_group(self, name: str, groups: Array, tables: Sequence[Sequence[float]]) -> Array:
        """Per element, a category index drawn from ``tables[groups[i]]`` (all tables the same length)."""
        return choice_by_group_from(self.uniform(name, len(groups)), groups, tables)

    def triangular(self, name: str, n: int, low: float, mode: float, high: float) -> Array:
        u = self.uniform(name, n)
        cut = (mode - low) / (high - low)
        left = pc.add(low, pc.sqrt(pc.multiply(u, (high - low) * (mode - low))))
        right = pc.subtract(high, pc.sqrt(pc.multiply(pc.subtract(1.0, u), (high - low) * (high - mode))))
        return pc.if_else(pc.less(u, cut), left, right)

    def sample_keys(self, name: str, weights: Array) -> Array:
        """Efraimidis–Spirakis keys: the k largest keys are a weighted sample of k without replacement.

        Zero weights get -inf and are never picked before a positive weight.
        """
        u = pc.subtract(1.0, self.uniform(name, len(weights)))
        return pc.divide(pc.ln(u), pc.cast(weights, pa.float64()))

    def by_id(self, name: str, ids: Array) -> Array:
        """A uniform per id that stays the same across snapshots: a person's or household's latent draw."""
        return unit_hash(ids, self.key(name))


def choice_from(u: Array, weights: Sequence[float]) -> Array:
    """Category indices for given uniforms: inverse of the cumulative weights."""
    total = float(sum(weights))
    cumulative, acc = [], 0.0
    for w in weights[:-1]:
        acc += w / total
        cumulative.append(acc)
    return pc.cast(pc.search_sorted(pa.array(cumulative, pa.float64()), u, side="right"), pa.int64())


def choice_by_group_from(u: Array, groups: Array, tables: Sequence[Sequence[float]]) -> Array:
    """Category indices for given uniforms, each drawn from its group's weights."""
    # One sorted array of group + cumulative share: searching group + u lands inside the right group's block.
    width = len(tables[0])
    flat: list[float] = []
    for g, weights in enumerate(tables):
        total = float(sum(weights)) or 1.0
        acc = 0.0
        for w in weights[:-1]:
            acc += w / total
            flat.append(g + min(acc, 1.0 - 1e-12))
        flat.append(g + 1.0 - 1e-12)
    groups64 = pc.cast(groups, pa.int64())
    needle = pc.add(pc.cast(groups64, pa.float64()), pc.multiply(u, 1.0 - 1e-9))
    pos = pc.cast(pc.search_sorted(pa.array(flat, pa.float64()), needle, side="right"), pa.int64())
    return pc.min_element_wise(pc.subtract(pos, pc.multiply(groups64, width)), width - 1)


def top_k(keys: Array, k: int) -> Array:
    """Indices of the k largest keys, largest first (ties by position)."""
    return pc.array_sort_indices(keys, order="descending").slice(0, max(0, k))
