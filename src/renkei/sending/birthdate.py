"""生年月日 → 年齢 and 学年年齢, vectorized over a date32 column (domain.md §4.2; docs/rules/dates-and-ages.md).

Both are one formula, the ordinary age (completed years at the start of a day):

    ordinary_age(B, D) = D.year − B.year − (1 if (B.month, B.day) > (D.month, D.day) else 0)

- 年齢 (満年齢): 年齢計算ニ関スル法律 applies 民法143条, so an age is attained at the end of the day before the
  birthday. The legal age at the end of the as-of day D is therefore ``ordinary_age(B, D + 1 day)``. A
  2月29日 birth ages at the end of 2月28日 in every year, leap or not, with no special case.
- 学年年齢: the ordinary age on 4月1日 of the school year (4月1日–3月31日, 学校教育法施行規則59条) containing D.
  It is constant for the whole school year and is 6 for 小学1年 (学校教育法17条): children born on 4月1日 join
  the grade of those born in the previous year, which the formula gives because (4, 1) > (4, 1) is false.

The as-of day is one scalar, so only the birth side is per row: year and month·100+day columns, compared
with two constants.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

SCHOOL_YEAR_START_MONTH = 4


@dataclass(frozen=True)
class Ages:
    """年齢 and 学年年齢 of each birth date on the as-of date."""

    age: pa.Array  # pa.int16(): 満年齢 (legal rule) at the end of the as-of date
    school_age: pa.Array  # pa.int16(): 学年年齢 = ordinary age on 4月1日 of the school year of the as-of date
    future: int  # birth dates after the as-of date (→ null in both columns)


def school_year(day: dt.date) -> int:
    """学年度 of a day: the year whose 4月1日 starts the school year containing it (学校教育法施行規則59条)."""
    return day.year if day.month >= SCHOOL_YEAR_START_MONTH else day.year - 1


def ages(birth: pa.Array | pa.ChunkedArray, as_of: dt.date) -> Ages:
    """満年齢 by 年齢計算ニ関スル法律 + 民法143条 and 学年年齢 on ``as_of``; births after ``as_of`` → null, counted."""
    births = birth.combine_chunks() if isinstance(birth, pa.ChunkedArray) else birth
    births = births.cast(pa.date32())
    # Not pc.year_month_day: in pyarrow 26.0.1 it corrupts the heap (later kernels segfault).
    birth_year = pc.year(births)
    birth_month_day = pc.add(pc.multiply(pc.month(births), 100), pc.day(births))

    is_future = pc.greater(births, pa.scalar(as_of, pa.date32()))
    end_of_as_of = as_of + dt.timedelta(days=1)  # the legal age is the ordinary age at the start of D + 1
    first_day_of_school_year = dt.date(school_year(as_of), SCHOOL_YEAR_START_MONTH, 1)
    return Ages(
        age=_unless(is_future, _ordinary_age(birth_year, birth_month_day, end_of_as_of)),
        school_age=_unless(is_future, _ordinary_age(birth_year, birth_month_day, first_day_of_school_year)),
        future=int(pc.sum(is_future).as_py() or 0),
    )


def _ordinary_age(birth_year: pa.Array, birth_month_day: pa.Array, on: dt.date) -> pa.Array:
    """Completed years at the start of day ``on``: one less while this year's birthday is still to come."""
    birthday_to_come = pc.greater(birth_month_day, on.month * 100 + on.day)
    return pc.subtract(pc.subtract(on.year, birth_year), pc.cast(birthday_to_come, pa.int64()))


def _unless(mask: pa.Array, values: pa.Array) -> pa.Array:
    return pc.if_else(mask, pa.scalar(None, pa.int16()), values.cast(pa.int16()))
