from __future__ import annotations

import datetime as dt
import itertools

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.sending import dates
from renkei.sending.dates import ERAS, coarsen_dates, parse_date, parse_dates

D = dt.date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2012-04-01", D(2012, 4, 1)),
        ("2012/4/1", D(2012, 4, 1)),
        ("2012.4.1", D(2012, 4, 1)),
        ("2012/04/01", D(2012, 4, 1)),
        ("20120401", D(2012, 4, 1)),
        ("2012年4月1日", D(2012, 4, 1)),
        ("平成24年4月1日", D(2012, 4, 1)),
        ("平成24年04月01日", D(2012, 4, 1)),
        ("平成 24年 4月 1日", D(2012, 4, 1)),
        ("令和元年5月1日", D(2019, 5, 1)),
        ("令和1年5月1日", D(2019, 5, 1)),
        ("昭和45年4月1日", D(1970, 4, 1)),
        ("H24.4.1", D(2012, 4, 1)),
        ("H24/4/1", D(2012, 4, 1)),
        ("H24-04-01", D(2012, 4, 1)),
        ("h24.4.1", D(2012, 4, 1)),
        ("H元.1.8", D(1989, 1, 8)),
        ("平成24.4.1", D(2012, 4, 1)),
        ("R2.4.1", D(2020, 4, 1)),
        ("S45.4.1", D(1970, 4, 1)),
        ("T10.4.1", D(1921, 4, 1)),
        ("M44.4.1", D(1911, 4, 1)),
        ("4240401", D(2012, 4, 1)),
        ("3450401", D(1970, 4, 1)),
        ("5010501", D(2019, 5, 1)),
        ("1450729", D(1912, 7, 29)),
        # NFKC: full-width digits and separators, 元号 ligatures, surrounding (ideographic) spaces
        ("２０１２－０４－０１", D(2012, 4, 1)),
        ("２０１２０４０１", D(2012, 4, 1)),
        ("Ｈ２４．４．１", D(2012, 4, 1)),
        ("㍻24年4月1日", D(2012, 4, 1)),
        ("㋿2年4月1日", D(2020, 4, 1)),
        ("  2012-04-01 ", D(2012, 4, 1)),
        ("\u30002012/4/1\u3000", D(2012, 4, 1)),
    ],
)
def test_recognized_forms(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # not a day of the Gregorian calendar
        "2013-02-29",
        "20130229",
        "1900-02-29",
        "2012-04-31",
        "2012-13-01",
        "2012-00-10",
        "2012-04-00",
        "00000000",
        "平成25年2月29日",
        # 和暦 outside its era
        "平成31年5月1日",
        "H31.5.1",
        "4310501",
        "昭和64年1月8日",
        "令和元年4月30日",
        "5010430",
        "明治45年7月30日",
        "大正元年7月29日",
        "大正15年12月25日",
        "昭和元年12月24日",
        "平成0年1月1日",
        "明治5年12月31日",  # 旧暦 date: not convertible by adding years
        # not one of the forms
        "12/4/1",
        "2012-04/01",
        "2012/4/1x",
        "2012",
        "201204",
        "2012-04-01 00:00:00",
        "H24.4",
        "24.4.1",
        "X24.4.1",
        "0240401",
        "6240401",
        "abc",
        "平成二十四年四月一日",
        "٢٠١٢-٠٤-٠١",  # Arabic-Indic digits are digits to Python's \d, but not a form we read
    ],
)
def test_invalid_values_are_not_guessed(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize("text", ["2000-02-29", "2024-02-29", "平成12年2月29日", "R6.2.29"])
def test_leap_days(text: str) -> None:
    parsed = parse_date(text)
    assert parsed is not None
    assert (parsed.month, parsed.day) == (2, 29)


@pytest.mark.parametrize("era", ERAS, ids=lambda era: era.name)
def test_each_era_accepts_exactly_its_own_days(era: dates.Era) -> None:
    def wareki(day: dt.date) -> str:
        return f"{era.name}{day.year - era.first_year + 1}年{day.month}月{day.day}日"

    assert parse_date(wareki(era.first_day)) == era.first_day
    assert parse_date(wareki(era.first_day - dt.timedelta(days=1))) is None
    if era.last_day is not None:
        assert parse_date(wareki(era.last_day)) == era.last_day
        assert parse_date(wareki(era.last_day + dt.timedelta(days=1))) is None


def test_era_boundaries_are_contiguous() -> None:
    for earlier, later in itertools.pairwise(ERAS):
        assert earlier.last_day is not None
        assert later.first_day - earlier.last_day == dt.timedelta(days=1)
    assert [era.code for era in ERAS] == [1, 2, 3, 4, 5]


def test_parse_dates_counts_blank_and_invalid() -> None:
    values = pa.array(["2012-04-01", None, "", "  ", "\u3000", "2013-02-29", "H24.4.1", "不明", "2012-04-01"])
    parsed = parse_dates(values)
    assert parsed.dates.type == pa.date32()
    assert parsed.dates.to_pylist() == [
        D(2012, 4, 1),
        None,
        None,
        None,
        None,
        None,
        D(2012, 4, 1),
        None,
        D(2012, 4, 1),
    ]
    assert (parsed.blank, parsed.invalid) == (4, 2)


def test_parse_dates_takes_chunked_dictionary_integer_and_large_string_columns() -> None:
    expected = [D(2012, 4, 1), None, D(2019, 5, 1)]
    chunked = pa.chunked_array([["2012-04-01", None], ["令和元年5月1日"]])
    as_dictionary = pa.array(["2012-04-01", None, "R1.5.1"]).dictionary_encode()
    as_integers = pa.array([20120401, None, 5010501], pa.int64())
    as_large = pa.array(["2012-04-01", None, "2019/5/1"], pa.large_string())
    for column in (chunked, as_dictionary, as_integers, as_large):
        parsed = parse_dates(column)
        assert parsed.dates.to_pylist() == expected
        assert (parsed.blank, parsed.invalid) == (1, 0)


def test_null_entries_of_a_given_dictionary_are_blank() -> None:
    column = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, None, 2], pa.int8()), pa.array(["H24.4.1", None, "x"])
    )
    parsed = parse_dates(column)
    assert parsed.dates.to_pylist() == [D(2012, 4, 1), None, None, None]
    assert (parsed.blank, parsed.invalid) == (2, 1)


