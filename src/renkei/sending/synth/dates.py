"""Dates as core systems export them: ISO mostly, plus slashes, compact digits, 和暦 and era codes.

:func:`render_dates` writes a date32 array in per-row forms; :func:`parse_date` reads every valid form back
(the tests use it to check ages). The deliberately broken forms (an impossible day, an era past its end)
parse to ``None``, as they should in any careful reader.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from enum import IntEnum
from functools import cache
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth.vec import Array, const, days, flat, fullwidth, join, pad, take, text, where


class DateForm(IntEnum):
    ISO = 0  # 1980-04-01
    SLASH = 1  # 1980/4/1
    COMPACT = 2  # 19800401
    WAREKI = 3  # 昭和55年4月1日 (元年 for year 1)
    WAREKI_SHORT = 4  # S55.4.1
    ERA_CODE = 5  # 3550401: era digit (1 明治 … 5 令和) + YYMMDD
    FULLWIDTH = 6  # １９８０-０４-０１
    IMPOSSIBLE_DAY = 7  # 1980-02-30: dirty
    ERA_OVERRUN = 8  # 平成31年5月1日, 昭和64年3月1日: an era written past its last day, dirty
    BLANK = 9  # dirty


# (name, letter, first day) of each era, oldest first.
ERAS: Final = (
    ("明治", "M", dt.date(1868, 1, 25)),
    ("大正", "T", dt.date(1912, 7, 30)),
    ("昭和", "S", dt.date(1926, 12, 25)),
    ("平成", "H", dt.date(1989, 1, 8)),
    ("令和", "R", dt.date(2019, 5, 1)),
)
DIRTY_FORMS: Final = frozenset({DateForm.IMPOSSIBLE_DAY, DateForm.ERA_OVERRUN, DateForm.BLANK})


# Every form is a pure function of the day, so each form is rendered once per calendar day into a lookup table
# and a column of dates becomes a single ``take`` (pc.strftime costs ~2 µs a value; this ~0.1 µs).
CALENDAR_START: Final = dt.date(1870, 1, 1)
CALENDAR_END: Final = dt.date(2069, 12, 31)


def render_dates(day_numbers: Array, forms: Array) -> Array:
    """Dates (days since 1970-01-01) as strings, ``forms[i]`` a :class:`DateForm` per row. Nulls stay null.

    Dates outside 1870–2069 are clamped to that range.
    """
    table = _calendar_strings()
    size = (CALENDAR_END - CALENDAR_START).days + 1
    day_index = pc.min_element_wise(
        pc.max_element_wise(pc.subtract(pc.cast(day_numbers, pa.int64()), days(CALENDAR_START)), 0), size - 1
    )
    return take(table, pc.add(pc.multiply(pc.cast(forms, pa.int64()), size), day_index))


@cache
def _calendar_strings() -> Array:
    """All forms of all days in the calendar range, form-major."""
    first = days(CALENDAR_START)
    day_numbers = pc.cast(pa.arange(first, days(CALENDAR_END) + 1), pa.int32())
    date32 = pc.cast(day_numbers, pa.date32())
    y, m, d = pc.year(date32), pc.month(date32), pc.day(date32)
    era_starts = pa.array([days(e[2]) for e in ERAS[1:]], pa.int32())
    era = pc.cast(pc.search_sorted(era_starts, day_numbers, side="right"), pa.int64())
    era_first_year = [e[2].year for e in ERAS]
    era_year = pc.add(pc.subtract(y, take(era_first_year, era)), 1)
    previous = pc.max_element_wise(pc.subtract(era, 1), 0)
    overrun_year = pc.add(pc.subtract(y, take(era_first_year, previous)), 1)
    names, letters = [e[0] for e in ERAS], [e[1] for e in ERAS]
    y4, m2, d2 = text(y), pad(m, 2), pad(d, 2)
    ms, ds = text(m), text(d)
    impossible = join(y4, where(pc.equal(m, 2), "-04-31", "-02-30"))
    overrun = join(take(names, previous), text(overrun_year), "年", ms, "月", ds, "日")
    forms = {
        DateForm.ISO: join(y4, "-", m2, "-", d2),
        DateForm.SLASH: join(y4, "/", ms, "/", ds),
        DateForm.COMPACT: join(y4, m2, d2),
        DateForm.WAREKI: join(
            take(names, era), where(pc.equal(era_year, 1), "元", text(era_year)), "年", ms, "月", ds, "日"
        ),
        DateForm.WAREKI_SHORT: join(take(letters, era), text(era_year), ".", ms, ".", ds),
        DateForm.ERA_CODE: join(text(pc.add(era, 1)), pad(era_year, 2), m2, d2),
        DateForm.FULLWIDTH: join(fullwidth(y), "-", fullwidth(m, 2), "-", fullwidth(d, 2)),
        DateForm.IMPOSSIBLE_DAY: impossible,
        # 明治 has no era before it to overrun: those days get an impossible day instead.
        DateForm.ERA_OVERRUN: where(pc.equal(era, 0), impossible, overrun),
        DateForm.BLANK: const("", len(day_numbers), pa.string()),
    }
    return pa.concat_arrays([flat(pc.cast(forms[f], pa.string())) for f in DateForm])


def format_date(date: dt.date, form: DateForm) -> str:
    """One date in one form (see :class:`DateForm`)."""
    day = pa.array([days(date)], pa.int32())
    return str(render_dates(day, pa.array([int(form)], pa.int64()))[0].as_py())


_ISO = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_WAREKI = re.compile(r"(明治|大正|昭和|平成|令和)(元|\d{1,2})年(\d{1,2})月(\d{1,2})日")
_WAREKI_SHORT = re.compile(r"([MTSHR])(\d{1,2})\.(\d{1,2})\.(\d{1,2})")
_ERA_CODE = re.compile(r"([1-5])(\d{2})(\d{2})(\d{2})")


def parse_date(value: str) -> dt.date | None:
    """A date in any form :func:`render_dates` writes, or None if blank or not a real date."""
    s = unicodedata.normalize("NFKC", value).strip()
    try:
        if m := _ISO.fullmatch(s):
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if m := _COMPACT.fullmatch(s):
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if m := _WAREKI.fullmatch(s):
            era = next(i for i, e in enumerate(ERAS) if e[0] == m[1])
            return _from_era(era, 1 if m[2] == "元" else int(m[2]), int(m[3]), int(m[4]))
        if m := _WAREKI_SHORT.fullmatch(s):
            era = next(i for i, e in enumerate(ERAS) if e[1] == m[1])
            return _from_era(era, int(m[2]), int(m[3]), int(m[4]))
        if m := _ERA_CODE.fullmatch(s):
            return _from_era(int(m[1]) - 1, int(m[2]), int(m[3]), int(m[4]))
    except ValueError:
        return None
    return None


def _from_era(era: int, year: int, month: int, day: int) -> dt.date | None:
    date = dt.date(ERAS[era][2].year + year - 1, month, day)
    end = ERAS[era + 1][2] if era + 1 < len(ERAS) else dt.date.max
    return date if ERAS[era][2] <= date < end else None
