"""Hypercubes of suppressed cells: a quick proof that a cell is protected, and the fallback that protects it.

Around a target cell pick, in every dimension, a second code (or 計): the 2^k cells at the corners move by
±s — opposite signs across two codes, equal signs across a code and 計 — and every constraint still holds.
While all corners are suppressed the target can move from its value by −(smallest corner moving with it) to
+(smallest corner moving against it): a sub-interval of its feasible interval, with non-negativity as the only
bound. This is the idea of Repsilber's HYPERCUBE method (sdcTable, τ-Argus); here it proves most cells safe
without a linear program, and when a cell is left pinned, the cheapest hypercube wide enough is suppressed.

Which second codes keep the constraints is decided per dimension: a constraint along dimension d fixes every
other coordinate, so a cube respects it exactly when the pair of codes in d, with its sign, balances each of
d's local constraints (計 = Σ codes; a parent = Σ its children in a hierarchy). Constraints that are not along
one dimension (extra relations) are checked on each candidate cube. Everything is computed for many targets at
once with numpy: the cells along each line through each target, the best few second codes per dimension, and
every combination of them (at most 3^4 cubes of 2^4 corners for the four dimensions a table may have).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence, Set
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei.hub.disclosure.grid import Constraint, Constraints, Ints, Layout

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
_OPTIONS = 3  # second codes tried per dimension: the largest suppressed cells, or the cheapest usable ones
_BLOCK = 256  # targets evaluated per array pass (3^4 cubes × 2^4 corners each): arrays stay in cache
_CHUNK = 128  # targets protected together; the next chunk sees (and reuses) the cubes this one suppressed


class Hypercubes:
    def __init__(self, coordinates: Sequence[tuple[Any, ...]], constraints: Sequence[Constraint]) -> None:
        self.layout = Layout(coordinates)
        self.cells = len(coordinates)
        self.local, self.extra = _classify(self.layout, Constraints.of(constraints))
        # a dimension whose only relation is 計 = Σ every other code: any two codes pair up
        self.flat = [
            len(m) == 1 and int((m[0] == -1).sum()) == 1 and bool((m[0] != 0).all()) for m in self.local
        ]
        dims = self.layout.dims
        self.bits = np.asarray(list(itertools.product((0, 1), repeat=dims)), dtype=np.int64).reshape(-1, dims)
        self.choice = np.asarray(
            list(itertools.product(range(_OPTIONS), repeat=dims)), dtype=np.int64
        ).reshape(-1, dims)

    # --- proofs ------------------------------------------------------------------------------------------

    def intervals(self, targets: Sequence[int] | Ints, hidden: Mask, values: Floats) -> tuple[Floats, Floats]:
        """Per target, the widest certified sub-interval of its feasible interval (NaN where none)."""
        t = np.asarray(targets, dtype=np.int64)
        low, high = np.full(len(t), np.nan), np.full(len(t), np.nan)
        if not len(t) or not self.layout.dims:
            return low, high
        for start in range(0, len(t), _BLOCK):
            block = t[start : start + _BLOCK]
            options, signs = self._options(block, hidden, -values, None)
            cells, sign, valid = self._cubes(block, options, signs, hidden)
            down, up = _moves(cells, sign, values)
            width = np.where(valid, down + up, -np.inf)
            best = np.argmax(width, axis=1)
            rows = np.arange(len(block))
            found = valid[rows, best]
            low[start : start + len(block)] = np.where(found, values[block] - down[rows, best], np.nan)
            high[start : start + len(block)] = np.where(found, values[block] + up[rows, best], np.nan)
        return low, high

    def protected(self, targets: Sequence[int] | Ints, hidden: Mask, values: Floats, width: Floats) -> Mask:
        """Whether a hypercube of hidden cells gives each target at least its ``width``."""
        low, high = self.intervals(targets, hidden, values)
        return ~np.isnan(low) & ~narrow(high - low, width)

    # --- the fallback ------------------------------------------------------------------------------------

    def cheapest(
        self,
        targets: Sequence[int] | Ints,
        hidden: Mask,
        values: Floats,
        cost: Floats,
        width: Floats,
        forbidden: Mask,
    ) -> list[Ints | None]:
        """Per target, the cells to suppress so that a hypercube gives it ``width``: the cheapest such cube
        (suppressed cells are free), or None when no cube from the options is wide enough."""
        t = np.asarray(targets, dtype=np.int64)
        if not len(t) or not self.layout.dims:
            return [None] * len(t)
        usable = ~forbidden
        price = np.where(hidden, 0.0, cost)
        options, signs = self._options(t, usable, price, width, values)
        cells, sign, valid = self._cubes(t, options, signs, usable)
        down, up = _moves(cells, sign, values)
        valid &= down + up >= width[:, None]
        extra = np.where(hidden[np.maximum(cells, 0)], 0.0, cost[np.maximum(cells, 0)]).sum(axis=2)
        best = np.argmin(np.where(valid, extra, np.inf), axis=1)
        out: list[Ints | None] = []
        for row, b in enumerate(best):
            if not valid[row, b]:
                out.append(None)
                continue
            corners = cells[row, b]
            out.append(corners[~hidden[corners]])
        return out

    def protect(
        self,
        targets: Sequence[int],
        hidden: Set[int],
        values: Floats,
        cost: Floats,
        width: Mapping[int, float],
        forbidden: Set[int],
    ) -> tuple[set[int], list[int], int]:
        """Suppress a cheapest wide-enough cube for each target, in chunks that reuse earlier chunks' cells.

        Returns the cells added, the targets no cube could protect, and how many targets a cube protects."""
        mask = _mask(self.cells, hidden)
        banned = _mask(self.cells, forbidden)
        fresh: set[int] = set()
        still: list[int] = []
        done = 0
        for start in range(0, len(targets), _CHUNK):
            chunk = np.asarray(targets[start : start + _CHUNK], dtype=np.int64)
            need = np.asarray([width[int(x)] for x in chunk])
            pinned = np.ones(len(chunk), dtype=bool)  # the caller found none of them protected
            if fresh:  # perhaps an earlier chunk's cube covers it
                pinned = ~self.protected(chunk, mask, values, need)
            done += int((~pinned).sum())
            for target, cube in zip(
                chunk[pinned],
                self.cheapest(chunk[pinned], mask, values, cost, need[pinned], banned),
                strict=True,
            ):
                if cube is None:
                    still.append(int(target))
                    continue
                done += 1
                fresh.update(cube.tolist())
                mask[cube] = True
        return fresh, still, done

    # --- the parts ---------------------------------------------------------------------------------------

    def _options(
        self,
        t: Ints,
        usable: Mask,
        key: Floats,
        width: Floats | None,
        values: Floats | None = None,
    ) -> tuple[list[Ints], list[Ints]]:
        """Per dimension, the best ``_OPTIONS`` second codes for each target (-1 when fewer) and their signs.

        Order: with ``width``, cells at least that large first (a smaller corner cannot give the width),
        then by ``key``, then by code; the target's own code and pairs that break a constraint never count.
        Along a dimension without a hierarchy every pair of codes is valid, so targets on the same line
        share one ranking of it (a town line of 800 cells is ranked once, not once per target on it)."""
        layout = self.layout
        here = layout.index[t]
        shared = width is None or bool((width == width[0]).all())
        options, signs = [], []
        for d in range(layout.dims):
            own = here[:, d]
            if shared and self.flat[d]:
                start = layout.linear[t] - own * layout.strides[d]
                lines, inverse = np.unique(start, return_inverse=True)
                ranked = self._rank(d, lines, None, usable, key, width, values, _OPTIONS + 1)[inverse]
                keep = (ranked >= 0) & (ranked != own[:, None])
                position = np.cumsum(keep, axis=1) - 1
                keep &= position < _OPTIONS
                picked = np.full((len(t), _OPTIONS), -1, dtype=np.int64)
                rows, cols = np.nonzero(keep)
                picked[rows, position[rows, cols]] = ranked[rows, cols]
            else:
                picked = self._rank(
                    d, layout.linear[t] - own * layout.strides[d], own, usable, key, width, values
                )
            options.append(picked)
            sign = self._pair_signs(d, own, np.maximum(picked, 0))
            signs.append(np.where(picked >= 0, sign, 0))
        return options, signs

    def _rank(
        self,
        d: int,
        starts: Ints,
        own: Ints | None,
        usable: Mask,
        key: Floats,
        width: Floats | None,
        values: Floats | None,
        count: int = _OPTIONS,
    ) -> Ints:
        """The ``count`` best codes along dimension d of each line (given by its cell with code 0), for a
        target with code ``own`` on it (its code and the pairs that break a constraint excluded), or for
        every target on a line without a hierarchy (``own`` None: nothing excluded)."""
        layout = self.layout
        codes = np.arange(layout.sizes[d], dtype=np.int64)
        line = layout.lookup(starts[:, None] + codes[None, :] * layout.strides[d])
        cell = np.maximum(line, 0)
        ok = (line >= 0) & usable[cell]
        if own is not None:
            ok &= (codes[None, :] != own[:, None]) & (self._pair_signs(d, own, codes[None, :]) != 0)
        group = np.where(ok, 0, 2)  # usable cells first, then (never picked) the rest
        if width is not None and values is not None:  # a corner smaller than the width cannot give it
            group = np.where(
                ok & (values[cell] < (width[:, None] if own is not None else width[0])), 1, group
            )
        order = np.lexsort((np.where(ok, key[cell], 0.0), group), axis=1)[
            :, :count
        ]  # stable: code order last
        picked: Ints = np.where(np.take_along_axis(group, order, axis=1) < 2, order, -1)
        if picked.shape[1] < count:
            picked = np.pad(picked, ((0, 0), (0, count - picked.shape[1])), constant_values=-1)
        return picked

    def _pair_signs(self, d: int, a: Ints, b: Ints) -> npt.NDArray[np.int8]:
        """Per target (code ``a``) and candidate code (``b``, one row per target): -1 if the two codes of
        dimension d move oppositely, +1 together, 0 if no sign keeps d's local constraints."""
        matrix = self.local[d]
        b = np.broadcast_to(b, (len(a), b.shape[-1]))
        if not len(matrix):
            return np.full(b.shape, -1, dtype=np.int8)
        left, right = matrix[:, a][:, :, None], matrix[:, b]
        opposite = (left == right).all(axis=0)
        together = (left == -right).all(axis=0)
        return np.where(opposite, -1, np.where(together, 1, 0)).astype(np.int8)

    def _cubes(
        self, t: Ints, options: list[Ints], signs: list[Ints], usable: Mask
    ) -> tuple[Ints, Ints, Mask]:
        """Every combination of options: corner cells (targets × cubes × corners), their signs, validity."""
        layout = self.layout
        here = layout.index[t]
        shifts, flips = [], []
        present = np.ones((len(t), len(self.choice)), dtype=bool)
        for d in range(layout.dims):
            code = options[d][:, self.choice[:, d]]  # targets × cubes
            present &= code >= 0
            shifts.append((np.maximum(code, 0) - here[:, d : d + 1]) * layout.strides[d])
            flips.append(signs[d][:, self.choice[:, d]] < 0)
        # every corner's cell and sign: corner p takes the second code in the dimensions where bit p,d is set
        linear = np.repeat(layout.linear[t][:, None, None], len(self.choice), axis=1)
        linear = np.repeat(linear, len(self.bits), axis=2)
        odd = np.zeros(linear.shape, dtype=bool)
        for d in range(layout.dims):
            moved = self.bits[:, d] == 1
            linear[:, :, moved] += shifts[d][:, :, None]
            odd[:, :, moved] ^= flips[d][:, :, None]
        sign = np.where(odd, -1, 1)
        cells = layout.lookup(linear)
        valid = present & (cells >= 0).all(axis=2)
        valid &= usable[np.maximum(cells, 0)].all(axis=2)
        for row in self.extra:  # relations not along one dimension: the cube must balance them too
            balance = np.where(cells >= 0, row[np.maximum(cells, 0)], 0) * sign
            valid &= balance.sum(axis=2) == 0
        return cells, sign, valid