def test_parse_dates_passes_dates_and_timestamps_through() -> None:
    as_dates = pa.array([D(2012, 4, 1), None], pa.date32())
    as_timestamps = pa.array([dt.datetime(2012, 4, 1, 13, 0), None], pa.timestamp("s"))
    for column in (as_dates, as_timestamps):
        parsed = parse_dates(column)
        assert parsed.dates.type == pa.date32()
        assert parsed.dates.to_pylist() == [D(2012, 4, 1), None]
        assert (parsed.blank, parsed.invalid) == (1, 0)


def test_parse_dates_of_empty_and_all_null_columns() -> None:
    empty = parse_dates(pa.array([], pa.string()))
    assert (len(empty.dates), empty.blank, empty.invalid) == (0, 0, 0)
    nulls = parse_dates(pa.array([None, None]))
    assert nulls.dates.to_pylist() == [None, None]
    assert (nulls.blank, nulls.invalid) == (2, 0)


def test_each_distinct_value_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each distinct value is read once: the plain 西暦 forms in one vectorized pass over the distinct values
    (``2012-04-01`` never reaches parse_date), every other distinct value by parse_date, once."""
    seen: list[str] = []
    vectorized: list[int] = []

    def counting(text: str) -> dt.date | None:
        seen.append(text)
        return parse_date(text)

    plain_western = dates._plain_western_dates

    def counting_plain(dictionary: pa.Array, plain: pa.Array) -> pa.Array:
        vectorized.append(len(dictionary))
        return plain_western(dictionary, plain)

    monkeypatch.setattr(dates, "parse_date", counting)
    monkeypatch.setattr(dates, "_plain_western_dates", counting_plain)
    parsed = parse_dates(pa.array(["2012-04-01", "H24.4.1", "x"] * 10_000))
    assert sorted(seen) == sorted(["H24.4.1", "x"])
    assert vectorized == [3]  # one pass over the 3 distinct values, not the 30,000 rows
    assert (parsed.invalid, parsed.blank) == (10_000, 0)
    assert parsed.dates.to_pylist()[:3] == [D(2012, 4, 1), D(2012, 4, 1), None]


_PLAIN_EDGES = [
    "2012-04-01",
    "2012/4/1",
    "2012.4.1",
    "20120401",
    "2012-12-31",
    "2012-1-12",
    "2020-02-29",
    "2019-02-29",
    "1900-02-29",
    "2000-02-29",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "2012-13-01",
    "2012-00-10",
    "2012-01-00",
    "2012-04-31",
    "20121301",
    "20120230",
    "2012-4/1",
    "2012/4-1",
    " 2012-04-01",
    "2012-04-01 ",
    "２０１２-04-01",
    "2012-004-01",
    "201204011",
    "2012",
    "",
    "  ",
    "H24.4.1",
    "4240401",
    "2012年4月1日",
]


def test_the_vectorized_western_forms_read_as_parse_date_does() -> None:
    parsed = parse_dates(pa.array([*_PLAIN_EDGES, None]))
    assert parsed.dates.to_pylist() == [*(parse_date(t) for t in _PLAIN_EDGES), None]


@given(
    st.tuples(
        st.integers(0, 9999),
        st.integers(0, 99),
        st.integers(0, 99),
        st.sampled_from(["-", "/", ".", ""]),
        st.booleans(),
    )
)
def test_vectorized_and_scalar_western_dates_agree(parts: tuple[int, int, int, str, bool]) -> None:
    year, month, day, sep, padded = parts
    text = (
        f"{year:04d}{sep}{month:02d}{sep}{day:02d}"
        if padded or not sep
        else f"{year:04d}{sep}{month}{sep}{day}"
    )
    assert parse_dates(pa.array([text])).dates.to_pylist() == [parse_date(text)]


def test_coarsen_to_month_and_year() -> None:
    values = pa.array([D(2012, 4, 17), None, D(2020, 2, 29), D(1960, 12, 31)], pa.date32())
    month = coarsen_dates(values, "month")
    year = coarsen_dates(values, "year")
    assert month.type == year.type == pa.date32()
    assert month.to_pylist() == [D(2012, 4, 1), None, D(2020, 2, 1), D(1960, 12, 1)]
    assert year.to_pylist() == [D(2012, 1, 1), None, D(2020, 1, 1), D(1960, 1, 1)]


def test_coarsen_rejects_other_units() -> None:
    with pytest.raises(ValueError, match="month"):
        coarsen_dates(pa.array([D(2012, 4, 17)], pa.date32()), "day")  # type: ignore[arg-type]
