"""Dirty rows on purpose: the shares of odd and broken values each extract carries.

Real extracts are not clean, and the sending side has to cope with exactly these: mixed date forms, dates
that do not exist, blanks, full-width digits, trailing spaces, unreadable addresses. Every choice is drawn per
person or household id (:meth:`Rng.by_id`), so a person's quirks stay the same from one year to the next.
The shares are listed in ``docs/synthetic-city.md``.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth.dates import DateForm
from renkei.sending.synth.rng import Rng, choice_from
from renkei.sending.synth.vec import Array, join, take, where


def _forms(**shares: float) -> tuple[float, ...]:
    weights = [0.0] * len(DateForm)
    for name, share in shares.items():
        weights[DateForm[name]] = share
    weights[DateForm.ISO] = 1.0 - sum(weights)
    return tuple(weights)


# 生年月日 in the 住基 extract: ISO mostly, every other export form, and 0.3 % that cannot be read.
JUKI_BIRTH_FORMS: Final = _forms(
    SLASH=0.05, COMPACT=0.03, WAREKI=0.04, WAREKI_SHORT=0.02, ERA_CODE=0.01, FULLWIDTH=0.004,
    IMPOSSIBLE_DAY=0.001, ERA_OVERRUN=0.0005, BLANK=0.0015,
)  # fmt: skip
# The 介護 system prints 和暦, as care systems for the elderly often do; the others are mostly ISO.
KAIGO_BIRTH_FORMS: Final = _forms(WAREKI=0.55, WAREKI_SHORT=0.05, IMPOSSIBLE_DAY=0.0005, BLANK=0.0005)
OTHER_BIRTH_FORMS: Final = _forms(
    SLASH=0.03, COMPACT=0.02, FULLWIDTH=0.002, IMPOSSIBLE_DAY=0.0005, BLANK=0.0005
)
# Other date columns (住民となった日, 異動日, 認定日 …).
EVENT_DATE_FORMS: Final = _forms(SLASH=0.02, COMPACT=0.01)

NAME_TRAILING_SPACE: Final = 0.005  # 氏名 followed by spaces (fixed-width export remnants)
NAME_HALFWIDTH_SEPARATOR: Final = 0.003  # family and given name separated by an ASCII space
ADDRESS_TRAILING_SPACE: Final = 0.003
ADDRESS_BLANK: Final = 0.001
ADDRESS_JUNK: Final = 0.0005
JUNK_ADDRESSES: Final = (
    "不明", "＊＊＊＊", "?", "住所不定", "神戸市", "ｺｳﾍﾞｼ ﾁｭｳｵｳｸ", "#REF!", "0", '"不明"', "神戸市中央区,以下不明",
)  # fmt: skip
POSTAL_WITHOUT_HYPHEN: Final = 0.08


def date_forms(rng: Rng, name: str, ids: Array, weights: tuple[float, ...]) -> Array:
    """A stable date form per id (a person keeps the form their record was typed in)."""
    return choice_from(rng.by_id(name, ids), weights)


def spoil_names(rng: Rng, name: str, ids: Array, names: Array) -> Array:
    """Some names get trailing spaces, some an ASCII space between family and given name."""
    u = rng.by_id(name, ids)
    halfwidth = pc.less(u, NAME_HALFWIDTH_SEPARATOR)
    trailing = pc.and_(pc.invert(halfwidth), pc.less(u, NAME_HALFWIDTH_SEPARATOR + NAME_TRAILING_SPACE))
    names = where(halfwidth, pc.replace_substring(names, "\u3000", " "), names)
    return where(trailing, join(names, "  "), names)


def spoil_addresses(rng: Rng, name: str, ids: Array, addresses: Array) -> Array:
    """A few addresses blank, unreadable or with trailing spaces."""
    u = rng.by_id(name, ids)
    junk = take(
        JUNK_ADDRESSES,
        pc.cast(pc.floor(pc.multiply(rng.by_id(name + ".junk", ids), len(JUNK_ADDRESSES))), pa.int64()),
    )
    addresses = where(pc.less(u, ADDRESS_BLANK), "", addresses)
    addresses = where(
        pc.and_(pc.greater_equal(u, ADDRESS_BLANK), pc.less(u, ADDRESS_BLANK + ADDRESS_JUNK)), junk, addresses
    )
    trailing = pc.greater_equal(u, 1.0 - ADDRESS_TRAILING_SPACE)
    return where(trailing, join(addresses, "\u3000"), addresses)


def postal_codes(rng: Rng, name: str, ids: Array, codes: Array) -> Array:
    return where(
        pc.less(rng.by_id(name, ids), POSTAL_WITHOUT_HYPHEN), pc.replace_substring(codes, "-", ""), codes
    )