def narrow(width: npt.ArrayLike, need: npt.ArrayLike) -> Mask:
    """Whether each width is narrower than needed (with slack for the LP solver's rounding)."""
    w, n = np.asarray(width, dtype=np.float64), np.asarray(need, dtype=np.float64)
    result: Mask = w < n * (1 - 1e-9) - 1e-9
    return result


def _moves(cells: Ints, sign: Ints, values: Floats) -> tuple[Floats, Floats]:
    """How far the target can move down (until a corner moving with it reaches 0) and up."""
    v = values[np.maximum(cells, 0)]
    down = np.where(sign > 0, v, np.inf).min(axis=2)
    up = np.where(sign < 0, v, np.inf).min(axis=2)
    return down, up


def _mask(size: int, cells: Set[int]) -> Mask:
    mask = np.zeros(size, dtype=bool)
    if cells:
        mask[np.fromiter(cells, dtype=np.int64, count=len(cells))] = True
    return mask


def _classify(layout: Layout, constraints: Constraints) -> tuple[list[npt.NDArray[np.int8]], Ints]:
    """Per dimension, its distinct local constraints as rows over its codes (-1 total, +1 part); and the
    constraints not along a single dimension as rows over cells (-1 total, +1 part)."""
    dims, sizes = layout.dims, [int(s) for s in layout.sizes]
    cells = layout.index.shape[0]
    if not len(constraints) or not dims:
        return [np.zeros((0, s), dtype=np.int8) for s in sizes], np.zeros((0, cells), dtype=np.int64)
    rows, totals, members = constraints.rows(), constraints.totals, constraints.members
    index = layout.index
    is_total = constraints.is_total()
    differs = index[members] != index[totals[rows]]  # entries × dims
    along = np.where(differs.sum(axis=1) == 1, differs.argmax(axis=1), -1)
    starts = constraints.indptr[:-1]
    first = np.minimum.reduceat(np.where(is_total, dims, along), starts)
    last = np.maximum.reduceat(np.where(is_total, -1, along), starts)
    single = (first == last) & (first >= 0) & (first < dims)
    matrices = []
    for d in range(dims):
        mine = np.flatnonzero(single & (first == d))
        matrix = np.zeros((len(mine), sizes[d]), dtype=np.int8)
        position = np.full(len(constraints), -1, dtype=np.int64)
        position[mine] = np.arange(len(mine))
        entries = np.flatnonzero(position[rows] >= 0)
        matrix[position[rows[entries]], index[members[entries], d]] = np.where(is_total[entries], -1, 1)
        matrices.append(np.unique(matrix, axis=0) if len(matrix) else matrix)
    others = np.flatnonzero(~single)
    extra = np.zeros((len(others), cells), dtype=np.int64)
    position = np.full(len(constraints), -1, dtype=np.int64)
    position[others] = np.arange(len(others))
    entries = np.flatnonzero(position[rows] >= 0)
    extra[position[rows[entries]], members[entries]] = np.where(is_total[entries], -1, 1)
    return matrices, extra
