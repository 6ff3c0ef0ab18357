"""A table's cells as arrays: codes as integers per dimension, and its additive constraints in CSR form.

Suppression works on tables of about 10,000 cells with hundreds of sensitive cells; walking Python tuples and
dicts per cell made it cost seconds. Here each cell is a row of code indices (codes ordered by ``repr`` within a
dimension, 計 among them), a cell is found from its codes by one sorted-array lookup (vectorized), and the
constraints ``total = Σ parts`` are two integer arrays (row pointers and members, total first) that numpy,
scipy's sparse matrices and the solver read directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from renkei.hub.tables.display import TOTAL

Ints = npt.NDArray[np.int64]
Hierarchy = Mapping[Any, Any]  # child code -> parent code, within one dimension
_DENSE_CELLS = 1 << 22  # code combinations up to which a cell is found by direct indexing


@dataclass(frozen=True, slots=True)
class Constraint:
    """``cell[total] = Σ cell[parts]``, by cell index."""

    total: int
    parts: tuple[int, ...]

    @property
    def members(self) -> tuple[int, ...]:
        return (self.total, *self.parts)


class Layout:
    """Cells by their code indices: ``codes[d]`` in ``repr`` order, ``index[i, d]`` the code of cell i."""

    def __init__(self, coordinates: Sequence[tuple[Any, ...]]) -> None:
        dims = len(coordinates[0]) if coordinates else 0
        self.codes: list[list[Any]] = [sorted({c[d] for c in coordinates}, key=repr) for d in range(dims)]
        self.sizes = np.asarray([len(c) for c in self.codes], dtype=np.int64)
        self.index = np.empty((len(coordinates), dims), dtype=np.int64)
        for d, codes in enumerate(self.codes):
            position = {code: j for j, code in enumerate(codes)}
            self.index[:, d] = [position[c[d]] for c in coordinates]
        strides = np.ones(dims, dtype=np.int64)
        for d in range(dims - 2, -1, -1):
            strides[d] = strides[d + 1] * self.sizes[d + 1]
        self.strides = strides
        self.linear: Ints = self.index @ strides if dims else np.zeros(len(coordinates), dtype=np.int64)
        self._order = np.argsort(self.linear, kind="stable")
        self._sorted = self.linear[self._order]
        size = int(np.prod(self.sizes)) if dims else 0
        self._dense: Ints | None = None
        if size <= _DENSE_CELLS:  # a direct array beats binary search when it fits
            self._dense = np.full(size + 1, -1, dtype=np.int64)  # the last slot answers "no such cell"
            self._dense[self.linear] = np.arange(len(coordinates), dtype=np.int64)
        self.total = [codes.index(TOTAL) if TOTAL in codes else -1 for codes in self.codes]
        self.coordinates: Sequence[tuple[Any, ...]] | None = None  # set when built for reuse

    @property
    def dims(self) -> int:
        return len(self.codes)

    def lookup(self, linear: npt.ArrayLike) -> Ints:
        """The cell at each linear index, or -1 where the table has none (any shape)."""
        keys = np.asarray(linear, dtype=np.int64)
        if self._dense is not None:
            size = len(self._dense) - 1
            found_dense: Ints = self._dense[np.where((keys >= 0) & (keys < size), keys, size)]
            return found_dense
        if not len(self._sorted):
            return np.full(keys.shape, -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        found: Ints = np.where(self._sorted[at] == keys, self._order[at], -1)
        return found

    def parents(self, d: int, hierarchy: Hierarchy | None) -> Ints:
        """Per code of dimension d, the code its cells add up into (計, or its parent); -1 for 計 itself."""
        out = np.full(len(self.codes[d]), self.total[d], dtype=np.int64)
        position = {code: j for j, code in enumerate(self.codes[d])}
        for j, code in enumerate(self.codes[d]):
            if code == TOTAL:
                out[j] = -1
            elif hierarchy and code in hierarchy:
                out[j] = position.get(hierarchy[code], -2)  # -2: its parent is not in the table
        return out


class Constraints(Sequence[Constraint]):
    """Constraints as CSR arrays: row r's members are ``members[indptr[r]:indptr[r + 1]]``, total first."""

    def __init__(self, indptr: Ints, members: Ints, layout: Layout | None = None) -> None:
        self.indptr, self.members = indptr, members
        self.layout = layout  # the table's layout, when these were built from its coordinates

    @classmethod
    def of(cls, items: Iterable[Constraint]) -> Constraints:
        if isinstance(items, Constraints):
            return items
        rows = [c.members for c in items]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r) for r in rows])
        members = np.fromiter((m for r in rows for m in r), dtype=np.int64, count=int(indptr[-1]))
        return cls(indptr, members)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @overload
    def __getitem__(self, i: int) -> Constraint: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Constraint]: ...
    def __getitem__(self, i: int | slice) -> Constraint | Sequence[Constraint]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        row = self.members[self.indptr[i % len(self)] : self.indptr[i % len(self) + 1]].tolist()
        return Constraint(row[0], tuple(row[1:]))

    def __iter__(self) -> Iterator[Constraint]:
        rows = np.split(self.members, self.indptr[1:-1]) if len(self) else []
        for row in rows:
            items = row.tolist()
            yield Constraint(items[0], tuple(items[1:]))

    def __add__(self, other: Sequence[Constraint]) -> Constraints:
        more = Constraints.of(other)
        return Constraints(
            np.concatenate([self.indptr, more.indptr[1:] + self.indptr[-1]]),
            np.concatenate([self.members, more.members]),
            self.layout,
        )

    @property
    def totals(self) -> Ints:
        totals: Ints = self.members[self.indptr[:-1]]
        return totals

    def rows(self) -> Ints:
        """The constraint of each entry of ``members``."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))

    def is_total(self) -> npt.NDArray[np.bool_]:
        """Whether each entry of ``members`` is its constraint's total."""
        mask = np.zeros(len(self.members), dtype=bool)
        mask[self.indptr[:-1]] = True
        return mask


