"""One year of city life: deaths, moves out, moves within, births and moves in.

Rates come from §4 of kobe-figures.md (2020 calendar-year flows per ward); who is affected is age-dependent.
People keep their 宛名番号 for as long as they stay; newborns and newcomers get new numbers; the dead and those
who leave disappear from 住基 and from everything derived from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth import ids
from renkei.sending.synth.addresses import ADDRESS_COLUMNS, FORM_COLUMNS, draw_addresses, render
from renkei.sending.synth.calibration import (
    ARRIVAL_FOREIGN_SHARE,
    CITY_DEATHS,
    CITY_POPULATION,
    IN_FROM_OUTSIDE_SHARE,
    INTRA_WARD_MOVE_RATE,
    OUT_TO_OUTSIDE_SHARE,
    WARD_BIRTHS,
    WARD_IN_MIGRANTS,
    WARD_OUT_MIGRANTS,
    WARD_POPULATION,
    WARDS,
)
from renkei.sending.synth.city import (
    NAME_GROUP,
    City,
    Reason,
    ordered,
    pick_top,
    pick_until,
    settle,
)
from renkei.sending.synth.names import draw_given
from renkei.sending.synth.population import AGES, Rel, ages_at, birth_days, by_age
from renkei.sending.synth.rng import Rng
from renkei.sending.synth.vec import (
    Array,
    arange,
    bincount,
    clip,
    const,
    counts_by,
    days,
    flat,
    floor_int,
    repeat,
    scatter,
    take,
    where,
)

# ESTIMATE: Gompertz mortality (doubling about every 7 years), men 55 % above women; rescaled to §4b's 10.6 ‰.
MORTALITY_AT_ZERO: Final = 1.34e-5
MORTALITY_GROWTH: Final = 0.1
INFANT_MORTALITY: Final = 0.0015
MALE_MORTALITY_FACTOR: Final = 1.55
# ESTIMATE: births per woman-year by 5-year age band from 15 (Japan, 2020 shape); partnered women weigh more.
FERTILITY_BY_BAND: Final = {15: 0.002, 20: 0.018, 25: 0.06, 30: 0.09, 35: 0.055, 40: 0.012, 45: 0.0004}
PARTNERED_FERTILITY_FACTOR: Final = 5.0
# ESTIMATE: how readily a household moves, by the head's age (young adults move most).
MOBILITY_BY_HEAD_AGE: Final = ((0, 3.5), (25, 3.0), (35, 1.6), (45, 0.6), (65, 0.35), (80, 0.5))
# ESTIMATE: age of people moving into the city (5-year bands 0-4 … 80-84, 85+), young adults first.
ARRIVAL_AGE_WEIGHTS: Final = (
    6.0, 3.5, 2.5, 6.0, 22.0, 19.0, 12.0, 8.0, 5.5, 4.5, 3.0, 2.0, 1.7, 1.3, 1.0, 0.8, 0.6, 0.6,
)  # fmt: skip
ARRIVAL_PERSONS_PER_HOUSEHOLD: Final = 1.6


def advance(city: City, rng: Rng, to: dt.date) -> City:
    """The city one step (normally a year) later, on ``to``."""
    start, end = days(city.as_of), days(to)
    ward_sizes = _ward_sizes(city)
    city = _tidy(_deaths(city, rng, to))
    city = _move_out(city, rng, to, ward_sizes)
    city = _move_within(city, rng, to, start, end, ward_sizes)
    city = _births(city, rng, to, start, end, ward_sizes)
    city = _move_in(city, rng, to, start, end, ward_sizes)
    return ordered(replace(_tidy(city), as_of=to))


def _ward_sizes(city: City) -> list[int]:
    ward = take(city.households["ward"], pc.index_in(city.people["hid"], value_set=city.households["hid"]))
    return counts_by(ward, len(WARDS))


def _per_ward(sizes: list[int], rate_of: dict[str, float]) -> list[float]:
    return [rate_of[w] * sizes[i] for i, w in enumerate(WARDS)]


def _household_quota(persons: list[float]) -> list[float]:
    """A person quota for picking whole households: households are taken while they fit, which stops short by
    about half a household on average, so half an average household (one person) is added back."""
    return [p + 1.0 if p > 0 else 0.0 for p in persons]


def _rounded(rng: Rng, name: str, values: list[float]) -> list[int]:
    """Stochastic rounding (2.3 → 2 or 3, 3 with probability 0.3): unbiased even for a tiny city."""
    u = rng.uniform(name, len(values)).to_pylist()
    return [int(v) + (1 if r < v - int(v) else 0) for v, r in zip(values, u, strict=True)]


def _deaths(city: City, rng: Rng, to: dt.date) -> City:
    people = city.people
    age = pc.cast(ages_at(people["birth"], to), pa.float64())
    hazard = pc.multiply(MORTALITY_AT_ZERO, pc.exp(pc.multiply(age, MORTALITY_GROWTH)))
    hazard = pc.add(hazard, where(pc.equal(age, 0.0), INFANT_MORTALITY, 0.0))
    hazard = pc.multiply(hazard, where(pc.equal(people["sex"], 0), MALE_MORTALITY_FACTOR, 1.0))
    expected = CITY_DEATHS / CITY_POPULATION * people.num_rows
    hazard = pc.min_element_wise(pc.multiply(hazard, expected / pc.sum(hazard).as_py()), 0.9)
    survives = pc.greater_equal(rng.uniform("death", people.num_rows), hazard)
    return replace(city, people=people.filter(survives))


def _household_view(city: City, to: dt.date) -> tuple[Array, Array]:
    """Per household row: size and the 世帯主's age."""
    hh = pc.index_in(city.people["hid"], value_set=city.households["hid"])
    size = bincount(hh, city.households.num_rows)
    heads = pc.indices_nonzero(pc.equal(city.people["rel"], int(Rel.HEAD)))
    head_hh = take(hh, heads)
    head_age = take(ages_at(take(city.people["birth"], heads), to), pc.sort_indices(head_hh))
    return size, head_age


