"""Hypercubes of suppressed cells: a quick proof that a cell is protected, and the fallback that protects it.

Around a target cell pick, in every dimension, a second code (or 計): the 2^k cells at the corners move by
±s — opposite signs across two codes, equal signs across a code and 計 — and every constraint still holds
(checked, so hierarchies and extra relations are respected). While all corners are suppressed the target
can move from its value by −(smallest corner moving with it) to +(smallest corner moving against it): a
sub-interval of its feasible interval, with non-negativity as the only bound. This is the idea of
Repsilber's HYPERCUBE method (sdcTable, τ-Argus); here it proves most cells safe without a linear program,
and when the greedy pattern leaves a cell pinned, the cheapest hypercube wide enough is suppressed for it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence, Set
from typing import Any

from renkei.hub.disclosure.audit import Constraint
from renkei.hub.tables.display import TOTAL

_PROOF_OPTIONS = 3  # second codes tried per dimension when proving: the largest suppressed cells
_FALLBACK_OPTIONS = 3  # ... when choosing cells to suppress: the cheapest wide-enough ones
_TRIES = 81


class Hypercubes:
    def __init__(self, coordinates: Sequence[tuple[Any, ...]], constraints: Sequence[Constraint]) -> None:
        self.coordinates = coordinates
        self.index = {c: i for i, c in enumerate(coordinates)}
        dims = len(coordinates[0]) if coordinates else 0
        self.codes: list[list[Any]] = [sorted({c[d] for c in coordinates}, key=repr) for d in range(dims)]
        self.constraints = constraints
        self.of_cell: dict[int, list[int]] = {}
        for ci, c in enumerate(constraints):
            for m in c.members:
                self.of_cell.setdefault(m, []).append(ci)

    def interval(self, target: int, hidden: Set[int], values: Sequence[float]) -> tuple[float, float] | None:
        """The widest certified sub-interval of the target's feasible interval, or None."""
        options = self._options(
            target, lambda cell: cell in hidden, lambda cell: -values[cell], _PROOF_OPTIONS
        )
        best: tuple[float, float] | None = None
        for corners in self._cubes(target, options, lambda cell: cell in hidden):
            low, high = _moves(target, corners, values)
            if best is None or high - low > best[1] - best[0]:
                best = (low, high)
        return best

    def cheapest(
        self,
        target: int,
        hidden: Set[int],
        values: Sequence[float],
        cost: Sequence[float],
        width: float,
        forbidden: Set[int],
    ) -> set[int] | None:
        """The cells to suppress so that a hypercube gives the target ``width``, cheapest first."""

        def usable(cell: int) -> bool:
            return cell not in forbidden

        def price(cell: int) -> tuple[bool, float]:  # wide enough first, then already hidden, then cheap
            return (values[cell] < width, 0.0 if cell in hidden else cost[cell])

        options = self._options(target, usable, price, _FALLBACK_OPTIONS)
        best: tuple[float, set[int]] | None = None
        for corners in self._cubes(target, options, usable):
            low, high = _moves(target, corners, values)
            if high - low < width:
                continue
            extra = {c for c in corners if c not in hidden}
            total = sum(cost[c] for c in extra)
            if best is None or total < best[0]:
                best = (total, extra)
        return None if best is None else best[1]

    def _options(
        self, target: int, usable: Callable[[int], bool], order: Callable[[int], Any], limit: int
    ) -> list[list[Any]]:
        here = self.coordinates[target]
        options = []
        for d, codes in enumerate(self.codes):
            cells = []
            for code in codes:
                cell = self.index.get((*here[:d], code, *here[d + 1 :]))
                if code != here[d] and cell is not None and usable(cell):
                    cells.append((order(cell), repr(code), code))
            options.append([code for *_, code in sorted(cells)[:limit]])
        return options

    def _cubes(
        self, target: int, options: list[list[Any]], usable: Callable[[int], bool]
    ) -> list[dict[int, int]]:
        """Valid hypercubes around the target from the given second codes: corner → sign."""
        here = self.coordinates[target]
        if any(not o for o in options):
            return []
        found = []
        for choice in itertools.islice(itertools.product(*options), _TRIES):
            corners = self._corners(here, choice, usable)
            if corners is not None:
                found.append(corners)
        return found

    def _corners(
        self, here: tuple[Any, ...], choice: tuple[Any, ...], usable: Callable[[int], bool]
    ) -> dict[int, int] | None:
        corners: dict[int, int] = {}
        pairs = [(h, c) for h, c in zip(here, choice, strict=True)]
        flips = [(0, int(TOTAL not in pair)) for pair in pairs]
        for coords, flipped in zip(itertools.product(*pairs), itertools.product(*flips), strict=True):
            cell = self.index.get(coords)
            if cell is None or not usable(cell):
                return None
            corners[cell] = -1 if sum(flipped) % 2 else 1
        balance: dict[int, int] = {}
        for cell, sign in corners.items():
            for ci in self.of_cell.get(cell, []):
                moved = -sign if cell == self.constraints[ci].total else sign
                balance[ci] = balance.get(ci, 0) + moved
        if any(balance.values()):
            return None  # this direction breaks a constraint (a hierarchy, an extra relation)
        return corners


def _moves(target: int, corners: dict[int, int], values: Sequence[float]) -> tuple[float, float]:
    up = min((values[i] for i, s in corners.items() if s < 0), default=math.inf)  # until these reach 0
    down = min(values[i] for i, s in corners.items() if s > 0)
    return values[target] - down, values[target] + up