def cube_constraints(
    coordinates: Sequence[tuple[Any, ...]], hierarchies: Mapping[int, Hierarchy] | None = None
) -> Constraints:
    """The additive constraints of a CUBE table: each margin is the sum of its parts along one dimension.

    ``hierarchies[d]`` maps codes of dimension d to their parent code in the same dimension; a parent cell
    is then the sum of its children, and 計 the sum of the codes that have no parent. A constraint exists
    where its total cell does. Ordered by (total, parts), parts ascending.
    """
    if not coordinates:
        return Constraints(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    layout = Layout(coordinates)
    layout.coordinates = coordinates
    hierarchies = hierarchies or {}
    pairs = []  # (dimension, total, part) for every part of every constraint
    for d in range(layout.dims):
        parent = layout.parents(d, hierarchies.get(d))[layout.index[:, d]]
        cells = np.flatnonzero(parent >= 0)
        shifted = layout.linear[cells] + (parent[cells] - layout.index[cells, d]) * layout.strides[d]
        totals = layout.lookup(shifted)
        keep = totals >= 0
        pairs.append(np.stack([np.full(int(keep.sum()), d), totals[keep], cells[keep]]))
    dim, total, part = np.concatenate(pairs, axis=1) if pairs else np.zeros((3, 0), dtype=np.int64)
    order = np.lexsort((part, dim, total))
    dim, total, part = dim[order], total[order], part[order]
    starts = np.flatnonzero(np.r_[True, (dim[1:] != dim[:-1]) | (total[1:] != total[:-1])])
    # (total, first part) is unique: two dimensions' constraints on one total differ in every part
    rank = np.lexsort((part[starts], total[starts]))
    lengths = np.diff(np.r_[starts, len(part)])[rank]
    indptr = np.zeros(len(rank) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(lengths + 1)
    members = np.empty(int(indptr[-1]), dtype=np.int64)
    members[indptr[:-1]] = total[starts][rank]
    offsets = np.repeat(starts[rank] - indptr[:-1] - 1, lengths + 0)
    slots = np.setdiff1d(np.arange(len(members)), indptr[:-1], assume_unique=True)
    members[slots] = part[slots + offsets]
    return Constraints(indptr, members, layout)
