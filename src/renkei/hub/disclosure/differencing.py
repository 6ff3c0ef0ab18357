"""Differencing across releases: two published cells whose groups are nested differ by a real group.

A new table is compared with the tables released earlier to the same person or project (the caller keeps
that ledger and passes it in). Two cells are *nested* when one's group contains the other's:

- the populations are nested: same base dataset and unit, and one request's filters, periods and links
  include and narrow the other's (``age between 0 and 64`` inside ``age between 0 and 74``; ``ward in (1, 2)``
  inside ``ward in (1, 2, 3)``; an extra filter; an extra link);
- and, dimension by dimension, each code of the smaller cell lies inside the larger's: 計 contains every
  code (a total minus its part), a 5-year age band lies inside a 10-year one, a household size of 4 inside
  "4 or more".

Then larger − smaller is the count of a group nobody asked for. If it is below the threshold (and above 0)
and both cells were published, the release is refused — or sent to review when the published values were
perturbed, since the cell key method leaves noise, not the group, in the difference.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from renkei.hub.tables.display import TOTAL, ShownCell
from renkei.hub.tables.request import (
    AgeBand,
    Dimension,
    Filter,
    HouseholdSize,
    TableRequest,
)

Action = Literal["refuse", "review"]
Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Release:
    """One table as the ledger keeps it: the request, each cell's true count, what was hidden or noised."""

    id: str
    request: Mapping[str, Any]  # TableRequest as JSON
    n: Mapping[tuple[Any, ...], int]  # coordinates -> true contributors
    perturbed: bool = False
    suppressed: frozenset[tuple[Any, ...]] = frozenset()


@dataclass(frozen=True, slots=True)
class DifferencingRisk:
    larger: tuple[str, tuple[Any, ...]]  # (release id, coordinates)
    smaller: tuple[str, tuple[Any, ...]]
    difference: int  # the isolated group's true size: for the reviewer, never for the requester
    action: Action


def release_of(
    release_id: str, request: TableRequest, n: Mapping[tuple[Any, ...], int], shown: Sequence[ShownCell]
) -> Release:
    """The ledger entry of a protected table."""
    return Release(
        release_id,
        request.model_dump(mode="json"),
        dict(n),
        perturbed=any(c.status == "perturbed" for c in shown),
        suppressed=frozenset(c.coordinates for c in shown if c.status == "suppressed"),
    )


def differencing_risks(new: Release, earlier: Iterable[Release], threshold: int) -> list[DifferencingRisk]:
    """Every pair of nested published cells, one in ``new`` and one in an earlier release, whose
    difference is a group of 1..threshold-1."""
    risks: list[DifferencingRisk] = []
    new_request = TableRequest.model_validate(new.request)
    for old in earlier:
        if old.id == new.id:
            continue
        old_request = TableRequest.model_validate(old.request)
        if population_contains(new_request, old_request):
            risks += _pairs(new, new_request, old, old_request, threshold)
        if population_contains(old_request, new_request):
            risks += _pairs(old, old_request, new, new_request, threshold)
    unique = {(r.larger, r.smaller): r for r in risks}
    return [unique[k] for k in sorted(unique, key=repr)]


def population_contains(a: TableRequest, b: TableRequest) -> bool:
    """Whether every unit counted by ``b`` is counted by ``a`` (decided from the requests alone)."""
    if a.dataset != b.dataset or _unit(a) != _unit(b):
        return False
    if a.periods and (not b.periods or not set(b.periods) <= set(a.periods)):
        return False
    if not _links(a) <= _links(b):
        return False
    return all(any(_implies(fb, fa) for fb in b.filters if fb.column == fa.column) for fa in a.filters)


def _unit(request: TableRequest) -> str:
    return "households" if request.measure.kind == "households" else "persons"


def _links(request: TableRequest) -> set[str]:
    return {json.dumps(link.model_dump(mode="json"), sort_keys=True) for link in request.links}


