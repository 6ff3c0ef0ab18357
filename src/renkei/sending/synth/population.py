"""People by ward, sex and age as published, and the households they live in.

Ages come first (exact per-ward, per-sex, 5-year-band counts scaled to the requested size); households are
then built around them, so calibration is exact by construction and the household structure has to fit the
ages it is given. Household building is rank matching, all vectorized:

1. Children (everyone under 18, and some unmarried adults living with their parents) are sorted by a noisy age
   and cut into sibling groups of 1–4.
2. Each group gets a mother and/or a father whose age is the eldest child's plus a plausible gap: demand and
   supply are histogrammed by single year of age, and shortfalls move only to older ages, so a parent is never
   younger than planned.
3. A few families get a grandparent (三世代), sometimes as the 世帯主.
4. The remaining adults form couples and singles; the number of couples is solved so that the ward ends up
   with its published number of households.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth.calibration import (
    BAND_STARTS,
    CITY_POPULATION,
    OLDEST_AGE,
    WARD_BANDS_FEMALE,
    WARD_BANDS_MALE,
    WARDS,
)
from renkei.sending.synth.rng import Rng, choice_from, top_k
from renkei.sending.synth.vec import (
    Array,
    arange,
    clip,
    const,
    counts_by,
    days,
    flat,
    floor_int,
    inverse_permutation,
    rank_within_sorted,
    repeat,
    take,
    where,
)


class Rel(IntEnum):
    """続柄 codes; :data:`RELATIONS` gives the text as 住民票 prints it."""

    HEAD = 0
    WIFE = 1
    HUSBAND = 2
    CHILD = 3
    FATHER = 4
    MOTHER = 5
    GRANDCHILD = 6
    CHILD_WIFE = 7
    CHILD_HUSBAND = 8
    LODGER = 9
    WIFE_UNREGISTERED = 10
    HUSBAND_UNREGISTERED = 11
    YOUNGER_BROTHER = 12
    YOUNGER_SISTER = 13


RELATIONS: Final = (
    "世帯主", "妻", "夫", "子", "父", "母", "孫", "子の妻", "子の夫", "同居人", "妻（未届）", "夫（未届）", "弟", "妹",
)  # fmt: skip

AGES: Final = OLDEST_AGE + 1
T = TypeVar("T")

# ESTIMATE: share of adults still living with their parents (as children of the household), by age.
_STAY_BY_AGE: Final = (
    (18, 0.80),
    (20, 0.50),
    (25, 0.28),
    (30, 0.16),
    (35, 0.10),
    (40, 0.05),
    (45, 0.03),
    (50, 0.0),
)
# ESTIMATE: children per family (sibling group) 1, 2, 3, 4.
SIBLING_WEIGHTS: Final = (0.44, 0.41, 0.12, 0.03)
# ESTIMATE: parents of a family with minor children: both, mother only, father only (ひとり親 ≈ 13 %).
PARENTS_OF_MINORS: Final = (0.87, 0.11, 0.02)
PARENTS_OF_ADULTS: Final = (0.64, 0.28, 0.08)  # older parents: more widowed
THREE_GENERATION_SHARE: Final = 0.06  # ESTIMATE: families with minors that include a grandparent
GRANDPARENT_IS_HEAD_SHARE: Final = 0.4
FATHER_IS_HEAD_SHARE: Final = 0.92
HUSBAND_IS_HEAD_SHARE: Final = 0.88
LODGER_SHARE: Final = 0.025  # of two-adult households: the second adult is a 同居人
UNREGISTERED_SHARE: Final = 0.01  # … or an unregistered partner (妻（未届）)


def by_age(steps: Sequence[tuple[int, T]], below: T) -> list[T]:
    """A table indexed by age 0 … OLDEST_AGE from (first age, value) steps; ``below`` before the first step."""
    table = []
    for age in range(AGES):
        reached = [value for start, value in steps if start <= age]
        table.append(reached[-1] if reached else below)
    return table


def _couple_weights(sex: int) -> list[float]:
    # ESTIMATE: how likely an adult not living with parents lives with a partner, by age (women outlive men).
    male = ((18, 0.03), (23, 0.2), (27, 0.45), (30, 0.65), (35, 0.75), (40, 0.8), (65, 0.85), (85, 0.7))
    female = ((18, 0.05), (23, 0.3), (27, 0.55), (30, 0.7), (35, 0.75), (65, 0.7), (75, 0.55), (80, 0.4),
              (85, 0.2), (90, 0.08))  # fmt: skip
    return by_age(male if sex == 0 else female, 0.0)


STAY_WITH_PARENTS: Final = by_age(_STAY_BY_AGE, 1.0)
COUPLE_WEIGHT: Final = (_couple_weights(0), _couple_weights(1))


# --- people ------------------------------------------------------------------------------------------------


def scaled_cells(residents: int) -> list[tuple[int, int, int, int]]:
    """(ward, sex, band, count) cells scaled to ``residents``; largest remainders keep the total exact."""
    scale = residents / CITY_POPULATION
    cells = []
    for w, ward in enumerate(WARDS):
        for sex, table in enumerate((WARD_BANDS_MALE, WARD_BANDS_FEMALE)):
            for band, published in enumerate(table[ward]):
                cells.append((w, sex, band, published * scale))
    floors = [int(c[3]) for c in cells]
    short = residents - sum(floors)
    by_remainder = sorted(range(len(cells)), key=lambda i: (-(cells[i][3] - floors[i]), i))
    for i in by_remainder[:short]:
        floors[i] += 1
    return [(w, s, b, floors[i]) for i, (w, s, b, _) in enumerate(cells)]


def draw_people(rng: Rng, residents: int, as_of: dt.date) -> pa.Table:
    """ward, sex, age and birth (days since 1970) of every resident, in cell order."""
    cells = scaled_cells(residents)
    counts = pa.array([c[3] for c in cells], pa.int64())
    ward = repeat(pa.array([c[0] for c in cells], pa.int8()), counts)
    sex = repeat(pa.array([c[1] for c in cells], pa.int8()), counts)
    band = repeat(pa.array([c[2] for c in cells], pa.int64()), counts)
    n = len(band)
    start = take(BAND_STARTS, band)
    within = floor_int(pc.multiply(rng.uniform("age", n), 5))
    # 100+ is open: ages 100 … 109, each about half as common as the one before.
    centenarian = pc.min_element_wise(
        floor_int(pc.divide(pc.ln(pc.subtract(1.0, rng.uniform("age100", n))), -0.7)), 9
    )
    age = pc.add(start, where(pc.equal(start, BAND_STARTS[-1]), centenarian, within))
    return pa.table({"ward": ward, "sex": sex, "age": age, "birth": birth_days(rng, "birth", age, as_of)})


def years_before(date: dt.date, years: int) -> dt.date:
    try:
        return date.replace(year=date.year - years)
    except ValueError:  # 2月29日 → 2月28日
        return date.replace(year=date.year - years, day=28)


def birth_days(rng: Rng, name: str, ages: Array, as_of: dt.date) -> Array:
    """A birth date (days since 1970) for each age, uniform over the year of birthdays giving that age."""
    latest = [days(years_before(as_of, a)) for a in range(AGES + 1)]
    earliest = [latest[a + 1] + 1 for a in range(AGES)]
    low = take(earliest, ages)
    span = pc.subtract(pc.add(take(latest[:AGES], ages), 1), low)
    return pc.cast(pc.add(low, floor_int(pc.multiply(rng.uniform(name, len(ages)), span))), pa.int32())


def ages_at(birth: Array, as_of: dt.date) -> Array:
    """Age in completed years at the start of ``as_of`` (domain.md §4.2 ordinary_age)."""
    date32 = pc.cast(birth, pa.date32())
    before_birthday = pc.or_(
        pc.greater(pc.month(date32), as_of.month),
        pc.and_(pc.equal(pc.month(date32), as_of.month), pc.greater(pc.day(date32), as_of.day)),
    )
    return pc.subtract(pc.subtract(as_of.year, pc.year(date32)), pc.cast(before_birthday, pa.int64()))


def school_ages_at(birth: Array, as_of: dt.date) -> Array:
    """学年年齢: age on April 1 of the school year containing ``as_of`` (domain.md §4.2)."""
    school_year = as_of.year if as_of.month >= 4 else as_of.year - 1
    return ages_at(birth, dt.date(school_year, 4, 1))


# --- households ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseholdPlan:
    """Per person (aligned with the input): local household id, 続柄 code, guardian (local index or -1)."""

    household: Array
    relation: Array
    guardian: Array
    count: int


def match_by_age(
    rng: Rng, name: str, desired: Array, candidates: Array, cand_age: Array, cap: float
) -> Array:
    """For each desired age, a distinct candidate at least that old (usually exactly), or -1.

    Per single year of age at most ``cap`` of the candidates are used; unmet demand moves to the next older
    age, which keeps every match at or above the desired age.
    """
    desired = clip(desired, 0, OLDEST_AGE)
    demand = counts_by(desired, AGES)
    supply = counts_by(cand_age, AGES)
    quota, carry = [], 0
    for want, have in zip(demand, supply, strict=True):
        taken = min(want + carry, int(have * cap))
        carry = want + carry - taken
        quota.append(taken)
    order = pc.sort_indices(
        pa.table({"a": cand_age, "r": rng.uniform(name + ".c", len(cand_age))}),
        sort_keys=[("a", "ascending"), ("r", "ascending")],
    )
    sorted_age = take(cand_age, order)
    chosen = pc.less(rank_within_sorted(sorted_age), take(quota, sorted_age))
    selected = pc.filter(take(candidates, order), chosen)
    wanted = pc.sort_indices(
        pa.table({"d": desired, "r": rng.uniform(name + ".d", len(desired))}),
        sort_keys=[("d", "ascending"), ("r", "ascending")],
    )
    padded = pa.concat_arrays([selected, const(-1, len(desired) - len(selected), pa.int64())])
    return take(padded, inverse_permutation(wanted))


def form_households(rng: Rng, sex: Array, age: Array, target_households: int) -> HouseholdPlan:
    """Group people (one ward) into households; see the module docstring for the method."""
    n = len(age)
    everyone = arange(n)
    is_kid = rng.bernoulli("stay", take(STAY_WITH_PARENTS, age), n)
    families, n_families = _families(rng, everyone, sex, age, is_kid)
    rest = pc.filter(everyone, pc.invert(pc.is_in(everyone, value_set=families.person)))
    couples = _couples(rng, rest, sex, age, target_households - n_families)
    paired = pc.is_in(rest, value_set=pa.concat_arrays([couples.head, couples.partner]))
    singles = pc.filter(rest, pc.invert(paired))

    n_couples = len(couples.head)
    couple_ids = pc.add(arange(n_couples), n_families)
    rows = _Rows.concat(
        [
            families,
            _Rows.of(couples.head, couple_ids, const(int(Rel.HEAD), n_couples, pa.int8())),
            _Rows.of(couples.partner, couple_ids, couples.partner_relation),
            _Rows.of(
                singles,
                pc.add(arange(len(singles)), n_families + n_couples),
                const(int(Rel.HEAD), len(singles), pa.int8()),
            ),
        ]
    )
    order = pc.sort_indices(rows.person)
    return HouseholdPlan(
        household=take(rows.household, order),
        relation=take(rows.relation, order),
        guardian=take(rows.guardian, order),
        count=n_families + n_couples + len(singles),
    )


@dataclass(frozen=True)
class _Rows:
    """Household membership rows under construction: person, household id, 続柄 code, guardian (or -1)."""

    person: Array
    household: Array
    relation: Array
    guardian: Array

    @staticmethod
    def of(person: Array, household: Array, relation: Array, guardian: Array | None = None) -> _Rows:
        if guardian is None:
            guardian = const(-1, len(person), pa.int64())
        return _Rows(person, household, pc.cast(relation, pa.int8()), guardian)

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        def cat(name: str, type_: Any) -> Array:
            return pa.concat_arrays([flat(pc.cast(getattr(p, name), type_)) for p in parts])

        return _Rows(
            cat("person", pa.int64()),
            cat("household", pa.int64()),
            cat("relation", pa.int8()),
            cat("guardian", pa.int64()),
        )


@dataclass(frozen=True)
class _Siblings:
    """Children cut into sibling groups: ``kids`` sorted by group, and per group its ages and eldest child."""

    kids: Array
    group: Array  # per kid
    eldest: Array  # per group: age of the eldest
    youngest: Array
    eldest_kid: Array  # per group: person index of the eldest

    @property
    def count(self) -> int:
        return len(self.eldest)


@dataclass(frozen=True)
class _Parents:
    """Per sibling group: matched mother and father (person index or -1), and who heads the family."""

    mother: Array
    father: Array
    primary: Array  # the parent who heads the household (or -1 if nobody could be matched)
    other: Array  # the other parent, or -1


def _families(rng: Rng, everyone: Array, sex: Array, age: Array, is_kid: Array) -> tuple[_Rows, int]:
    adults = pc.invert(is_kid)
    siblings = _sibling_groups(rng, pc.filter(everyone, is_kid), age)
    parents = _parents(rng, siblings, everyone, sex, age, adults)
    grandparent, grand_heads = _grandparents(rng, siblings, parents, everyone, age, adults)
    return _family_rows(siblings, parents, grandparent, grand_heads, sex), siblings.count


def _sibling_groups(rng: Rng, kids: Array, age: Array) -> _Siblings:
    """Sort children by a noisy age and cut them into groups of 1–4 (close in age, like siblings)."""
    noisy = pc.add(pc.cast(take(age, kids), pa.float64()), pc.multiply(rng.normal("sibling", len(kids)), 2.5))
    kids = take(kids, pc.sort_indices(noisy))
    kid_age = take(age, kids)
    sizes = pc.add(rng.choice("siblings", len(kids), SIBLING_WEIGHTS), 1)
    group = pc.cast(pc.search_sorted(pc.cumulative_sum(sizes), arange(len(kids)), side="right"), pa.int64())
    count = group[-1].as_py() + 1 if len(kids) else 0
    by_age = pc.sort_indices(
        pa.table({"g": group, "a": kid_age}), sort_keys=[("g", "ascending"), ("a", "descending")]
    )
    first = pc.search_sorted(take(group, by_age), arange(count), side="left")
    stats = (
        pa.table({"g": group, "a": kid_age})
        .group_by("g", use_threads=False)
        .aggregate([("a", "max"), ("a", "min")])
    )
    return _Siblings(
        kids=kids,
        group=group,
        eldest=flat(stats["a_max"]),
        youngest=flat(stats["a_min"]),
        eldest_kid=take(take(kids, by_age), first),
    )


def _parents(
    rng: Rng, siblings: _Siblings, everyone: Array, sex: Array, age: Array, adults: Array
) -> _Parents:
    """A mother aged eldest + 20…42 (and below youngest + 45), a father close to her age, or a single parent."""
    count, eldest = siblings.count, siblings.eldest
    u_kind = rng.uniform("parents", count)
    kind = where(
        pc.less(eldest, 18), choice_from(u_kind, PARENTS_OF_MINORS), choice_from(u_kind, PARENTS_OF_ADULTS)
    )
    women = pc.filter(everyone, pc.and_(adults, pc.equal(sex, 1)))
    men = pc.filter(everyone, pc.and_(adults, pc.equal(sex, 0)))

    gap = floor_int(rng.triangular("mother.gap", count, 20, 30, 42))
    oldest_allowed = pc.max_element_wise(pc.add(siblings.youngest, 45), pc.add(eldest, 18))
    mother_wish = clip(pc.add(eldest, gap), pc.add(eldest, 18), oldest_allowed)
    mother = _match_where(rng, "mother", pc.not_equal(kind, 2), mother_wish, women, age, cap=0.9)
    mother_age = where(pc.greater_equal(mother, 0), take(age, pc.max_element_wise(mother, 0)), mother_wish)
    spouse_gap = floor_int(rng.triangular("spouse.gap", count, -3, 2, 9))
    father_wish = where(
        pc.equal(kind, 2),
        pc.add(eldest, floor_int(rng.triangular("father.gap", count, 22, 32, 45))),
        pc.max_element_wise(pc.add(mother_age, spouse_gap), pc.add(eldest, 18)),
    )
    father = _match_where(rng, "father", pc.not_equal(kind, 1), father_wish, men, age, cap=0.9)

    has_father, has_mother = pc.greater_equal(father, 0), pc.greater_equal(mother, 0)
    father_heads = pc.and_(
        has_father, pc.or_(pc.invert(has_mother), rng.bernoulli("fhead", FATHER_IS_HEAD_SHARE, count))
    )
    return _Parents(
        mother=mother,
        father=father,
        primary=where(father_heads, father, mother),
        other=where(father_heads, mother, where(has_father, father, -1)),
    )


def _grandparents(
    rng: Rng, siblings: _Siblings, parents: _Parents, everyone: Array, age: Array, adults: Array
) -> tuple[Array, Array]:
    """三世代: some families with minors get a grandparent aged 50+ (sometimes as 世帯主); -1 for the rest."""
    count = siblings.count
    taken = pa.concat_arrays([pc.filter(parents.mother, pc.greater_equal(parents.mother, 0)),
                              pc.filter(parents.father, pc.greater_equal(parents.father, 0))])  # fmt: skip
    free = pc.filter(everyone, pc.and_(adults, pc.invert(pc.is_in(everyone, value_set=taken))))
    free = pc.filter(free, pc.greater_equal(take(age, free), 50))
    wanted = pc.and_(
        pc.and_(pc.less(siblings.eldest, 18), pc.greater_equal(parents.primary, 0)),
        rng.bernoulli("3gen", THREE_GENERATION_SHARE, count),
    )
    gap = floor_int(rng.triangular("grand.gap", count, 24, 29, 36))
    wish = pc.add(take(age, pc.max_element_wise(parents.primary, 0)), gap)
    grandparent = _match_where(rng, "grand", wanted, wish, free, age, cap=0.5)
    heads = pc.and_(
        pc.greater_equal(grandparent, 0), rng.bernoulli("ghead", GRANDPARENT_IS_HEAD_SHARE, count)
    )
    return grandparent, heads


def _family_rows(
    siblings: _Siblings, parents: _Parents, grandparent: Array, grand_heads: Array, sex: Array
) -> _Rows:
    """続柄 within each family. With a grandparent as 世帯主 the parents are 子 / 子の妻 and the children 孫.
    A group nobody could parent is headed by its eldest, the others being 弟 / 妹."""
    count = siblings.count
    group_ids = arange(count)
    orphaned = pc.less(parents.primary, 0)
    other_male = pc.equal(take(sex, pc.max_element_wise(parents.other, 0)), 0)
    spouse_of_head = where(other_male, int(Rel.HUSBAND), int(Rel.WIFE))
    spouse_of_child = where(other_male, int(Rel.CHILD_HUSBAND), int(Rel.CHILD_WIFE))
    grand_male = pc.equal(take(sex, pc.max_element_wise(grandparent, 0)), 0)
    parent_of_head = where(grand_male, int(Rel.FATHER), int(Rel.MOTHER))

    def rows(mask: Array, who: Array, relation: Array) -> _Rows:
        return _Rows.of(pc.filter(who, mask), pc.filter(group_ids, mask), pc.filter(relation, mask))

    kids, group = siblings.kids, siblings.group
    is_orphan_head = pc.is_in(kids, value_set=pc.filter(siblings.eldest_kid, orphaned))
    younger = where(pc.equal(take(sex, kids), 0), int(Rel.YOUNGER_BROTHER), int(Rel.YOUNGER_SISTER))
    child = where(take(grand_heads, group), int(Rel.GRANDCHILD), int(Rel.CHILD))
    kid_relation = where(take(orphaned, group), younger, child)
    guardian = where(pc.greater_equal(parents.father, 0), parents.father, parents.mother)
    keep = pc.invert(is_orphan_head)
    children = _Rows.of(
        pc.filter(kids, keep),
        pc.filter(group, keep),
        pc.filter(kid_relation, keep),
        take(guardian, pc.filter(group, keep)),
    )
    return _Rows.concat(
        [
            rows(pc.invert(orphaned), parents.primary, where(grand_heads, int(Rel.CHILD), int(Rel.HEAD))),
            rows(
                pc.greater_equal(parents.other, 0),
                parents.other,
                where(grand_heads, spouse_of_child, spouse_of_head),
            ),
            rows(
                pc.greater_equal(grandparent, 0),
                grandparent,
                where(grand_heads, int(Rel.HEAD), parent_of_head),
            ),
            rows(orphaned, siblings.eldest_kid, const(int(Rel.HEAD), count, pa.int8())),
            children,
        ]
    )


def _match_where(
    rng: Rng, name: str, wanted: Array, wish: Array, candidates: Array, age: Array, cap: float
) -> Array:
    """:func:`match_by_age` for the rows where ``wanted`` is true; -1 elsewhere."""
    rows = pc.filter(arange(len(wanted)), wanted)
    matched = match_by_age(rng, name, pc.filter(wish, wanted), candidates, take(age, candidates), cap)
    # Scatter back: sort (row, match) pairs and the unwanted rows together by row.
    unwanted = pc.filter(arange(len(wanted)), pc.invert(wanted))
    all_rows = pa.concat_arrays([rows, unwanted])
    values = pa.concat_arrays([pc.cast(matched, pa.int64()), const(-1, len(unwanted), pa.int64())])
    return take(values, pc.sort_indices(all_rows))


@dataclass(frozen=True)
class _Couples:
    head: Array
    partner: Array
    partner_relation: Array


def _couples(rng: Rng, adults: Array, sex: Array, age: Array, households_left: int) -> _Couples:
    """Pair adults so that (pairs + singles) = the households still to make."""
    men = pc.filter(adults, pc.equal(take(sex, adults), 0))
    women = pc.filter(adults, pc.equal(take(sex, adults), 1))
    wanted = len(adults) - households_left
    count = max(0, min(wanted, len(men), len(women)))
    men = take(men, top_k(rng.sample_keys("men", take(COUPLE_WEIGHT[0], take(age, men))), count))
    women = take(women, top_k(rng.sample_keys("women", take(COUPLE_WEIGHT[1], take(age, women))), count))

    def by_noisy_age(people: Array, name: str) -> Array:
        noisy = pc.add(
            pc.cast(take(age, people), pa.float64()), pc.multiply(rng.normal(name, len(people)), 2.0)
        )
        return take(people, pc.sort_indices(noisy))

    men, women = by_noisy_age(men, "men.age"), by_noisy_age(women, "women.age")
    husband_heads = rng.bernoulli("hhead", HUSBAND_IS_HEAD_SHARE, count)
    head = where(husband_heads, men, women)
    partner = where(husband_heads, women, men)
    kind = rng.choice(
        "partner", count, (1 - LODGER_SHARE - UNREGISTERED_SHARE, LODGER_SHARE, UNREGISTERED_SHARE)
    )
    registered = where(husband_heads, int(Rel.WIFE), int(Rel.HUSBAND))
    unregistered = where(husband_heads, int(Rel.WIFE_UNREGISTERED), int(Rel.HUSBAND_UNREGISTERED))
    relation = pc.choose(kind, registered, int(Rel.LODGER), unregistered)
    return _Couples(head=head, partner=partner, partner_relation=pc.cast(relation, pa.int8()))
