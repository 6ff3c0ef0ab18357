"""Array helpers on pyarrow.compute, the vector engine of the generator.

numpy is not a dependency of renkei, so the generator does its per-person arithmetic with pyarrow.compute
kernels; these helpers give the few numpy-like operations it needs readable names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

Array = Any  # a pyarrow Array or ChunkedArray (pyarrow ships no type stubs)

EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal(): date32 counts days from here


def arange(n: int) -> Array:
    return pa.arange(0, n)


def flat(values: Array) -> Array:
    """A plain Array (table columns are ChunkedArrays, which some kernels and concat_arrays reject)."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def const(value: Any, n: int, type_: Any = None) -> Array:
    return pa.repeat(pa.scalar(value, type_), n) if n else pa.array([], type_)


def take(values: Sequence[Any] | Array, indices: Array) -> Array:
    """``values[indices]`` for a Python sequence or an array."""
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        values = pa.array(values)
    return pc.take(values, indices)


def floor_int(values: Array) -> Array:
    return pc.cast(pc.floor(values), pa.int64())


def clip(values: Array, low: Any, high: Any) -> Array:
    """``values`` limited to [low, high]; nulls stay null."""
    return pc.min_element_wise(pc.max_element_wise(values, low, skip_nulls=False), high, skip_nulls=False)


def where(mask: Array, if_true: Any, if_false: Any) -> Array:
    return pc.if_else(mask, if_true, if_false)


def repeat(values: Array, counts: Array) -> Array:
    """Each ``values[i]`` repeated ``counts[i]`` times (numpy.repeat)."""
    ends = pc.cumulative_sum(counts)
    total = ends[-1].as_py() if len(ends) else 0
    return pc.take(values, pc.search_sorted(ends, arange(total), side="right"))


def scatter(values: Array, indices: Array, new_values: Array) -> Array:
    """A copy of ``values`` with ``values[indices[i]] = new_values[i]``."""
    kept = pc.indices_nonzero(pc.invert(pc.is_in(arange(len(values)), value_set=indices)))
    positions = pa.concat_arrays([pc.cast(kept, pa.int64()), pc.cast(flat(indices), pa.int64())])
    merged = pa.concat_arrays([flat(pc.take(values, kept)), flat(new_values)])
    return pc.take(merged, pc.sort_indices(positions))


def inverse_permutation(order: Array) -> Array:
    return pc.sort_indices(order)


def rank_within_sorted(sorted_keys: Array) -> Array:
    """For an ascending array, each element's position among the equal elements before it."""
    first = pc.search_sorted(sorted_keys, sorted_keys, side="left")
    return pc.subtract(arange(len(sorted_keys)), pc.cast(first, pa.int64()))


def pad(values: Array, width: int) -> Array:
    """Integers as zero-padded decimal strings."""
    return pc.utf8_lpad(pc.cast(values, pa.string()), width=width, padding="0")


def text(values: Array) -> Array:
    return pc.cast(values, pa.string())


_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_FULLWIDTH_NUMBERS = pa.array([str(i).translate(_FULLWIDTH) for i in range(2100)], pa.string())


def fullwidth(values: Array, width: int = 0) -> Array:
    """Integers 0 … 2099 in full-width digits (１２３), zero-padded to ``width``."""
    digits = pc.take(_FULLWIDTH_NUMBERS, values)
    return pc.utf8_lpad(digits, width=width, padding="０") if width else digits


def join(*parts: Any) -> Array:
    """Element-wise string concatenation; scalars broadcast, nulls count as empty."""
    return pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")


def by_case(cases: Array, builders: Sequence[Callable[[Array], Array]]) -> Array:
    """``builders[cases[i]]`` applied to row i, each builder called once with the row indices of its case.

    Cheaper than ``pc.choose`` over fully built alternatives when each alternative is an expensive string
    build: every row is built exactly once.
    """
    rows, values = [], []
    for case, build in enumerate(builders):
        indices = pc.indices_nonzero(pc.equal(cases, case))
        if len(indices):
            rows.append(indices)
            values.append(build(indices))
    if not rows:
        return pa.array([], pa.string())
    order = pc.sort_indices(pa.concat_arrays(rows))
    return pc.take(pa.concat_arrays([flat(pc.cast(v, pa.string())) for v in values]), order)


def days(value: Any) -> int:
    """A ``datetime.date`` as days since 1970-01-01 (the date32 representation)."""
    return int(value.toordinal()) - EPOCH_ORDINAL


def hash_int(values: Array, salt: int) -> Array:
    """splitmix64 of ``values + salt`` (uint64): a deterministic, well-mixed hash of integer ids."""
    z = pc.add(pc.cast(values, pa.uint64()), _u64(salt % 2**64))
    z = pc.multiply(pc.bit_wise_xor(z, pc.shift_right(z, _u64(30))), _u64(0xBF58476D1CE4E5B9))
    z = pc.multiply(pc.bit_wise_xor(z, pc.shift_right(z, _u64(27))), _u64(0x94D049BB133111EB))
    return pc.bit_wise_xor(z, pc.shift_right(z, _u64(31)))


def _u64(value: int) -> Any:
    return pa.scalar(value, pa.uint64())


def unit_hash(values: Array, salt: int) -> Array:
    """A uniform double in [0, 1) per id, the same every time for the same (id, salt)."""
    top53 = pc.cast(pc.shift_right(hash_int(values, salt), _u64(11)), pa.float64())
    return pc.multiply(top53, 2.0**-53)


def bincount(values: Array, size: int) -> Array:
    """How often each of 0 … size-1 occurs in ``values`` (numpy.bincount), as an int64 array."""
    values = pc.cast(values, pa.int64())
    sorted_values = pc.take(values, pc.sort_indices(values))
    below = pc.search_sorted(sorted_values, arange(size), side="left")
    upto = pc.search_sorted(sorted_values, arange(size), side="right")
    return pc.cast(pc.subtract(upto, below), pa.int64())


def counts_by(values: Array, size: int) -> list[int]:
    """Histogram of small non-negative integers 0 … size-1, as a Python list (for short loops)."""
    out = [0] * size
    vc = pc.value_counts(values)
    for value, count in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
        if value is not None and 0 <= value < size:
            out[value] = count
    return out