def _mobility(head_age: Array) -> Array:
    return take(by_age(MOBILITY_BY_HEAD_AGE, 1.0), clip(head_age, 0, AGES - 1))


def _move_out(city: City, rng: Rng, to: dt.date, sizes: list[int]) -> City:
    """Whole households leave the city (§4: 63 % of ward 転出 cross the city boundary)."""
    rate = {w: OUT_TO_OUTSIDE_SHARE * WARD_OUT_MIGRANTS[w] / WARD_POPULATION[w] for w in WARDS}
    size, head_age = _household_view(city, to)
    leaving = pick_until(
        rng.sample_keys("leave", _mobility(head_age)),
        city.households["ward"],
        size,
        _household_quota(_per_ward(sizes, rate)),
    )
    staying = city.households.filter(pc.invert(leaving))
    people = city.people.filter(pc.is_in(city.people["hid"], value_set=staying["hid"]))
    return replace(city, households=staying, people=people)


def _move_within(city: City, rng: Rng, to: dt.date, start: int, end: int, sizes: list[int]) -> City:
    """Households move to another ward (the rest of ward 転出) or within their ward (転居)."""
    between = {w: (1 - OUT_TO_OUTSIDE_SHARE) * WARD_OUT_MIGRANTS[w] / WARD_POPULATION[w] for w in WARDS}
    rate = {w: between[w] + INTRA_WARD_MOVE_RATE for w in WARDS}
    households = city.households
    size, head_age = _household_view(city, to)
    keys = rng.sample_keys("move", _mobility(head_age))
    quotas = _household_quota(_per_ward(sizes, rate))
    movers = pc.indices_nonzero(pick_until(keys, households["ward"], size, quotas))
    if len(movers) == 0:
        return city
    origin = pc.cast(take(households["ward"], movers), pa.int64())
    # Another ward in proportion to the wards' 転入 from inside the city, or the same ward.
    inbound = [(1 - IN_FROM_OUTSIDE_SHARE) * WARD_IN_MIGRANTS[w] for w in WARDS]
    tables = [[0.0 if j == i else inbound[j] for j in range(len(WARDS))] for i in range(len(WARDS))]
    other_ward = rng.choice_by_group("destination", origin, tables)
    leaves_ward = pc.less(
        rng.uniform("leave.ward", len(movers)), take([between[w] / rate[w] for w in WARDS], origin)
    )
    destination = where(leaves_ward, other_ward, origin)

    previous, _ = render({c: take(households[c], movers) for c in ADDRESS_COLUMNS})
    new = draw_addresses(rng.child("moves"), destination, city.buildings)
    columns = {c: flat(households[c]) for c in households.column_names}
    for c in (*ADDRESS_COLUMNS, *FORM_COLUMNS):
        columns[c] = scatter(columns[c], movers, pc.cast(new[c], columns[c].type))
    columns["ward"] = scatter(columns["ward"], movers, pc.cast(destination, pa.int8()))
    day = rng.integers("move.day", len(movers), start + 1, end + 1)
    people = _record_move(city.people, take(households["hid"], movers), day, previous)
    return replace(city, households=pa.table(columns), people=people)


