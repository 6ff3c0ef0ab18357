"""Hypercubes of suppressed cells: a quick proof that a cell is protected, and the fallback that protects it.

Around a target cell pick, in every dimension, a second code (or 計): the 2^k cells at the corners move by
±s — opposite signs across two codes, equal signs across a code and 計 — and every constraint still holds.
While all corners are suppressed the target can move from its value by −(smallest corner moving with it) to
+(smallest corner moving against it): a sub-interval of its feasible interval, with non-negativity as the only
bound. This is the idea of Repsilber's HYPERCUBE method (sdcTable, τ-Argus); here it proves most cells safe
without a linear program, and when a cell is left pinned, the cheapest hypercube wide enough is suppressed.

Which second codes keep the constraints is decided per dimension: a constraint along dimension d fixes every
other coordinate, so a cube respects it exactly when the pair of codes in d, with its sign, balances each of
d's local constraints (計 = Σ codes; a parent = Σ its children in a hierarchy). In a hierarchy a code with
children pairs with nothing, so such a dimension also tries a vertical direction: the code, all its ancestors
up to 計 and one path down to a leaf, all moving together (a ward's or the city's small cell is proven so).
When a cube is to be suppressed, 計 is always among a flat dimension's options: a small cell whose line holds
only zeros and small cells has no other. Constraints that are not along one dimension (extra relations) are
checked on each candidate cube. Everything is computed for many targets at once with numpy: the cells along
each line through each target, the best few directions per dimension, and every combination of them (at most
3^4 cubes of 2^4 corners for the four dimensions a table may have, more codes per corner in a hierarchy).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei.hub.disclosure.grid import Constraint, Constraints, Ints, Layout

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
_OPTIONS = 3  # second codes tried per dimension: the largest suppressed cells, or the cheapest usable ones
_WIDER = (_OPTIONS, 6, 12)  # ... and for the few cells no cube from those protects (fewer dimensions: more)
_BLOCK = 256  # targets evaluated per array pass (3^4 cubes × 2^4 corners each): arrays stay in cache
_SHARED_RANKING = 32  # codes above which a dimension's lines are ranked once for all targets on them
_PAIR_TABLE = 2048  # codes in a dimension up to which the signs of all its pairs are tabled
_MOST_CORNERS = 20_000  # cubes × corners per target at most, when more second codes are tried
_CHUNK = 128  # targets protected together; the next chunk sees (and reuses) the cubes this one suppressed


class Hypercubes:
    def __init__(self, coordinates: Sequence[tuple[Any, ...]], constraints: Sequence[Constraint]) -> None:
        table = Constraints.of(constraints)
        known = table.layout
        reuse = known is not None and known.coordinates is coordinates  # built from these very cells
        self.layout = known if reuse and known is not None else Layout(coordinates)
        self.cells = len(coordinates)
        self.local, self.extra = _classify(self.layout, table)
        # a dimension whose only relation is 計 = Σ every other code: any two codes pair up
        self.flat = [
            len(m) == 1 and total >= 0 and m[0, total] == -1 and bool((np.delete(m[0], total) == 1).all())
            for m, total in zip(self.local, self.layout.total, strict=True)
        ]
        # the sign of every pair of codes, precomputed where a hierarchy makes it depend on both codes
        self.pairs = [
            None
            if flat or size > _PAIR_TABLE
            else self._pair_signs(d, np.arange(size), np.arange(size)[None, :])
            for d, (flat, size) in enumerate(zip(self.flat, self.layout.sizes.tolist(), strict=True))
        ]
        self.trees = [None if flat else _tree(m) for flat, m in zip(self.flat, self.local, strict=True)]
        # per dimension: how many directions are tried, and how many codes one moves (2 for a pair of codes;
        # a hierarchy's vertical direction moves a code, its ancestors and a path down to a leaf)
        self.widths = [2 if tree is None else max(2, tree.longest) for tree in self.trees]
        self.positions = _product(self.widths)
        self.choices = {k: _product([k + (tree is not None) for tree in self.trees]) for k in _WIDER}

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
        k: int = _OPTIONS,
    ) -> list[Ints | None]:
        """Per target, the cells to suppress so that a hypercube gives it ``width``: the cheapest such cube
        (suppressed cells are free) from ``k`` second codes per dimension, or None when none is wide enough."""
        t = np.asarray(targets, dtype=np.int64)
        if not len(t) or not self.layout.dims:
            return [None] * len(t)
        usable = ~forbidden
        price = np.where(hidden, 0.0, cost)
        options, signs = self._options(t, usable, price, width, values, k)
        cells, sign, valid = self._cubes(t, options, signs, usable, k)
        down, up = _moves(cells, sign, values)
        valid &= down + up >= width[:, None]
        free = (cells < 0) | hidden[np.maximum(cells, 0)]
        extra = np.where(free, 0.0, cost[np.maximum(cells, 0)]).sum(axis=2)
        best = np.argmin(np.where(valid, extra, np.inf), axis=1)
        out: list[Ints | None] = []
        for row, b in enumerate(best):
            if not valid[row, b]:
                out.append(None)
                continue
            corners = cells[row, b]
            corners = corners[corners >= 0]
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
        *,
        proven_already: bool = True,
    ) -> tuple[set[int], list[int], int]:
        """Suppress a cheapest wide-enough cube for each target, in chunks that reuse earlier chunks' cells;
        each chunk first tries a proof from what is hidden by then (the first too, unless ``proven_already``:
        the caller found none of the targets protected).

        Returns the cells added, the targets no cube could protect, and how many targets a cube protects."""
        mask = _mask(self.cells, hidden)
        banned = _mask(self.cells, forbidden)
        fresh: set[int] = set()
        still: list[int] = []
        done = 0
        for start in range(0, len(targets), _CHUNK):
            chunk = np.asarray(targets[start : start + _CHUNK], dtype=np.int64)
            need = np.asarray([width[int(x)] for x in chunk])
            pinned = np.ones(len(chunk), dtype=bool)
            if fresh or not proven_already:  # perhaps what is hidden (an earlier chunk's cube) covers it
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
        for k in _WIDER[1:]:  # the few left: more second codes per dimension, while the cubes stay few
            if not still or len(self.choices[k]) * len(self.positions) > _MOST_CORNERS:
                break
            found = self.cheapest(still, mask, values, cost, np.asarray([width[x] for x in still]), banned, k)
            left = []
            for target, cube in zip(still, found, strict=True):
                if cube is None:
                    left.append(target)
                    continue
                done += 1
                fresh.update(cube.tolist())
                mask[cube] = True
            still = left
        return fresh, still, done

    # --- the parts ---------------------------------------------------------------------------------------

    def _options(
        self,
        t: Ints,
        usable: Mask,
        key: Floats,
        width: Floats | None,
        values: Floats | None = None,
        k: int = _OPTIONS,
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
            if shared and self.flat[d] and layout.sizes[d] > _SHARED_RANKING:
                start = layout.linear[t] - own * layout.strides[d]
                lines, inverse = np.unique(start, return_inverse=True)
                ranked = self._rank(d, lines, None, usable, key, width, values, k + 1)[inverse]
                keep = (ranked >= 0) & (ranked != own[:, None])
                position = np.cumsum(keep, axis=1) - 1
                keep &= position < k
                picked = np.full((len(t), k), -1, dtype=np.int64)
                rows, cols = np.nonzero(keep)
                picked[rows, position[rows, cols]] = ranked[rows, cols]
            else:
                picked = self._rank(
                    d, layout.linear[t] - own * layout.strides[d], own, usable, key, width, values, k
                )
            if width is not None and self.flat[d]:
                picked = self._with_total(d, t, own, picked, usable)
            sign = np.where(picked >= 0, self._pair_signs(d, own, np.maximum(picked, 0)), 0)
            codes = np.full((len(t), picked.shape[1], self.widths[d]), -1, dtype=np.int64)
            codes[:, :, 0], codes[:, :, 1] = np.where(picked >= 0, own[:, None], -1), picked
            moves = np.zeros(codes.shape, dtype=np.int64)
            moves[:, :, 0], moves[:, :, 1] = np.where(picked >= 0, 1, 0), sign
            tree = self.trees[d]
            if tree is not None:  # the vertical direction of a hierarchy, as one more option
                path = self._vertical(d, tree, t, usable, key, width, values)
                codes = np.concatenate([codes, path[:, None, :]], axis=1)
                moves = np.concatenate([moves, np.where(path >= 0, 1, 0)[:, None, :]], axis=1)
            options.append(codes)
            signs.append(moves)
        return options, signs

    def _with_total(self, d: int, t: Ints, own: Ints, picked: Ints, usable: Mask) -> Ints:
        """The options with 計 in the last place when it is usable and not among them: moving a code together
        with its margin is the cube that always exists (a line of zeros and small cells offers no other)."""
        total = self.layout.total[d]
        if total < 0:
            return picked
        layout = self.layout
        cell = layout.lookup(layout.linear[t] + (total - own) * layout.strides[d])
        add = (own != total) & (cell >= 0) & usable[np.maximum(cell, 0)] & ~(picked == total).any(axis=1)
        out = picked.copy()
        out[add, -1] = total
        return out

    def _vertical(
        self,
        d: int,
        tree: _Tree,
        t: Ints,
        usable: Mask,
        key: Floats,
        width: Floats | None,
        values: Floats | None,
    ) -> Ints:
        """Per target: its code, every ancestor up to 計, and a path down from it to a leaf (the best child
        at each step, ranked as :meth:`_rank` ranks), all moving together; -1 padding; all -1 if none."""
        layout = self.layout
        own = layout.index[t][:, d]
        line = layout.lookup(
            (layout.linear[t] - own * layout.strides[d])[:, None]
            + np.arange(layout.sizes[d])[None, :] * layout.strides[d]
        )
        cell = np.maximum(line, 0)
        ok = (line >= 0) & usable[cell]
        score = np.where(ok, key[cell], np.inf)
        if width is not None and values is not None:  # wide-enough children first
            spread = float(np.abs(key[np.isfinite(key)]).max(initial=0.0)) * 2 + 1
            score = np.where(ok & (values[cell] < width[:, None]), score + spread, score)
        path = np.full((len(t), self.widths[d]), -1, dtype=np.int64)
        up = tree.ancestors[own]  # targets × depth, -1 padded
        path[:, : up.shape[1] + 1] = np.concatenate([own[:, None], up], axis=1)[:, : self.widths[d]]
        at = np.sum(path >= 0, axis=1)
        node, alive = own.copy(), np.ones(len(t), dtype=bool)
        rows = np.arange(len(t))
        for _ in range(tree.depth):
            kids = tree.children[node]  # targets × most children, -1 padded
            has = (kids >= 0).any(axis=1) & alive
            if not has.any():
                break
            choice = np.where(kids >= 0, score[rows[:, None], np.maximum(kids, 0)], np.inf)
            best = np.argmin(choice, axis=1)
            found = np.isfinite(choice[rows, best])
            alive &= ~has | found  # a node with children but no usable child: no vertical direction
            step = has & found
            path[rows[step], np.minimum(at[step], self.widths[d] - 1)] = kids[rows[step], best[step]]
            at = at + step
            node = np.where(step, kids[rows, best], node)
        path[~alive | ~ok[rows, own]] = -1
        return path

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
        b = np.broadcast_to(b, (len(a), b.shape[-1]))
        if self.flat[d]:  # 計 = Σ codes: two codes move oppositely, a code and 計 together
            total = self.layout.total[d]
            flat: npt.NDArray[np.int8] = np.where((b == total) | (a[:, None] == total), 1, -1).astype(np.int8)
            return np.where(b == a[:, None], 0, flat).astype(np.int8)
        table = self.pairs[d] if hasattr(self, "pairs") else None  # None while __init__ builds the tables
        if table is not None:
            found: npt.NDArray[np.int8] = table[a[:, None], b]
            return found
        matrix = self.local[d]
        if not len(matrix):
            return np.full(b.shape, -1, dtype=np.int8)
        left, right = matrix[:, a][:, :, None], matrix[:, b]
        opposite = (left == right).all(axis=0)
        together = (left == -right).all(axis=0)
        return np.where(opposite, -1, np.where(together, 1, 0)).astype(np.int8)

    def _cubes(
        self, t: Ints, options: list[Ints], signs: list[Ints], usable: Mask, k: int = _OPTIONS
    ) -> tuple[Ints, Ints, Mask]:
        """Every combination of options: corner cells (targets × cubes × corners, -1 where a corner does not
        exist because its direction moves fewer codes), their signs (0 there), and validity."""
        layout = self.layout
        choice = self.choices[k]
        linear = np.zeros((len(t), len(choice), len(self.positions)), dtype=np.int64)
        sign = np.ones(linear.shape, dtype=np.int64)
        absent = np.zeros(linear.shape, dtype=bool)
        present = np.ones((len(t), len(choice)), dtype=bool)
        for d in range(layout.dims):
            codes = options[d]  # targets × options × codes moved
            present &= (codes[:, :, 1] >= 0)[:, choice[:, d]]  # a direction moves at least two codes
            # corner p of cube c takes code positions[p, d] of option choice[c, d]: one gather per array
            index = choice[:, d][:, None] * codes.shape[2] + self.positions[:, d][None, :]
            flat = codes.reshape(len(t), -1)
            corner = flat[:, index]  # targets × cubes × corners
            absent |= corner < 0
            linear += np.maximum(corner, 0) * layout.strides[d]
            sign *= signs[d].reshape(len(t), -1)[:, index]
        cells = np.where(absent, -1, layout.lookup(linear))
        sign = np.where(absent, 0, sign)
        valid = present & ((cells >= 0) | absent).all(axis=2)
        valid &= (usable[np.maximum(cells, 0)] | absent).all(axis=2)
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
    """How far the target can move down (until a corner moving with it reaches 0) and up (sign 0: no
    corner)."""
    v = values[np.maximum(cells, 0)]
    down = np.where(sign > 0, v, np.inf).min(axis=2)
    up = np.where(sign < 0, v, np.inf).min(axis=2)
    return down, up


def _product(counts: Sequence[int]) -> Ints:
    """Every combination of one index per dimension, the last dimension fastest."""
    combos = np.asarray(list(itertools.product(*[range(c) for c in counts])), dtype=np.int64)
    return combos.reshape(-1, len(counts))


@dataclass(frozen=True, slots=True)
class _Tree:
    """A dimension's hierarchy as arrays over its codes: ancestors (nearest first) and children, -1 padded."""

    ancestors: Ints  # codes × depth
    children: Ints  # codes × most children
    depth: int
    longest: int  # codes a vertical direction can move: the code, its ancestors, a path down