def _implies(b: Filter, a: Filter) -> bool:
    """Whether every row kept by filter ``b`` is kept by filter ``a`` (same column)."""
    if a.op == "in":
        return b.op == "in" and set(b.values) <= set(a.values)
    if a.op == "not_in":
        if b.op == "in":
            return not set(b.values) & set(a.values)
        return b.op == "not_in" and set(b.values) >= set(a.values)
    low, high = _range(a)
    if b.op == "between":
        b_low, b_high = _range(b)
        return low <= b_low and b_high <= high
    return b.op == "in" and all(isinstance(v, int) and low <= v <= high for v in b.values)


def _range(f: Filter) -> Interval:
    return (-math.inf if f.low is None else f.low, math.inf if f.high is None else f.high)


# --- cells ------------------------------------------------------------------------------------------------


def _pairs(
    big: Release, big_request: TableRequest, small: Release, small_request: TableRequest, threshold: int
) -> list[DifferencingRisk]:
    strict_population = not population_contains(small_request, big_request)
    big_dims = [(_key(d), d) for d in big_request.dimensions]
    small_dims = {_key(d): (i, d) for i, d in enumerate(small_request.dimensions)}
    big_n = {tuple(_norm(v) for v in c): (c, n) for c, n in big.n.items()}
    action: Action = "review" if big.perturbed or small.perturbed else "refuse"
    risks = []
    for coords, n_small in small.n.items():
        if coords in small.suppressed:
            continue
        options = [_containing(key, d, coords, small_dims) for key, d in big_dims]
        for choice in itertools.product(*options):
            strict = (
                strict_population or any(s for _, s in choice) or _drops_codes(coords, small_dims, big_dims)
            )
            found = big_n.get(tuple(code for code, _ in choice))
            if not strict or found is None or found[0] in big.suppressed:
                continue
            difference = found[1] - n_small
            if 0 < difference < threshold:
                risks.append(DifferencingRisk((big.id, found[0]), (small.id, coords), difference, action))
    return risks


def _containing(
    key: str, dim: Dimension, coords: tuple[Any, ...], small_dims: Mapping[str, tuple[int, Dimension]]
) -> list[tuple[Any, bool]]:
    """The codes of ``dim`` whose group contains the small cell's, each with whether strictly."""
    if key not in small_dims or coords[small_dims[key][0]] == TOTAL:
        return [(TOTAL, False)]
    index, small_dim = small_dims[key]
    code = _norm(coords[index])
    options: list[tuple[Any, bool]] = [(TOTAL, True)]
    inner = _interval(small_dim, code)
    if inner is None:
        return [*options, (code, False)]
    candidate = _code_of(dim, inner[0])
    outer = _interval(dim, candidate)
    if outer is not None and outer[0] <= inner[0] and inner[1] <= outer[1]:
        options.append((candidate, outer != inner))
    return options


def _drops_codes(
    coords: tuple[Any, ...], small_dims: Mapping[str, tuple[int, Dimension]], big_dims: list[tuple[str, Any]]
) -> bool:
    """A code in a dimension the larger table does not have at all: its cell is that code's total."""
    big_keys = {key for key, _ in big_dims}
    return any(coords[i] != TOTAL for key, (i, _) in small_dims.items() if key not in big_keys)


def _key(dim: Dimension) -> str:
    return f"{dim.kind}:{getattr(dim, 'column', '')}"


def _interval(dim: Dimension, code: Any) -> Interval | None:
    """The range of a banded dimension's code (age band, household size), else None (an exact code)."""
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    if isinstance(dim, AgeBand):
        last = (dim.top // dim.width) * dim.width  # compile: least(age, top) // width * width
        return (code, math.inf) if code >= last else (code, code + dim.width - 1)
    if isinstance(dim, HouseholdSize):
        return (code, math.inf) if code >= dim.top else (code, code)
    return None


def _code_of(dim: Dimension, value: float) -> Any:
    if isinstance(dim, AgeBand):
        return int(min(value, dim.top) // dim.width * dim.width)
    if isinstance(dim, HouseholdSize):
        return int(min(value, dim.top))
    return value


def _norm(value: Any) -> Any:
    """Coordinates from the database (dates) and from the ledger's JSON (strings) compare alike."""
    return value.isoformat() if isinstance(value, dt.date) else value
