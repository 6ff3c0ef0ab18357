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
from renkei.sending.synth.city import NAME_GROUP, City, Counters, Reason, ordered, pick_top, pick_until, settle
from renkei.sending.synth.names import draw_given
from renkei.sending.synth.population import AGES, Rel, ages_at, birth_days
from renkei.sending.synth.rng import Rng
from renkei.sending.synth.vec import Array, arange, clip, const, counts_by, days, floor_int, repeat, scatter, take, where

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
ARRIVAL_FOREIGN_SHARE: Final = 0.12


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
    size = pa.array(counts_by(hh, city.households.num_rows), pa.int64())
    heads = pc.indices_nonzero(pc.equal(city.people["rel"], int(Rel.HEAD)))
    head_hh = take(hh, heads)
    head_age = take(ages_at(take(city.people["birth"], heads), to), pc.sort_indices(head_hh))
    return size, head_age


def _mobility(head_age: Array) -> Array:
    weights = [max(w for a, w in MOBILITY_BY_HEAD_AGE if a <= age) for age in range(AGES)]
    return take(weights, clip(head_age, 0, AGES - 1))


def _move_out(city: City, rng: Rng, to: dt.date, sizes: list[int]) -> City:
    """Whole households leave the city (§4: 63 % of ward 転出 cross the city boundary)."""
    rate = {w: OUT_TO_OUTSIDE_SHARE * WARD_OUT_MIGRANTS[w] / WARD_POPULATION[w] for w in WARDS}
    size, head_age = _household_view(city, to)
    leaving = pick_until(
        rng.sample_keys("leave", _mobility(head_age)), city.households["ward"], size, _per_ward(sizes, rate)
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
    moving = pick_until(rng.sample_keys("move", _mobility(head_age)), households["ward"], size, _per_ward(sizes, rate))
    movers = pc.indices_nonzero(moving)
    origin = pc.cast(take(households["ward"], movers), pa.int64())
    inbound = [(1 - IN_FROM_OUTSIDE_SHARE) * WARD_IN_MIGRANTS[w] for w in WARDS]
    tables = [[0.0 if j == i else inbound[j] for j in range(len(WARDS))] for i in range(len(WARDS))]
    p_other_ward = take([between[w] / rate[w] for w in WARDS], origin)
    other_ward = rng.choice_by_group("destination", origin, tables)
    destination = where(pc.less(rng.uniform("leave.ward", len(movers)), p_other_ward), other_ward, origin)

    old_parts = {c: take(households[c], movers) for c in ADDRESS_COLUMNS}
    previous, _ = render(old_parts)
    new = draw_addresses(rng.child("moves"), destination, city.buildings)
    columns = {c: households[c].combine_chunks() for c in households.column_names}
    for c in (*ADDRESS_COLUMNS, *FORM_COLUMNS):
        columns[c] = scatter(columns[c], movers, pc.cast(new[c], columns[c].type))
    columns["ward"] = scatter(columns["ward"], movers, pc.cast(destination, pa.int8()))
    households = pa.table(columns)

    day = rng.integers("move.day", len(movers), start + 1, end + 1)
    mover_of_person = pc.index_in(city.people["hid"], value_set=take(households["hid"], movers))
    moved_people = pc.invert(pc.is_null(mover_of_person))
    idx = pc.fill_null(mover_of_person, 0)
    people = city.people
    people = people.set_column(
        people.schema.get_field_index("reason"), "reason", where(moved_people, pa.scalar(Reason.MOVE_WITHIN, pa.int8()), people["reason"])
    )
    people = people.set_column(
        people.schema.get_field_index("moved"), "moved", where(moved_people, pc.cast(take(day, idx), pa.int32()), people["moved"])
    )
    people = people.set_column(
        people.schema.get_field_index("prev"), "prev", where(moved_people, take(previous, idx), people["prev"])
    )
    return replace(city, households=households, people=people)


def _births(city: City, rng: Rng, to: dt.date, start: int, end: int, sizes: list[int]) -> City:
    people = city.people
    n = people.num_rows
    age = ages_at(people["birth"], to)
    band = clip(pc.multiply(pc.divide(age, 5), 5), 0, 100)
    fertility = take([FERTILITY_BY_BAND.get(b, 0.0) for b in range(0, 101)], band)
    partnered = pc.is_in(
        people["rel"], value_set=pa.array([Rel.WIFE, Rel.CHILD_WIFE, Rel.WIFE_UNREGISTERED], pa.int8())
    )
    weight = pc.multiply(pc.multiply(fertility, where(partnered, PARTNERED_FERTILITY_FACTOR, 1.0)), pc.cast(pc.equal(people["sex"], 1), pa.float64()))
    hh = pc.index_in(people["hid"], value_set=city.households["hid"])
    ward = pc.cast(take(city.households["ward"], hh), pa.int64())
    quotas = [round(WARD_BIRTHS[w] / WARD_POPULATION[w] * sizes[i]) for i, w in enumerate(WARDS)]
    mothers = pc.indices_nonzero(pc.and_(pick_top(rng.sample_keys("mother", weight), ward, quotas), pc.greater(weight, 0.0)))
    count = len(mothers)
    if count == 0:
        return city

    mother_rel = take(people["rel"], mothers)
    grandchild = pc.is_in(mother_rel, value_set=pa.array([Rel.CHILD, Rel.CHILD_WIFE], pa.int8()))
    heads = pc.indices_nonzero(pc.equal(people["rel"], int(Rel.HEAD)))
    head_pid = take(take(people["pid"], heads), pc.index_in(take(people["hid"], mothers), value_set=take(people["hid"], heads)))
    father_is_head = pc.and_(partnered_of(mother_rel), pc.invert(pc.is_null(head_pid)))
    guardian = where(father_is_head, head_pid, take(people["pid"], mothers))

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
            "reason": const(Reason.BIRTH, count, pa.int8()),
            "moved": pc.cast(birth, pa.int32()),
            "prev": pa.nulls(count, pa.string()),
        },
        schema=people.schema,
    )
    counters = replace(counters, pid=counters.pid + count, atena=next_atena)
    del n
    return replace(city, people=pa.concat_tables([people, babies]), counters=counters)


def partnered_of(relations: Array) -> Array:
    return pc.is_in(relations, value_set=pa.array([Rel.WIFE, Rel.WIFE_UNREGISTERED], pa.int8()))


def _move_in(city: City, rng: Rng, to: dt.date, start: int, end: int, sizes: list[int]) -> City:
    """New households from outside the city (§4: 65 % of ward 転入 cross the city boundary)."""
    rate = {w: IN_FROM_OUTSIDE_SHARE * WARD_IN_MIGRANTS[w] / WARD_POPULATION[w] for w in WARDS}
    persons = [round(x) for x in _per_ward(sizes, rate)]
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
    targets = [max(1, round(p / ARRIVAL_PERSONS_PER_HOUSEHOLD)) if p else 0 for p in persons]
    foreign = [ARRIVAL_FOREIGN_SHARE * p for p in persons]
    moved_in = replace(city, as_of=to)
    people, households, counters = settle(rng.child("arrivals"), moved_in, batch, targets, foreign, (start, end))
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


__all__ = ["Counters", "advance"]
