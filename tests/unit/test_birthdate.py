from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from renkei.sending.birthdate import ages, school_year
from tests.support.examples import scaled

D = dt.date
ONE_DAY = dt.timedelta(days=1)

# domain.md §4.3: (#, 生年月日, 基準日 D, age at start of D, 法定 age at end of D, 学年度 of D, 学年年齢, 小1 entry year)
WORKED_EXAMPLES = [
    (1, D(2018, 4, 1), D(2024, 4, 1), 6, 6, 2024, 6, 2024),
    (2, D(2018, 4, 2), D(2024, 4, 1), 5, 6, 2024, 5, 2025),
    (3, D(2018, 3, 31), D(2024, 3, 30), 5, 6, 2023, 5, 2024),
    (4, D(2017, 4, 2), D(2024, 4, 1), 6, 7, 2024, 6, 2024),
    (5, D(2016, 2, 29), D(2023, 2, 28), 6, 7, 2022, 6, 2022),
    (6, D(2020, 2, 29), D(2024, 2, 28), 3, 4, 2023, 3, 2026),
    (7, D(2020, 2, 29), D(2025, 3, 1), 5, 5, 2024, 4, 2026),
    (8, D(2005, 12, 15), D(2025, 6, 30), 19, 19, 2025, 19, 2012),
    (9, D(2006, 4, 1), D(2024, 3, 31), 17, 18, 2023, 17, 2012),
    (10, D(1960, 4, 1), D(2025, 3, 31), 64, 65, 2024, 64, 1966),
    (11, D(2011, 4, 2), D(2024, 4, 1), 12, 13, 2024, 12, 2018),
    (12, D(2012, 1, 1), D(2025, 3, 31), 13, 13, 2024, 12, 2018),
]


def one(birth: dt.date, as_of: dt.date) -> tuple[int | None, int | None]:
    result = ages(pa.array([birth], pa.date32()), as_of)
    return result.age[0].as_py(), result.school_age[0].as_py()


@pytest.mark.parametrize(
    ("row", "birth", "as_of", "age_at_start", "legal_age", "year", "school_age", "first_grade_year"),
    WORKED_EXAMPLES,
    ids=[f"row{r[0]}" for r in WORKED_EXAMPLES],
)
def test_worked_examples(
    row: int,
    birth: dt.date,
    as_of: dt.date,
    age_at_start: int,
    legal_age: int,
    year: int,
    school_age: int,
    first_grade_year: int,
) -> None:
    assert one(birth, as_of) == (legal_age, school_age)
    # the age at the start of D is the legal age at the end of the day before
    assert one(birth, as_of - ONE_DAY)[0] == age_at_start
    assert school_year(as_of) == year
    # 小1 entry year: the first school year whose 学年年齢 is 6
    assert one(birth, D(first_grade_year, 4, 1))[1] == 6
    assert one(birth, D(first_grade_year - 1, 4, 1))[1] == 5


@pytest.mark.parametrize(
    ("as_of", "age"),
    [
        (D(2023, 2, 27), 2),
        (D(2023, 2, 28), 3),  # common year: ages at the end of 2月28日
        (D(2023, 3, 1), 3),
        (D(2024, 2, 27), 3),
        (D(2024, 2, 28), 4),  # leap year: still the end of 2月28日, not 2月29日
        (D(2024, 2, 29), 4),
    ],
)
def test_february_29_births_age_at_the_end_of_february_28(as_of: dt.date, age: int) -> None:
    assert one(D(2020, 2, 29), as_of)[0] == age


def test_april_1_and_april_2_births_are_in_different_grades() -> None:
    assert one(D(2018, 4, 1), D(2024, 9, 1))[1] == 6  # 小1
    assert one(D(2018, 4, 2), D(2024, 9, 1))[1] == 5  # 未就学, with those born up to 2019-04-01
    assert one(D(2019, 4, 1), D(2024, 9, 1))[1] == 5


def test_school_age_is_constant_over_the_school_year() -> None:
    birth = D(2017, 10, 10)
    school_ages = {one(birth, D(2024, 4, 1) + dt.timedelta(days=n))[1] for n in range(365)}
    assert school_ages == {6}
    assert one(birth, D(2025, 4, 1))[1] == 7


def test_births_in_the_current_school_year_after_april_1_have_school_age_minus_one() -> None:
    assert one(D(2024, 4, 1), D(2024, 6, 1)) == (0, 0)
    assert one(D(2024, 4, 2), D(2024, 6, 1)) == (0, -1)


def test_future_births_are_null_and_counted_nulls_are_not() -> None:
    births = pa.array([D(2030, 1, 1), None, D(2024, 1, 1), D(2024, 1, 2)], pa.date32())
    result = ages(births, D(2024, 1, 1))
    assert result.age.to_pylist() == [None, None, 0, None]
    assert result.school_age.to_pylist() == [None, None, -1, None]
    assert result.future == 2


def test_types_and_chunked_input() -> None:
    births = pa.chunked_array([[D(2000, 1, 1)], [D(1950, 6, 15), None]], pa.date32())
    result = ages(births, D(2025, 3, 31))
    assert result.age.type == result.school_age.type == pa.int16()
    assert result.age.to_pylist() == [25, 74, None]
    assert result.school_age.to_pylist() == [24, 73, None]
    assert result.future == 0


# A scalar transcription of domain.md §4.2, row by row, to compare the vectorized code with.
def ordinary_age(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def reference(birth: dt.date, as_of: dt.date) -> tuple[int | None, int | None]:
    if birth > as_of:
        return None, None
    year = as_of.year if as_of.month >= 4 else as_of.year - 1
    return ordinary_age(birth, as_of + ONE_DAY), ordinary_age(birth, D(year, 4, 1))


DATES = st.dates(min_value=D(1873, 1, 1), max_value=D(2100, 12, 30))


@settings(max_examples=scaled(3))
@given(births=st.lists(DATES, max_size=40), as_of=DATES)
@example(births=[D(2020, 2, 29), D(2018, 4, 1), D(2018, 4, 2), D(2024, 2, 29)], as_of=D(2024, 2, 28))
@example(births=[D(2020, 2, 29), D(2019, 3, 1)], as_of=D(2023, 2, 28))
@example(births=[D(2018, 4, 1), D(2018, 4, 2)], as_of=D(2025, 3, 31))
def test_vectorized_ages_match_the_scalar_formulas(births: list[dt.date], as_of: dt.date) -> None:
    result = ages(pa.array(births, pa.date32()), as_of)
    expected = [reference(birth, as_of) for birth in births]
    assert list(zip(result.age.to_pylist(), result.school_age.to_pylist(), strict=True)) == expected
    assert result.future == sum(birth > as_of for birth in births)
