"""個人識別符号 (APPI 法2条2項, 施行令1条, 規則2–4条): kinds, check digits, and the leftover scan.

Columns that hold an identifier are declared in the dataset spec (role ``identifier`` with an
:class:`IdentifierKind`) and deleted. The leftover scan is the safety net behind that declaration: every kept
text column is searched for values shaped like an identifier, and any hit stops the extract. A hit reports
the column, the kind and the number of rows, never a value. Rules, sources and false-positive rates are in
docs/rules/identifiers.md.

The scan is vectorized in three steps. (1) One RE2 pass over the raw text keeps only rows that could hold an
identifier at all: a run of three digits or an ``@`` (full-width included), or a character that NFKC turns
into digits. (2) Those rows are counted per distinct value and NFKC-normalized. (3) Each detector's RE2
pattern selects candidate values; check digits and phone-number lengths are verified in Python on those
candidates only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc
from stdnum import luhn
from stdnum.jp import in_ as my_number


class IdentifierKind(StrEnum):
    """Kinds of 個人識別符号 a dataset spec can declare for a column (施行令1条, 規則3条・4条)."""

    MY_NUMBER = "my_number"
    JUMINHYO_CODE = "juminhyo_code"
    KISO_NENKIN = "kiso_nenkin"
    PASSPORT = "passport"
    DRIVER_LICENSE = "driver_license"
    HEALTH_INSURANCE = "health_insurance"
    CARE_INSURANCE = "care_insurance"
    ZAIRYU_CARD = "zairyu_card"
    OTHER = "other"


LABELS_JA: dict[IdentifierKind, str] = {
    IdentifierKind.MY_NUMBER: "個人番号",
    IdentifierKind.JUMINHYO_CODE: "住民票コード",
    IdentifierKind.KISO_NENKIN: "基礎年金番号",
    IdentifierKind.PASSPORT: "旅券番号",
    IdentifierKind.DRIVER_LICENSE: "運転免許証番号",
    IdentifierKind.HEALTH_INSURANCE: "保険者番号・被保険者記号番号",
    IdentifierKind.CARE_INSURANCE: "介護保険被保険者番号",
    IdentifierKind.ZAIRYU_CARD: "在留カード番号",
    IdentifierKind.OTHER: "その他",
}


# ---------------------------------------------------------------------------------------------------------
# Check digits. Errors name the expected shape, never the value (it may be a real identifier).


def _digits(text: str, length: int, what: str) -> str:
    if len(text) != length or not text.isascii() or not text.isdigit():
        raise ValueError(f"{what} needs exactly {length} ASCII digits")
    return text


def _compact(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def my_number_check_digit(first11: str) -> int:
    """個人番号の検査用数字 (総務省令第85号 第5条): 11 − (Σ Pn×Qn mod 11), 0 when the remainder is 0 or 1."""
    return int(my_number.calc_check_digit(_digits(first11, 11, "my_number_check_digit")))


_MY_NUMBER_FORM = re.compile(r"[0-9]{12}|[0-9]{4}(?P<sep>[- ])[0-9]{4}(?P=sep)[0-9]{4}")


def is_valid_my_number(number: str) -> bool:
    """12 digits (or 4-4-4 with spaces or hyphens; full-width accepted) whose 12th digit is the check digit."""
    text = _compact(number)
    return _MY_NUMBER_FORM.fullmatch(text) is not None and bool(my_number.is_valid(text))


def insurer_number_check_digit(body: str) -> int:
    """保険者番号の検証番号: weights 2,1,2,… from the last digit, digit sum of products, 10 − sum mod 10 (0 if 0).

    ``body`` is the 保険者番号 without its last digit: 7 digits (社保・後期高齢者) or 5 digits (国保). This
    is the Luhn algorithm, so python-stdnum's implementation is used.
    """
    if len(body) not in (5, 7):
        raise ValueError("insurer_number_check_digit needs 7 digits (社保) or 5 digits (国保)")
    return int(luhn.calc_check_digit(_digits(body, len(body), "insurer_number_check_digit")))


def _prefecture_code(code: str) -> bool:
    return 1 <= int(code) <= 47


def is_valid_insurer_number(number: str) -> bool:
    """保険者番号: 8 digits (法別番号 2 + 都道府県 2 + 保険者別 3 + 検証番号) or 6 digits (国保: 都道府県 2 +
    保険者別 3 + 検証番号), with a 都道府県番号 01–47 and a valid 検証番号."""
    text = _compact(number)
    if len(text) not in (6, 8) or not text.isascii() or not text.isdigit():
        return False
    prefecture = text[-6:-4]
    return _prefecture_code(prefecture) and insurer_number_check_digit(text[:-1]) == int(text[-1])


_DRIVER_LICENSE_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def driver_license_check_digit(first10: str) -> int:
    """運転免許証番号の11桁目 (unofficial, reverse-engineered): (11 − Σ wᵢdᵢ mod 11) mod 10, w = 5,4,3,2,7,6,5,4,3,2."""
    digits = _digits(first10, 10, "driver_license_check_digit")
    total = sum(weight * int(digit) for weight, digit in zip(_DRIVER_LICENSE_WEIGHTS, digits, strict=True))
    return (11 - total % 11) % 10


def is_valid_driver_license(number: str) -> bool:
    """12 digits whose 11th digit is :func:`driver_license_check_digit` of the first 10 (12th: 再交付回数)."""
    text = _compact(number)
    if len(text) != 12 or not text.isascii() or not text.isdigit():
        return False
    return driver_license_check_digit(text[:10]) == int(text[10])


# ---------------------------------------------------------------------------------------------------------
# Leftover scan


LEFTOVER_LABELS_JA: dict[str, str] = {
    "my_number": "個人番号",
    "insurer_number": "保険者番号",
    "passport": "旅券番号",
    "phone": "電話番号",
    "email": "メールアドレス",
}


@dataclass(frozen=True)
class LeftoverHit:
    """Rows of a kept column holding an identifier-shaped value. Carries no value, by design."""

    column: str
    kind: str  # "my_number", "insurer_number", "passport", "phone", "email"
    rows: int  # number of rows containing at least one such value

    def describe(self) -> str:
        """The report line, Japanese first: column, kind and row count only."""
        label = LEFTOVER_LABELS_JA.get(self.kind, self.kind)
        return (
            f"列「{self.column}」の {self.rows} 行に{label}の形の値があります"
            f" (column {self.column!r}: {self.rows} rows hold a value shaped like {self.kind})"
        )


# Step 1 prefilter, on raw text. Every detector needs three ASCII digits in a row or an "@" after NFKC.
# A run of three ASCII digits after NFKC comes either from three adjacent [0-9０-９] (each maps to one digit
# and no character maps to nothing) or involves another character whose NFKC contains a digit: ①, ²,
# ㉑, ㋀ (1月), 𝟏 … all of which are in _NFKC_DIGIT_SOURCES. tests/unit/test_identifiers.py checks these
# facts over every Unicode code point.
_NFKC_DIGIT_SOURCES = r"[\p{No}\p{Nl}\x{1D7CE}-\x{1D7FF}\x{1FBF0}-\x{1FBF9}\x{3200}-\x{33FF}\x{1F100}-\x{1F1FF}]"
_NFKC_AT_SOURCES = "[@＠﹫]"
_PREFILTER = f"[0-9０-９]{{3}}|{_NFKC_AT_SOURCES}|{_NFKC_DIGIT_SOURCES}"

# Hyphen-like separators seen in Japanese data after NFKC (－ becomes -; ‐ − ー stay as they are).
_SEP = "[-‐‑‒–—―−ー ]"


@dataclass(frozen=True)
class _Detector:
    """One kind of leftover: an RE2 pattern for candidate values and, where needed, an exact Python check."""

    kind: str
    candidate: str  # RE2 (pyarrow), run over NFKC-normalized distinct values
    exact: re.Pattern[str] | None = None  # Python; None: every candidate is a hit
    verify: Callable[[str], bool] | None = None  # check digit or length, on each exact match

    def contains_valid(self, text: str) -> bool:
        assert self.exact is not None and self.verify is not None
        return any(self.verify(match.group()) for match in self.exact.finditer(text))


def _isolated_re2(core: str, touching: str) -> str:
    """RE2 has no look-around: consume one non-``touching`` character (or an edge) on each side instead."""
    return f"(?:^|[^{touching}])(?:{core})(?:[^{touching}]|$)"


def _isolated(core: str, touching: str) -> re.Pattern[str]:
    return re.compile(f"(?<![{touching}])(?:{core})(?![{touching}])")


def _my_number_digits_valid(match: str) -> bool:
    digits = re.sub("[^0-9]", "", match)
    return my_number_check_digit(digits[:11]) == int(digits[11])


def _insurer_number_valid(match: str) -> bool:
    return insurer_number_check_digit(match[:7]) == int(match[7])


def _phone_length_valid(match: str) -> bool:
    """Japanese numbers have 10 digits with the leading 0, 11 for 0A0 numbers (050 IP, 070/080/090 mobile,
    020, 0800); a second digit 0 is an international prefix, not a number."""
    digits = re.sub("[^0-9]", "", match.replace("(0)", "", 1) if match.startswith("+81") else match)
    national = "0" + digits[2:] if match.startswith("+81") else digits
    if national[1] == "0":
        return False
    return len(national) == (11 if re.match("0[2-9]0", national) else 10)


# My Number: a 12-digit run, or 4-4-4 with one kind of separator that is not part of a longer chain of groups
# (1234-5678-9012-3456 is not a My Number followed by -3456).
_MY_NUMBER_GROUPED = r"[0-9]{4}[- ][0-9]{4}[- ][0-9]{4}"
_MY_NUMBER_EXACT = re.compile(
    r"(?<![0-9])[0-9]{12}(?![0-9])"
    r"|(?<![0-9])(?<![0-9][- ])[0-9]{4}(?P<sep>[- ])[0-9]{4}(?P=sep)[0-9]{4}(?![0-9])(?!(?P=sep)[0-9])"
)
# 保険者番号 (8 digits): 法別番号 01 協会けんぽ, 02 船員保険, 06 健保組合, 31–34 共済, 39 後期高齢者 (domain.md §3.2),
# then a 都道府県番号 01–47. Other 8-digit runs (dates, amounts, codes) rarely start this way.
_INSURER_NUMBER = r"(?:0[126]|3[12349])(?:0[1-9]|[1-3][0-9]|4[0-7])[0-9]{4}"
_PASSPORT = "[A-Z]{2}[0-9]{7}"
_PHONE = "|".join(
    (
        f"0[0-9]{{1,4}}{_SEP}[0-9]{{1,4}}{_SEP}[0-9]{{3,4}}",  # 078-331-8181, 090-1234-5678, 0120-123-456
        rf"\(0[0-9]{{1,4}}\) ?[0-9]{{1,4}}{_SEP}?[0-9]{{3,4}}",  # (078)331-8181
        rf"0[0-9]{{1,4}}\([0-9]{{1,4}}\)[0-9]{{3,4}}",  # 078(331)8181
        "0[2-9]0[0-9]{8}",  # 09012345678, 05012345678 (no separators: only 0A0 numbers)
        rf"\+81{_SEP}?(?:\(0\))?[0-9]{{1,4}}{_SEP}[0-9]{{1,4}}{_SEP}[0-9]{{3,4}}",  # +81-78-331-8181
        r"\+81[0-9]{9,10}",  # +819012345678
    )
)
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"

_DETECTORS: tuple[_Detector, ...] = (
    _Detector(
        "my_number",
        _isolated_re2(f"[0-9]{{12}}|{_MY_NUMBER_GROUPED}", "0-9"),
        _MY_NUMBER_EXACT,
        _my_number_digits_valid,
    ),
    _Detector(
        "insurer_number",
        _isolated_re2(_INSURER_NUMBER, "0-9"),
        _isolated(_INSURER_NUMBER, "0-9"),
        _insurer_number_valid,
    ),
    _Detector("passport", _isolated_re2(_PASSPORT, "A-Za-z0-9")),
    _Detector("phone", _isolated_re2(_PHONE, "0-9"), _isolated(_PHONE, "0-9"), _phone_length_valid),
    _Detector("email", _EMAIL),
)


def scan_leftovers(column: str, values: pa.Array | pa.ChunkedArray) -> list[LeftoverHit]:
    """Rows of a kept column holding a value shaped like a My Number (valid check digit), a 保険者番号 (valid
    検証番号 and 法別番号), a Japanese passport number, a phone number or an e-mail address, per kind.

    Text and integer columns are scanned (values are NFKC-normalized first); other types raise TypeError.
    """
    text = _as_text(column, values)
    candidates = text.filter(pc.match_substring_regex(text, _PREFILTER))
    if len(candidates) == 0:
        return []
    distinct = pc.value_counts(candidates)
    normalized = pc.utf8_normalize(distinct.field("values"), "NFKC")
    counts = distinct.field("counts")
    hits = []
    for detector in _DETECTORS:
        rows = _rows_with(detector, normalized, counts)
        if rows:
            hits.append(LeftoverHit(column=column, kind=detector.kind, rows=rows))
    return hits


def _rows_with(detector: _Detector, normalized: pa.Array, counts: pa.Array) -> int:
    """Rows (Σ counts) whose distinct value holds at least one verified match of the detector."""
    is_candidate = pc.match_substring_regex(normalized, detector.candidate)
    if detector.exact is None:
        return int(pc.sum(counts.filter(is_candidate)).as_py() or 0)
    texts = normalized.filter(is_candidate).to_pylist()
    rows = counts.filter(is_candidate).to_pylist()
    return sum(n for text, n in zip(texts, rows, strict=True) if detector.contains_valid(text))


def _as_text(column: str, values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.cast(kind.value_type), kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return values
    if pa.types.is_string_view(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind):
        return values.cast(pa.string())
    raise TypeError(f"scan_leftovers: column {column!r} has type {kind}; only text and integers are scanned")