def _record_move(people: pa.Table, moved_households: Array, day: Array, previous: Array) -> pa.Table:
    """異動事由 転居, 異動日 and 前住所 for everyone in the moved households (aligned with ``day``, ``previous``)."""
    position = pc.index_in(people["hid"], value_set=moved_households)
    moved = pc.invert(pc.is_null(position))
    position = pc.fill_null(position, 0)
    updates = {
        "reason": where(moved, pa.scalar(int(Reason.MOVE_WITHIN), pa.int8()), people["reason"]),
        "moved": where(moved, pc.cast(take(day, position), pa.int32()), people["moved"]),
        "prev": where(moved, take(previous, position), people["prev"]),
    }
    for name, values in updates.items():
        people = people.set_column(people.schema.get_field_index(name), name, values)
    return people


def _births(city: City, rng: Rng, to: dt.date, start: int, end: int, sizes: list[int]) -> City:
    """Babies in their mother's household, per ward at §4b's births ‰, mothers by age-specific fertility."""
    mothers = _mothers(city, rng, to, sizes)
    count = len(mothers)
    if count == 0:
        return city
    people = city.people
    mother_rel = take(people["rel"], mothers)
    grandchild = pc.is_in(mother_rel, value_set=pa.array([Rel.CHILD, Rel.CHILD_WIFE], pa.int8()))
    # The 世帯主 is the father when the mother is his wife; otherwise the mother receives the allowance.
    heads = pc.indices_nonzero(pc.equal(people["rel"], int(Rel.HEAD)))
    head_of_mother = pc.index_in(take(people["hid"], mothers), value_set=take(people["hid"], heads))
    head_pid = take(take(people["pid"], heads), head_of_mother)
    wife = pc.is_in(mother_rel, value_set=pa.array([Rel.WIFE, Rel.WIFE_UNREGISTERED], pa.int8()))
    guardian = where(pc.and_(wife, pc.invert(pc.is_null(head_pid))), head_pid, take(people["pid"], mothers))

    sex = pc.cast(rng.bernoulli("girl", 0.488, count), pa.int64())
    birth = rng.integers("born", count, start + 1, end + 1)
    nationality = take(people["nat"], mothers)
    birth_year = pc.year(pc.cast(pc.cast(birth, pa.int32()), pa.date32()))
    given = draw_given(rng, "baby.given", take(NAME_GROUP, nationality), sex, birth_year)
    counters = city.counters
    atena, next_atena = ids.allocate(rng, "baby.atena", count, counters.atena)
    babies = pa.table(
        {
            "pid": pc.add(arange(count), counters.pid),
            "atena": atena,
            "hid": take(people["hid"], mothers),
            "sex": pc.cast(sex, pa.int8()),
            "birth": pc.cast(birth, pa.int32()),
            "rel": pc.cast(where(grandchild, int(Rel.GRANDCHILD), int(Rel.CHILD)), pa.int8()),
            "guardian": pc.cast(guardian, pa.int64()),
            "nat": nationality,
            "surname": take(people["surname"], mothers),
            "given": pc.cast(given, pa.int32()),
            "since": pc.cast(birth, pa.int32()),
            "reason": const(int(Reason.BIRTH), count, pa.int8()),
            "moved": pc.cast(birth, pa.int32()),
            "prev": pa.nulls(count, pa.string()),
        },
        schema=people.schema,
    )
    counters = replace(counters, pid=counters.pid + count, atena=next_atena)
    return replace(city, people=pa.concat_tables([people, babies]), counters=counters)


