"""The city's state: who lives where on a date, and how a batch of new people is settled into households.

``City.people`` has one row per resident (serial ``pid``, numbers, household ``hid``, sex, birth, 続柄 …);
``City.households`` one row per household (世帯番号, ward and address parts). Everything else in the extracts
is derived from these two tables on the snapshot date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth import ids
from renkei.sending.synth.addresses import (
    ADDRESS_COLUMNS,
    BuildingTable,
    building_table,
    draw_addresses,
    origin_pool,
    render,
)
from renkei.sending.synth.calibration import (
    CITY_POPULATION,
    NATIONALITY_MIX,
    WARD_FOREIGN,
    WARD_HOUSEHOLDS,
    WARD_POPULATION,
    WARDS,
)
from renkei.sending.synth.names import GROUPS, NAME_GROUP_OF_NATIONALITY, draw_given, draw_surnames
from renkei.sending.synth.population import Rel, ages_at, draw_people, form_households
from renkei.sending.synth.rng import Rng, choice_from
from renkei.sending.synth.vec import (
    Array,
    arange,
    const,
    counts_by,
    flat,
    days,
    floor_int,
    repeat,
    take,
    where,
)

NATIONALITIES: Final = ("日本", *(n for n, _, _ in NATIONALITY_MIX))
NAME_GROUP: Final = tuple(GROUPS.index(NAME_GROUP_OF_NATIONALITY[n]) for n in NATIONALITIES)


class Reason:
    """異動事由 codes; :data:`REASONS` gives the text."""

    BIRTH = 0
    MOVE_IN = 1
    MOVE_WITHIN = 2
    EX_OFFICIO = 3
    FROM_ABROAD = 4


REASONS: Final = ("出生", "転入", "転居", "職権記載", "国外転入")

# ESTIMATE: the base population's last move. Years since a household settled at its address are exponential
# (mean 12, capped by the head's adult years); 45 % of settled Japanese households came from elsewhere in Kobe.
YEARS_AT_ADDRESS_MEAN: Final = 12.0
MOVED_WITHIN_KOBE_SHARE: Final = 0.45
BORN_IN_KOBE_SHARE: Final = 0.35  # of people whose last move was within Kobe: resident since birth
EX_OFFICIO_SHARE: Final = 0.003  # 職権記載
# Foreign households: 国外転入, 転入 (from elsewhere in Japan), 転居.
FOREIGN_REASON_WEIGHTS: Final = (0.35, 0.40, 0.25)


@dataclass(frozen=True)
class Counters:
    """Next free serials and numbers, so that people and households created later never reuse one."""

    pid: int = 0
    hid: int = 0
    atena: int = ids.ATENA_START
    setai: int = ids.ATENA_START


@dataclass(frozen=True)
class City:
    people: pa.Table
    households: pa.Table
    as_of: dt.date
    counters: Counters
    scale: float
    buildings: BuildingTable
    origins: Array


def build_city(rng: Rng, residents: int, as_of: dt.date) -> City:
    """The base population on ``as_of``, calibrated to the published 住基 tables (scaled to ``residents``)."""
    scale = residents / CITY_POPULATION
    buildings = building_table(rng.child("buildings"), scale)
    origins = origin_pool(rng.child("origins"))
    people = draw_people(rng.child("people"), residents, as_of)
    targets = [round(WARD_HOUSEHOLDS[w] * scale) for w in WARDS]
    foreign = [WARD_FOREIGN[w] * scale for w in WARDS]
    city = City(
        people=pa.table({}),
        households=pa.table({}),
        as_of=as_of,
        counters=Counters(),
        scale=scale,
        buildings=buildings,
        origins=origins,
    )
    people_t, households_t, counters = settle(
        rng.child("base"), city, people, targets, foreign, arrival=None
    )
    return ordered(replace(city, people=people_t, households=households_t, counters=counters))


def ordered(city: City) -> City:
    """People in 世帯番号 order (世帯主 first within a household), the order a 住基 extract lists them in.

    Keeping the state in this order lets every extract take its rows in ascending positions, which is much
    cheaper than permuting a dozen string columns per dataset.
    """
    people = city.people
    setai = take(city.households["setai"], pc.index_in(people["hid"], value_set=city.households["hid"]))
    order = pc.sort_indices(
        pa.table({"s": setai, "r": people["rel"], "b": people["birth"], "p": people["pid"]}),
        sort_keys=[("s", "ascending"), ("r", "ascending"), ("b", "ascending"), ("p", "ascending")],
    )
    return replace(city, people=people.take(order).combine_chunks())


def settle(
    rng: Rng,
    city: City,
    batch: pa.Table,
    household_targets: list[int],
    foreign_persons: list[float],
    arrival: tuple[int, int] | None,
) -> tuple[pa.Table, pa.Table, Counters]:
    """Turn a batch of people (ward, sex, age, birth) into people and household rows with all their attributes.

    ``arrival`` is None for the base population (a past history is invented) or the (start, end] day range in
    which this batch moved in from outside the city.
    """
    n = batch.num_rows
    counters = city.counters
    ward = pc.cast(batch["ward"], pa.int64())
    household, relation, guardian, hh_ward = _households_by_ward(rng, batch, household_targets)
    n_households = len(hh_ward)
    head_age = _head_values(household, relation, pc.cast(batch["age"], pa.int64()), n_households)
    hh_size = pa.array(counts_by(household, n_households), pa.int64())

    nationality = _nationalities(rng, hh_ward, head_age, hh_size, foreign_persons)
    person_nat = take(nationality, household)
    group = take(NAME_GROUP, person_nat)
    surname = take(draw_surnames(rng, "surname", take(NAME_GROUP, nationality)), household)
    own_surname = draw_surnames(rng, "lodger.surname", group)
    surname = where(pc.equal(relation, int(Rel.LODGER)), own_surname, surname)
    birth_year = pc.year(pc.cast(batch["birth"], pa.date32()))
    given = draw_given(rng, "given", group, pc.cast(batch["sex"], pa.int64()), birth_year)

    pid = pc.add(arange(n), counters.pid)
    atena, next_atena = ids.allocate(rng, "atena", n, counters.atena)
    setai, next_setai = ids.allocate(rng, "setai", n_households, counters.setai)
    hid = pc.add(arange(n_households), counters.hid)

    parts = draw_addresses(rng.child("address"), hh_ward, city.buildings)
    end = days(city.as_of)
    if arrival is None:
        moved_hh = _settled_since(rng, end, head_age)
        hh_reason = _base_reasons(rng, nationality)
    else:
        moved_hh = rng.integers("arrived", n_households, arrival[0] + 1, arrival[1] + 1)
        from_abroad = pc.and_(pc.greater(nationality, 0), rng.bernoulli("abroad", 0.6, n_households))
        hh_reason = where(from_abroad, Reason.FROM_ABROAD, Reason.MOVE_IN)
    history = _history(rng, city, batch["birth"], household, moved_hh, hh_reason, hh_ward, person_nat, end)

    people = pa.table(
        {
            "pid": pid,
            "atena": atena,
            "hid": take(hid, household),
            "sex": pc.cast(batch["sex"], pa.int8()),
            "birth": pc.cast(batch["birth"], pa.int32()),
            "rel": pc.cast(relation, pa.int8()),
            "guardian": where(pc.greater_equal(guardian, 0), pc.add(guardian, counters.pid), -1),
            "nat": pc.cast(person_nat, pa.int8()),
            "surname": pc.cast(surname, pa.int32()),
            "given": pc.cast(given, pa.int32()),
            **history,
        }
    )
    households = pa.table({"hid": hid, "setai": setai, "ward": pc.cast(hh_ward, pa.int8()), **parts})
    del ward
    counters = Counters(
        pid=counters.pid + n, hid=counters.hid + n_households, atena=next_atena, setai=next_setai
    )
    return people, households, counters


def _households_by_ward(
    rng: Rng, batch: pa.Table, targets: list[int]
) -> tuple[Array, Array, Array, Array]:
    """Household id, 続柄, guardian (batch index or -1) per person, and the ward of each household."""
    ward = pc.cast(batch["ward"], pa.int64())
    rows, households, relations, guardians, hh_wards = [], [], [], [], []
    offset = 0
    for w, name in enumerate(WARDS):
        members = pc.indices_nonzero(pc.equal(ward, w))
        if len(members) == 0:
            continue
        sub = batch.take(members)
        plan = form_households(
            rng.child(name),
            pc.cast(sub["sex"], pa.int64()).combine_chunks(),
            pc.cast(sub["age"], pa.int64()).combine_chunks(),
            targets[w],
        )
        rows.append(pc.cast(members, pa.int64()))
        households.append(pc.add(plan.household, offset))
        relations.append(plan.relation)
        guardians.append(where(pc.greater_equal(plan.guardian, 0), take(members, pc.max_element_wise(plan.guardian, 0)), -1))
        hh_wards.append(const(w, plan.count, pa.int64()))
        offset += plan.count
    order = pc.sort_indices(pa.concat_arrays(rows))
    return (
        take(pa.concat_arrays(households), order),
        take(pa.concat_arrays(relations), order),
        pc.cast(take(pa.concat_arrays([pc.cast(g, pa.int64()) for g in guardians]), order), pa.int64()),
        pa.concat_arrays(hh_wards),
    )


def _head_values(household: Array, relation: Array, values: Array, n_households: int) -> Array:
    """``values`` of each household's 世帯主, aligned with household ids 0 … n-1."""
    heads = pc.indices_nonzero(pc.equal(relation, int(Rel.HEAD)))
    head_household = take(household, heads)
    order = pc.sort_indices(head_household)
    assert len(heads) == n_households, "every household has exactly one 世帯主"
    return take(take(values, heads), order)


