"""The city's state: who lives where on a date, and how a batch of new people is settled into households.

``City.people`` has one row per resident (serial ``pid``, 宛名番号, household ``hid``, sex, birth, 続柄, names,
nationality and last move); ``City.households`` one row per household (世帯番号, ward, address parts and the
household's habitual way of writing its address). The extracts are derived from these two tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth import ids
from renkei.sending.synth.addresses import BuildingTable, building_table, draw_addresses, origin_pool, render
from renkei.sending.synth.calibration import (
    ARRIVAL_FOREIGN_SHARE,
    CITY_POPULATION,
    IN_FROM_ABROAD_SHARE,
    NATIONALITY_MIX,
    WARD_FOREIGN,
    WARD_HOUSEHOLDS,
    WARDS,
)
from renkei.sending.synth.names import GROUPS, NAME_GROUP_OF_NATIONALITY, draw_given, draw_surnames
from renkei.sending.synth.population import Rel, draw_people, form_households
from renkei.sending.synth.rng import Rng
from renkei.sending.synth.vec import Array, arange, bincount, const, days, flat, floor_int, take, where

NATIONALITIES: Final = ("日本", *(n for n, _, _ in NATIONALITY_MIX))
NAME_GROUP: Final = tuple(GROUPS.index(NAME_GROUP_OF_NATIONALITY[n]) for n in NATIONALITIES)


class Reason(IntEnum):
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
FOREIGN_REASON_WEIGHTS: Final = (0.35, 0.40, 0.25)  # foreign households: 国外転入, 転入, 転居
# Foreign newcomers come from abroad often enough that 転入 from abroad is §4a's share of all 転入.
ARRIVALS_FROM_ABROAD_OF_FOREIGN: Final = min(1.0, IN_FROM_ABROAD_SHARE / ARRIVAL_FOREIGN_SHARE)


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
    buildings: BuildingTable  # blocks of flats, sized for the city at its base size
    origins: Array  # addresses outside Kobe that newcomers come from


def build_city(rng: Rng, residents: int, as_of: dt.date) -> City:
    """The base population on ``as_of``, calibrated to the published 住基 tables (scaled to ``residents``)."""
    scale = residents / CITY_POPULATION
    empty = City(
        people=pa.table({}),
        households=pa.table({}),
        as_of=as_of,
        counters=Counters(),
        buildings=building_table(rng.child("buildings"), scale),
        origins=origin_pool(rng.child("origins")),
    )
    batch = draw_people(rng.child("people"), residents, as_of)
    targets = [round(WARD_HOUSEHOLDS[w] * scale) for w in WARDS]
    foreign = [WARD_FOREIGN[w] * scale for w in WARDS]
    people, households, counters = settle(rng.child("base"), empty, batch, targets, foreign, arrival=None)
    return ordered(replace(empty, people=people, households=households, counters=counters))


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


@dataclass(frozen=True)
class _Grouped:
    """A batch grouped into households: per person household id, 続柄 and guardian (batch row or -1)."""

    household: Array
    relation: Array
    guardian: Array
    ward: Array  # per household
    head_age: Array  # per household
    size: Array  # per household


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
    which this batch moved in from outside the city. Returns the new rows and the advanced counters.
    """
    counters = city.counters
    grouped = _group(rng, batch, household_targets)
    n, n_households = batch.num_rows, len(grouped.ward)
    nationality = _nationalities(rng, grouped, foreign_persons)
    names = _names(rng, batch, grouped, nationality)
    atena, next_atena = ids.allocate(rng, "atena", n, counters.atena)
    setai, next_setai = ids.allocate(rng, "setai", n_households, counters.setai)
    hid = pc.add(arange(n_households), counters.hid)
    if arrival is None:
        moved = _settled_since(rng, days(city.as_of), grouped.head_age)
        reason = _base_reasons(rng, nationality)
    else:
        moved = rng.integers("arrived", n_households, arrival[0] + 1, arrival[1] + 1)
        abroad = pc.and_(
            pc.greater(nationality, 0), rng.bernoulli("abroad", ARRIVALS_FROM_ABROAD_OF_FOREIGN, n_households)
        )
        reason = where(abroad, int(Reason.FROM_ABROAD), int(Reason.MOVE_IN))
    history = _history(rng, city, batch["birth"], grouped.household, moved, reason, nationality)

    people = pa.table(
        {
            "pid": pc.add(arange(n), counters.pid),
            "atena": atena,
            "hid": take(hid, grouped.household),
            "sex": pc.cast(batch["sex"], pa.int8()),
            "birth": pc.cast(batch["birth"], pa.int32()),
            "rel": pc.cast(grouped.relation, pa.int8()),
            "guardian": where(
                pc.greater_equal(grouped.guardian, 0), pc.add(grouped.guardian, counters.pid), -1
            ),
            "nat": pc.cast(take(nationality, grouped.household), pa.int8()),
            **names,
            **history,
        }
    )
    parts = draw_addresses(rng.child("address"), grouped.ward, city.buildings)
    households = pa.table({"hid": hid, "setai": setai, "ward": pc.cast(grouped.ward, pa.int8()), **parts})
    advanced = Counters(
        pid=counters.pid + n, hid=counters.hid + n_households, atena=next_atena, setai=next_setai
    )
    return people, households, advanced


