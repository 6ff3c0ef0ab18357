"""A full-size synthetic Kobe matches the published 住基 figures (kobe-figures.md §1b and §2a) within 2 %."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
import pytest

from renkei.sending.synth import generate_city
from renkei.sending.synth.calibration import (
    BAND_STARTS,
    CITY_BANDS_FEMALE,
    CITY_BANDS_MALE,
    WARD_POPULATION,
    WARDS,
)
from renkei.sending.synth.dates import parse_date

RESIDENTS = 1_525_152  # the 2020 census (final); the 住基 tables count 1,526,835
AS_OF = dt.date(2021, 1, 1)  # the 住基 reference date of the tables
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def juki(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    snapshot = generate_city(RESIDENTS, AS_OF, tmp_path_factory.mktemp("kobe"), datasets=["juki"])[-1]
    assert snapshot.rows["juki"] == RESIDENTS
    return csv.read_csv(
        snapshot.paths["juki"],
        read_options=csv.ReadOptions(encoding="cp932"),
        convert_options=csv.ConvertOptions(
            include_columns=["生年月日", "性別", "住所"],
            column_types={"生年月日": pa.string(), "性別": pa.string(), "住所": pa.string()},
            strings_can_be_null=False,
        ),
    )


def ages(births: pa.Array) -> pa.Array:
    """Age on AS_OF from 生年月日 in any export form; null where the value is not a real date (dirty rows)."""
    births = births.combine_chunks() if isinstance(births, pa.ChunkedArray) else births
    iso = pc.strptime(births, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2019-02-30 over to March 2: a date only counts if its day reads back unchanged.
    read_day = pc.utf8_lpad(pc.cast(pc.day(iso), pa.string()), width=2, padding="0")
    iso = pc.if_else(
        pc.equal(pc.utf8_slice_codeunits(births, 8, 10), read_day), iso, pa.scalar(None, iso.type)
    )
    others = pc.indices_nonzero(pc.is_null(iso))
    parsed = [parse_date(v) for v in pc.take(births, others).to_pylist()]
    others_days = pa.array(
        [None if d is None else (d - dt.date(1970, 1, 1)).days for d in parsed], pa.int32()
    )
    days = pc.cast(pc.cast(iso, pa.date32()), pa.int32())
    days = pc.if_else(pc.is_null(days), _scatter(len(births), others, others_days), days)
    date = pc.cast(days, pa.date32())
    before_birthday = pc.or_(
        pc.greater(pc.month(date), AS_OF.month),
        pc.and_(pc.equal(pc.month(date), AS_OF.month), pc.greater(pc.day(date), AS_OF.day)),
    )
    return pc.subtract(pc.subtract(AS_OF.year, pc.year(date)), pc.cast(before_birthday, pa.int64()))


def _scatter(n: int, rows: pa.Array, values: pa.Array) -> pa.Array:
    position = pc.index_in(pa.arange(0, n), value_set=rows)
    return pc.take(values, position)


@pytest.mark.slow
def test_every_ward_within_two_percent(juki: pa.Table) -> None:
    ward = pc.extract_regex(juki["住所"].combine_chunks(), "(?P<ward>" + "|".join(WARDS) + ")").field("ward")
    counts = {v.as_py(): c.as_py() for v, c in zip(*pc.value_counts(ward).flatten(), strict=True)}
    for name in WARDS:
        assert abs(counts[name] / WARD_POPULATION[name] - 1) <= TOLERANCE, name


@pytest.mark.slow
def test_every_city_age_band_within_two_percent_by_sex(juki: pa.Table) -> None:
    age = ages(juki["生年月日"])
    assert pc.sum(pc.is_null(age)).as_py() < 0.005 * juki.num_rows  # only the deliberately broken dates
    band = pc.min_element_wise(pc.divide(age, 5), len(BAND_STARTS) - 1, skip_nulls=False)
    both = tuple(m + f for m, f in zip(CITY_BANDS_MALE, CITY_BANDS_FEMALE, strict=True))
    for sex, published in (("男", CITY_BANDS_MALE), ("女", CITY_BANDS_FEMALE), (None, both)):
        of_sex = band if sex is None else pc.filter(band, pc.equal(juki["性別"], sex))
        counts = {v.as_py(): c.as_py() for v, c in zip(*pc.value_counts(of_sex).flatten(), strict=True)}
        for index, start in enumerate(BAND_STARTS):
            assert abs(counts.get(index, 0) / published[index] - 1) <= TOLERANCE, (sex, start)


def test_ages_helper_reads_every_form() -> None:
    births = pa.array(["2000-01-02", "昭和55年4月1日", "2019-02-30", "", "20201231"])
    assert ages(births).to_pylist() == [20, 40, None, None, 0]