def _nationalities(
    rng: Rng, hh_ward: Array, head_age: Array, hh_size: Array, foreign_persons: list[float]
) -> Array:
    """Nationality index per household: foreign households up to each ward's foreign-resident count."""
    n = len(hh_ward)
    # Foreign residents are young and often live alone (students, 技能実習): weight those households up.
    weight = pc.multiply(
        where(pc.less(head_age, 40), 3.0, where(pc.less(head_age, 60), 1.5, 1.0)),
        where(pc.equal(hh_size, 1), 1.5, 1.0),
    )
    chosen = pick_until(rng.sample_keys("foreign", weight), hh_ward, hh_size, foreign_persons)
    older = pc.cast(pc.greater_equal(head_age, 45), pa.int64())
    tables = [[w for _, w, _ in NATIONALITY_MIX], [w for _, _, w in NATIONALITY_MIX]]
    foreign_nat = pc.add(rng.choice_by_group("nationality", older, tables), 1)
    return where(chosen, foreign_nat, const(0, n, pa.int64()))


def pick_until(keys: Array, groups: Array, sizes: Array, quotas: list[float]) -> Array:
    """Per group, take rows by descending key while their cumulative size stays within the group's quota."""
    groups, keys, sizes = flat(groups), flat(keys), pc.cast(flat(sizes), pa.int64())
    order = pc.sort_indices(pa.table({"g": groups, "k": keys}), sort_keys=[("g", "ascending"), ("k", "descending")])
    sorted_groups = pc.cast(take(groups, order), pa.int64())
    sorted_sizes = take(sizes, order)
    cumulative = pc.cumulative_sum(sorted_sizes)
    before_group = pc.subtract(cumulative, sorted_sizes)
    group_start = pc.search_sorted(sorted_groups, arange(len(quotas)), side="left")
    start_of_row = take(
        pa.concat_arrays([before_group, pa.array([cumulative[-1].as_py() if len(cumulative) else 0], pa.int64())]),
        take(group_start, sorted_groups),
    )
    within = pc.subtract(cumulative, start_of_row)
    chosen_sorted = pc.less_equal(pc.cast(within, pa.float64()), take(quotas, sorted_groups))
    return take(chosen_sorted, pc.sort_indices(order))