def _group(rng: Rng, batch: pa.Table, targets: list[int]) -> _Grouped:
    """Households ward by ward; household ids run on across wards."""
    ward = pc.cast(batch["ward"], pa.int64())
    age = pc.cast(batch["age"], pa.int64())
    rows, households, relations, guardians, hh_wards = [], [], [], [], []
    offset = 0
    for w, name in enumerate(WARDS):
        members = pc.cast(pc.indices_nonzero(pc.equal(ward, w)), pa.int64())
        if len(members) == 0:
            continue
        plan = form_households(
            rng.child(name),
            flat(take(pc.cast(batch["sex"], pa.int64()), members)),
            flat(take(age, members)),
            targets[w],
        )
        rows.append(members)
        households.append(pc.add(plan.household, offset))
        relations.append(plan.relation)
        has_guardian = pc.greater_equal(plan.guardian, 0)
        guardians.append(where(has_guardian, take(members, pc.max_element_wise(plan.guardian, 0)), -1))
        hh_wards.append(const(w, plan.count, pa.int64()))
        offset += plan.count
    order = pc.sort_indices(pa.concat_arrays(rows))
    household = take(pa.concat_arrays(households), order)
    relation = take(pa.concat_arrays(relations), order)
    heads = pc.indices_nonzero(pc.equal(relation, int(Rel.HEAD)))
    head_age = take(take(age, heads), pc.sort_indices(take(household, heads)))
    return _Grouped(
        household=household,
        relation=relation,
        guardian=take(pa.concat_arrays([pc.cast(g, pa.int64()) for g in guardians]), order),
        ward=pa.concat_arrays(hh_wards),
        head_age=head_age,
        size=bincount(household, offset),
    )


def _nationalities(rng: Rng, grouped: _Grouped, foreign_persons: list[float]) -> Array:
    """Nationality index per household: foreign households up to each ward's count of foreign residents."""
    head_age = grouped.head_age
    # Foreign residents are young and often live alone (students, 技能実習): weight those households up.
    weight = pc.multiply(
        where(pc.less(head_age, 40), 3.0, where(pc.less(head_age, 60), 1.5, 1.0)),
        where(pc.equal(grouped.size, 1), 1.5, 1.0),
    )
    chosen = pick_until(rng.sample_keys("foreign", weight), grouped.ward, grouped.size, foreign_persons)
    older = pc.cast(pc.greater_equal(head_age, 45), pa.int64())
    tables = [[w for _, w, _ in NATIONALITY_MIX], [w for _, _, w in NATIONALITY_MIX]]
    foreign = pc.add(rng.choice_by_group("nationality", older, tables), 1)
    return where(chosen, foreign, const(0, len(head_age), pa.int64()))


def _names(rng: Rng, batch: pa.Table, grouped: _Grouped, nationality: Array) -> dict[str, Array]:
    """Surname and given-name indices: one surname per household (a 同居人 keeps their own)."""
    group = take(NAME_GROUP, take(nationality, grouped.household))
    surname = take(draw_surnames(rng, "surname", take(NAME_GROUP, nationality)), grouped.household)
    lodger = pc.equal(grouped.relation, int(Rel.LODGER))
    surname = where(lodger, draw_surnames(rng, "lodger.surname", group), surname)
    birth_year = pc.year(pc.cast(batch["birth"], pa.date32()))
    given = draw_given(rng, "given", group, pc.cast(batch["sex"], pa.int64()), birth_year)
    return {"surname": pc.cast(surname, pa.int32()), "given": pc.cast(given, pa.int32())}