def _tree(matrix: npt.NDArray[np.int8]) -> _Tree | None:
    """The hierarchy of local constraints ``parent = Σ children`` (one -1 per row), if they form a tree."""
    size = matrix.shape[1]
    parent = np.full(size, -1, dtype=np.int64)
    for row in matrix:
        parents, kids = np.flatnonzero(row == -1), np.flatnonzero(row == 1)
        if len(parents) != 1 or (parent[kids] >= 0).any() or ((row != 0).sum() != len(kids) + 1):
            return None  # not parent = Σ children, or a code with two parents
        parent[kids] = parents[0]
    chains: list[list[int]] = []
    for code in range(size):
        chain: list[int] = []
        at = int(parent[code])
        while at >= 0:
            if at == code or len(chain) > size:
                return None  # a cycle
            chain.append(at)
            at = int(parent[at])
        chains.append(chain)
    depth = max((len(c) for c in chains), default=0)
    ancestors = np.full((size, max(depth, 1)), -1, dtype=np.int64)
    for code, chain in enumerate(chains):
        ancestors[code, : len(chain)] = chain
    kids_of: list[list[int]] = [[] for _ in range(size)]
    for code in range(size):
        if parent[code] >= 0:
            kids_of[int(parent[code])].append(code)
    most = max((len(k) for k in kids_of), default=0)
    children = np.full((size, max(most, 1)), -1, dtype=np.int64)
    for code, under in enumerate(kids_of):
        children[code, : len(under)] = under
    return _Tree(ancestors, children, depth, depth + 1)  # one chain from 計 down to a leaf


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
        distinct = {row.tobytes(): row for row in matrix}  # one row per distinct local constraint
        matrices.append(np.stack([distinct[k] for k in sorted(distinct)]) if distinct else matrix)
    others = np.flatnonzero(~single)
    extra = np.zeros((len(others), cells), dtype=np.int64)
    position = np.full(len(constraints), -1, dtype=np.int64)
    position[others] = np.arange(len(others))
    entries = np.flatnonzero(position[rows] >= 0)
    extra[position[rows[entries]], members[entries]] = np.where(is_total[entries], -1, 1)
    return matrices, extra