def pick_top(keys: Array, groups: Array, quotas: list[int]) -> Array:
    """Per group, the ``quotas[g]`` rows with the largest keys (a boolean mask)."""
    return pick_until(keys, groups, const(1, len(keys), pa.int64()), [float(q) for q in quotas])


def _settled_since(rng: Rng, end: int, head_age: Array) -> Array:
    """The day each base household moved to its address (before ``end``)."""
    n = len(head_age)
    years = pc.multiply(pc.ln(pc.subtract(1.0, rng.uniform("settled", n))), -YEARS_AT_ADDRESS_MEAN)
    adult_years = pc.add(pc.cast(pc.max_element_wise(pc.subtract(head_age, 18), 0), pa.float64()), rng.uniform("settled.min", n))
    years = pc.min_element_wise(years, adult_years)
    return pc.subtract(end, pc.add(floor_int(pc.multiply(years, 365.25)), 1))


def _base_reasons(rng: Rng, nationality: Array) -> Array:
    n = len(nationality)
    japanese = where(rng.bernoulli("within", MOVED_WITHIN_KOBE_SHARE, n), Reason.MOVE_WITHIN, Reason.MOVE_IN)
    foreign_codes = pa.array([Reason.FROM_ABROAD, Reason.MOVE_IN, Reason.MOVE_WITHIN], pa.int64())
    foreign = take(foreign_codes, rng.choice("foreign.reason", n, FOREIGN_REASON_WEIGHTS))
    return where(pc.equal(nationality, 0), japanese, foreign)


