"""Dates as Japanese core systems export them: 西暦 and 和暦 forms, recognized without configuration.

One column may mix forms (``2012-04-01``, ``20120401``, ``平成24年4月1日``, ``H24.4.1``, ``4240401``). Every
value is NFKC-normalized (full-width digits, ``㍻`` → ``平成``) and trimmed, then matched against a fixed
list of forms. A value that matches no form, or names a day that does not exist (2月30日, 2月29日 of a
common year, 平成31年5月1日 which is 令和元年), becomes null and is counted as invalid: a date is never
guessed. The rules and their sources are in docs/rules/dates-and-ages.md.

Date columns have few distinct values (a few tens of thousands of birth dates in a city of 1.5 million),
so each distinct value is parsed once in Python and the results are mapped back with ``take``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class ParsedDates:
    """A column of dates and what could not be read."""

    dates: pa.Array  # pa.date32(), null where blank or invalid
    invalid: int  # non-blank values that are not a valid date
    blank: int  # null or whitespace-only values


class Era(NamedTuple):
    """One 元号: its names, its code in the 7-digit form, and the first and last day it was in use."""

    name: str
    letter: str
    code: int
    first_year: int  # 西暦 of 元年
    first_day: dt.date  # first day a date in this era is accepted
    last_day: dt.date | None  # None: the current era


# Boundaries (sources in docs/rules/dates-and-ages.md): each 改元 took effect on the first day of the new
# era, so the old era ends the day before. 明治 dates before 明治6年1月1日 are 旧暦 (lunisolar) dates that do
# not map to 西暦 by adding years, so they are rejected rather than converted wrongly.
ERAS: tuple[Era, ...] = (
    Era("明治", "M", 1, 1868, dt.date(1873, 1, 1), dt.date(1912, 7, 29)),
    Era("大正", "T", 2, 1912, dt.date(1912, 7, 30), dt.date(1926, 12, 24)),
    Era("昭和", "S", 3, 1926, dt.date(1926, 12, 25), dt.date(1989, 1, 7)),
    Era("平成", "H", 4, 1989, dt.date(1989, 1, 8), dt.date(2019, 4, 30)),
    Era("令和", "R", 5, 2019, dt.date(2019, 5, 1), None),
)
_ERA_BY_TOKEN: dict[str, Era] = {
    **{era.name: era for era in ERAS},
    **{era.letter: era for era in ERAS},
    **{era.letter.lower(): era for era in ERAS},
    **{str(era.code): era for era in ERAS},
}

# Explicit [0-9]: Python's \d would also accept other scripts' digits, which NFKC leaves unchanged.
_ERA = r"(?P<era>明治|大正|昭和|平成|令和|[MTSHRmtshr])\s*(?P<ey>[0-9]{1,2}|元)"
_MONTH_DAY_SEP = r"(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})"
_MONTH_DAY_KANJI = r"\s*年\s*(?P<m>[0-9]{1,2})\s*月\s*(?P<d>[0-9]{1,2})\s*日"


def _western(match: re.Match[str]) -> dt.date | None:
    return _calendar_date(int(match["y"]), int(match["m"]), int(match["d"]))


def _wareki(match: re.Match[str]) -> dt.date | None:
    era_year = 1 if match["ey"] == "元" else int(match["ey"])
    return _era_date(_ERA_BY_TOKEN[match["era"]], era_year, int(match["m"]), int(match["d"]))


_Form = tuple[re.Pattern[str], Callable[[re.Match[str]], dt.date | None]]
_STARTING_WITH_A_DIGIT: tuple[_Form, ...] = (
    (re.compile(r"(?P<y>[0-9]{4})" + _MONTH_DAY_SEP), _western),  # 2012-04-01, 2012/4/1, 2012.4.1
    (re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"), _western),  # 20120401
    (re.compile(r"(?P<y>[0-9]{4})" + _MONTH_DAY_KANJI), _western),  # 2012年4月1日
    (re.compile(r"(?P<era>[1-5])(?P<ey>[0-9]{2})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"), _wareki),  # 4240401
)
_STARTING_WITH_AN_ERA: tuple[_Form, ...] = (
    (re.compile(_ERA + _MONTH_DAY_SEP), _wareki),  # H24.4.1, H24/4/1, 平成24.4.1
    (re.compile(_ERA + _MONTH_DAY_KANJI), _wareki),  # 平成24年4月1日, 令和元年5月1日, H24年4月1日
)


@functools.lru_cache(maxsize=1 << 18)
def parse_date(text: str) -> dt.date | None:
    """One value in any recognized form → the date, or None if it is not a valid date (never a guess).

    Cached: a date column repeats the same few tens of thousands of values in every batch of an extract.
    """
    value = unicodedata.normalize("NFKC", text).strip()
    forms = _STARTING_WITH_A_DIGIT if value[:1].isdigit() else _STARTING_WITH_AN_ERA
    for form, to_date in forms:
        if match := form.fullmatch(value):
            return to_date(match)
    return None


def _calendar_date(year: int, month: int, day: int) -> dt.date | None:
    # Gregorian validity (leap years included) is exactly what datetime.date checks.
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _era_date(era: Era, era_year: int, month: int, day: int) -> dt.date | None:
    """和暦 → 西暦: 元年 is ``first_year``; the day must exist and lie inside the era (平成31年5月1日 does not)."""
    if era_year < 1:
        return None
    date = _calendar_date(era.first_year + era_year - 1, month, day)
    if date is None or date < era.first_day or (era.last_day is not None and date > era.last_day):
        return None
    return date


def parse_dates(values: pa.Array | pa.ChunkedArray) -> ParsedDates:
    """A column of date text → date32, parsing each distinct value once; blanks and invalid values are counted.

    Columns that already hold dates or timestamps are cast; integer columns (``20120401`` read as a number)
    are read as their decimal text.
    """
    column = _combined(values)
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        dates = column.cast(pa.date32())
        return ParsedDates(dates=dates, invalid=0, blank=dates.null_count)
    encoded = _dictionary_of_text(column)
    return _parse_dictionary(encoded)


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values


def _dictionary_of_text(column: pa.Array) -> pa.DictionaryArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(pa.dictionary(column.type.index_type, pa.string()))
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())  # integers, string_view, all-null columns
    return pc.dictionary_encode(column)


# The plain 西暦 forms (2012-04-01, 2012/4/1, 2012.4.1, 20120401) in ASCII with nothing around them: NFKC and
# trimming leave such a value unchanged, so parse_date would read it with the first or second form above.
# These are read vectorized; every other value goes to parse_date. RE2 has no back-references, hence one
# alternative per separator.
_PLAIN_WESTERN = "^(?:[0-9]{4}(?:-[0-9]{1,2}-|/[0-9]{1,2}/|\\.[0-9]{1,2}\\.)[0-9]{1,2}|[0-9]{8})$"
_YMD = "^(?P<y>[0-9]{4})[-/.]?(?P<m>[0-9]{1,2}?)[-/.]?(?P<d>[0-9]{1,2})$"
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _plain_western_dates(dictionary: pa.Array, plain: pa.Array) -> pa.Array:
    """date32 of the values where ``plain`` holds (null elsewhere, and where the day does not exist)."""
    n = len(dictionary)
    mask = np.asarray(plain.to_numpy(zero_copy_only=False), dtype=bool)
    y = np.ones(n, dtype=np.int64)
    m = np.ones(n, dtype=np.int64)
    d = np.ones(n, dtype=np.int64)
    if mask.any():
        parts = pc.extract_regex(pc.filter(dictionary, plain), _YMD)
        for out, field in ((y, "y"), (m, "m"), (d, "d")):
            out[mask] = pc.cast(pc.struct_field(parts, field), pa.int64()).to_numpy()
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_ok = (m >= 1) & (m <= 12)
    last_day = _DAYS_IN_MONTH[np.where(month_ok, m, 1)] + (leap & (m == 2))
    valid = mask & (y >= 1) & month_ok & (d >= 1) & (d <= last_day)
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    yy = y - (m <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return pa.array(days.astype(np.int32), pa.int32(), mask=~valid).cast(pa.date32())


def _parse_dictionary(encoded: pa.DictionaryArray) -> ParsedDates:
    """Each distinct value once: the plain 西暦 forms vectorized, every other value by :func:`parse_date`."""
    dictionary = encoded.dictionary
    plain = pc.fill_null(pc.match_substring_regex(dictionary, _PLAIN_WESTERN), False)
    parsed = _plain_western_dates(dictionary, plain)
    is_blank = pa.array(np.zeros(len(dictionary), dtype=bool))
    rest = pc.invert(plain)
    if pc.any(rest).as_py():
        others: list[str | None] = pc.filter(dictionary, rest).to_pylist()  # None only in a given dictionary
        from_python = pa.array([None if text is None else parse_date(text) for text in others], pa.date32())
        blank_others = pa.array([text is None or not text.strip() for text in others], pa.bool_())
        parsed = pc.replace_with_mask(parsed, rest, from_python)
        is_blank = pc.replace_with_mask(is_blank, rest, blank_others)
    dates = parsed.take(encoded.indices)
    blank = encoded.null_count + _count_true(is_blank.take(encoded.indices))
    return ParsedDates(dates=dates, invalid=dates.null_count - blank, blank=blank)


def _count_true(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def coarsen_dates(dates: pa.Array, to: Literal["month", "year"]) -> pa.Array:
    """Truncate date32 values to the 1st of their month (``month``) or to 1月1日 of their year (``year``)."""
    if to not in ("month", "year"):
        raise ValueError(f"coarsen_dates: to must be 'month' or 'year', not {to!r}")
    return pc.floor_temporal(dates, unit=to).cast(pa.date32())