def pick_until(keys: Array, groups: Array, sizes: Array, quotas: list[float]) -> Array:
    """Per group, take rows by descending key while their cumulative size stays within the group's quota."""
    groups, keys, sizes = flat(pc.cast(groups, pa.int64())), flat(keys), flat(pc.cast(sizes, pa.int64()))
    order = pc.sort_indices(
        pa.table({"g": groups, "k": keys}), sort_keys=[("g", "ascending"), ("k", "descending")]
    )
    sorted_groups = take(groups, order)
    sorted_sizes = take(sizes, order)
    cumulative = pc.cumulative_sum(sorted_sizes)
    first_of_group = pc.search_sorted(sorted_groups, sorted_groups, side="left")
    before_group = take(pc.subtract(cumulative, sorted_sizes), first_of_group)
    within = pc.cast(pc.subtract(cumulative, before_group), pa.float64())
    chosen_sorted = pc.less_equal(within, take(quotas, sorted_groups))
    return take(chosen_sorted, pc.sort_indices(order))


def pick_top(keys: Array, groups: Array, quotas: list[int]) -> Array:
    """Per group, the ``quotas[g]`` rows with the largest keys (a boolean mask)."""
    return pick_until(keys, groups, const(1, len(keys), pa.int64()), [float(q) for q in quotas])


def _settled_since(rng: Rng, end: int, head_age: Array) -> Array:
    """The day each base household moved to its address (before ``end``)."""
    n = len(head_age)
    years = pc.multiply(pc.ln(pc.subtract(1.0, rng.uniform("settled", n))), -YEARS_AT_ADDRESS_MEAN)
    adult_years = pc.add(
        pc.cast(pc.max_element_wise(pc.subtract(head_age, 18), 0), pa.float64()),
        rng.uniform("settled.min", n),
    )
    years = pc.min_element_wise(years, adult_years)
    return pc.subtract(end, pc.add(floor_int(pc.multiply(years, 365.25)), 1))


def _base_reasons(rng: Rng, nationality: Array) -> Array:
    n = len(nationality)
    japanese = where(
        rng.bernoulli("within", MOVED_WITHIN_KOBE_SHARE, n), int(Reason.MOVE_WITHIN), int(Reason.MOVE_IN)
    )
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
    nationality: Array,
) -> dict[str, Array]:
    """住民となった日, 異動事由, 異動日 and 前住所 per person from their household's last move.

    Children born after the move were born here (出生). People whose last move was within Kobe had lived in
    the city since birth or since some earlier day; a few records were written ex officio (職権記載).
    """
    n = len(birth)
    birth = pc.cast(birth, pa.int64())
    moved = take(moved_hh, household)
    born_after = pc.greater_equal(birth, moved)
    reason = where(born_after, int(Reason.BIRTH), take(hh_reason, household))
    moved = where(born_after, birth, moved)
    arrived_earlier = pc.add(
        birth, floor_int(pc.multiply(rng.uniform("since", n), pc.subtract(moved, birth)))
    )
    earlier = where(rng.bernoulli("born.kobe", BORN_IN_KOBE_SHARE, n), birth, arrived_earlier)
    since = where(pc.equal(reason, int(Reason.MOVE_WITHIN)), earlier, moved)
    ex_officio = pc.and_(
        pc.not_equal(reason, int(Reason.BIRTH)), rng.bernoulli("shokken", EX_OFFICIO_SHARE, n)
    )
    reason = where(ex_officio, int(Reason.EX_OFFICIO), reason)

    previous = take(_previous_addresses(rng, city, hh_reason), household)
    previous = where(
        pc.equal(reason, int(Reason.FROM_ABROAD)), take(NATIONALITIES, take(nationality, household)), previous
    )
    no_previous = pc.is_in(reason, value_set=pa.array([Reason.BIRTH, Reason.EX_OFFICIO], pa.int64()))
    return {
        "since": pc.cast(since, pa.int32()),
        "reason": pc.cast(reason, pa.int8()),
        "moved": pc.cast(moved, pa.int32()),
        "prev": where(no_previous, pa.scalar(None, pa.string()), previous),
    }


def _previous_addresses(rng: Rng, city: City, hh_reason: Array) -> Array:
    """Per household, where it lived before: another Kobe address (転居) or a town elsewhere in Japan."""
    n = len(hh_reason)
    outside = take(city.origins, rng.integers("prev.origin", n, 0, len(city.origins)))
    within = pc.indices_nonzero(pc.equal(hh_reason, int(Reason.MOVE_WITHIN)))
    if len(within) == 0:
        return outside
    wards = rng.integers("prev.ward", len(within), 0, len(WARDS))
    kobe, _ = render(draw_addresses(rng.child("previous"), wards, city.buildings))
    positions = pc.index_in(arange(n), value_set=within)
    return where(pc.is_null(positions), outside, take(kobe, pc.fill_null(positions, 0)))