def _history(
    rng: Rng,
    city: City,
    birth: Array,
    household: Array,
    moved_hh: Array,
    hh_reason: Array,
    hh_ward: Array,
    nationality: Array,
    end: int,
) -> dict[str, Array]:
    """住民となった日, 異動事由, 異動日 and 前住所 per person from the household's last move."""
    n = len(birth)
    birth = pc.cast(birth, pa.int64())
    moved = take(moved_hh, household)
    reason = take(hh_reason, household)
    born_here_after = pc.greater_equal(birth, moved)
    reason = where(born_here_after, Reason.BIRTH, reason)
    moved = where(born_here_after, birth, moved)
    lived_in_kobe = pc.add(birth, floor_int(pc.multiply(rng.uniform("since", n), pc.subtract(moved, birth))))
    earlier = where(rng.bernoulli("born.kobe", BORN_IN_KOBE_SHARE, n), birth, lived_in_kobe)
    since = where(pc.equal(reason, Reason.MOVE_WITHIN), earlier, moved)

    ex_officio = pc.and_(pc.not_equal(reason, Reason.BIRTH), rng.bernoulli("shokken", EX_OFFICIO_SHARE, n))
    reason = where(ex_officio, Reason.EX_OFFICIO, reason)

    # Previous addresses: one per household (members moved together).
    hh_n = len(moved_hh)
    kobe_before = render(draw_addresses(rng.child("previous"), rng.integers("prev.ward", hh_n, 0, len(WARDS)), city.buildings))[0]
    outside = take(city.origins, rng.integers("prev.origin", hh_n, 0, len(city.origins)))
    hh_prev = where(pc.equal(hh_reason, Reason.MOVE_WITHIN), kobe_before, outside)
    prev = take(hh_prev, household)
    country = take(NATIONALITIES, nationality)
    prev = where(pc.equal(reason, Reason.FROM_ABROAD), country, prev)
    no_prev = pc.is_in(reason, value_set=pa.array([Reason.BIRTH, Reason.EX_OFFICIO], pa.int64()))
    del hh_ward
    return {
        "since": pc.cast(since, pa.int32()),
        "reason": pc.cast(reason, pa.int8()),
        "moved": pc.cast(moved, pa.int32()),
        "prev": where(no_prev, pa.scalar(None, pa.string()), prev),
    }


def household_positions(city: City) -> Array:
    """For each person, the row of their household in ``city.households``."""
    return pc.index_in(city.people["hid"], value_set=city.households["hid"])


def person_ages(city: City, on: dt.date) -> Array:
    return ages_at(city.people["birth"], on)


__all__ = ["ADDRESS_COLUMNS", "NATIONALITIES", "REASONS", "City", "build_city", "choice_from", "repeat"]