def _mothers(city: City, rng: Rng, to: dt.date, sizes: list[int]) -> Array:
    """Rows of this year's mothers: per ward its births quota, weighted by age and partnership."""
    people = city.people
    age = ages_at(people["birth"], to)
    band = clip(pc.multiply(pc.divide(age, 5), 5), 0, 100)
    fertility = take([FERTILITY_BY_BAND.get(b, 0.0) for b in range(101)], band)
    partnered = pc.is_in(
        people["rel"], value_set=pa.array([Rel.WIFE, Rel.CHILD_WIFE, Rel.WIFE_UNREGISTERED], pa.int8())
    )
    weight = pc.multiply(fertility, where(partnered, PARTNERED_FERTILITY_FACTOR, 1.0))
    weight = where(pc.equal(people["sex"], 1), weight, 0.0)
    ward = take(city.households["ward"], pc.index_in(people["hid"], value_set=city.households["hid"]))
    quotas = _rounded(
        rng, "births", [WARD_BIRTHS[w] / WARD_POPULATION[w] * sizes[i] for i, w in enumerate(WARDS)]
    )
    chosen = pc.and_(pick_top(rng.sample_keys("mother", weight), ward, quotas), pc.greater(weight, 0.0))
    return pc.indices_nonzero(chosen)


def _move_in(city: City, rng: Rng, to: dt.date, start: int, end: int, sizes: list[int]) -> City:
    """New households from outside the city (§4: 65 % of ward 転入 cross the city boundary)."""
    rate = {w: IN_FROM_OUTSIDE_SHARE * WARD_IN_MIGRANTS[w] / WARD_POPULATION[w] for w in WARDS}
    persons = _rounded(rng, "arrivals", _per_ward(sizes, rate))
    total = sum(persons)
    if total == 0:
        return city
    ward = repeat(pa.array(range(len(WARDS)), pa.int8()), pa.array(persons, pa.int64()))
    band = rng.choice("arrival.band", total, ARRIVAL_AGE_WEIGHTS)
    age = pc.add(pc.multiply(band, 5), floor_int(pc.multiply(rng.uniform("arrival.age", total), 5)))
    batch = pa.table(
        {
            "ward": ward,
            "sex": pc.cast(rng.bernoulli("arrival.sex", 0.5, total), pa.int8()),
            "age": age,
            "birth": birth_days(rng, "arrival.birth", age, to),
        }
    )
    household_counts = _rounded(
        rng, "arrival.households", [p / ARRIVAL_PERSONS_PER_HOUSEHOLD for p in persons]
    )
    targets = [max(1, h) if p else 0 for p, h in zip(persons, household_counts, strict=True)]
    foreign = [ARRIVAL_FOREIGN_SHARE * p for p in persons]
    moved_in = replace(city, as_of=to)
    people, households, counters = settle(
        rng.child("arrivals"), moved_in, batch, targets, foreign, (start, end)
    )
    return replace(
        city,
        people=pa.concat_tables([city.people, people.cast(city.people.schema)]),
        households=pa.concat_tables([city.households, households.cast(city.households.schema)]),
        counters=counters,
    )


def _tidy(city: City) -> City:
    """Drop empty households; a household whose 世帯主 is gone gets its oldest member as 世帯主."""
    people, households = city.people, city.households
    households = households.filter(pc.is_in(households["hid"], value_set=pc.unique(people["hid"])))
    with_head = pc.unique(pc.filter(people["hid"], pc.equal(people["rel"], int(Rel.HEAD))))
    headless = pc.invert(pc.is_in(people["hid"], value_set=with_head))
    if pc.any(headless).as_py():
        rows = pc.indices_nonzero(headless)
        order = pc.sort_indices(
            pa.table({"h": take(people["hid"], rows), "b": take(people["birth"], rows)}),
            sort_keys=[("h", "ascending"), ("b", "ascending")],
        )
        sorted_rows = take(rows, order)
        sorted_hid = take(people["hid"], sorted_rows)
        firsts = take(sorted_rows, pc.unique(pc.search_sorted(sorted_hid, sorted_hid, side="left")))
        new_head = pc.is_in(arange(people.num_rows), value_set=firsts)
        rel = where(new_head, pa.scalar(int(Rel.HEAD), pa.int8()), people["rel"])
        people = people.set_column(people.schema.get_field_index("rel"), "rel", rel)
    return replace(city, people=people, households=households)
