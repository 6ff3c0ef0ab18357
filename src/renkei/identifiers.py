"""個人識別符号 (APPI 法2条2項, 施行令1条, 規則2–4条): check digits and the leftover scan.

Columns that hold an identifier are declared in the dataset spec (role ``identifier`` with an
:class:`~renkei.identifier_kinds.IdentifierKind`) and deleted. The leftover scan is the safety net behind
that declaration: every kept text column is searched for values shaped like an identifier, and any hit stops
the extract. The hub runs the same scan over the metadata of every Parquet file it imports
(:mod:`renkei.hub.parquet_check`); this module holds no key and reads no raw export, so it is shared, outside
``sending/``. A hit reports the column, the kind and the number of rows, never a value. Rules, sources and
false-positive rates are in docs/rules/identifiers.md.

The scan is vectorized (pyarrow compute, RE2) and reads each distinct value once, weighted by the number of
rows holding it (kept columns and truncated addresses repeat heavily). (1) One pass over the distinct values
keeps only those that could hold
a value at all: three digits in a row or an ``@`` (full-width included), or a character that NFKC turns into
digits. (2) Of those, rows with characters that NFKC could turn into something a pattern reads are
NFKC-normalized. (3) Each shape's pattern selects candidate rows; the check digit (or phone-number length)
of each candidate's first match is computed in bulk with integer kernels. Only a row whose first match
fails and that holds more text is searched again, in Python, for every match.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from stdnum import luhn
from stdnum.jp import in_ as my_number

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


# Hyphen-like separators in Japanese data after NFKC (－ becomes -; ‐ − ー stay as they are). Escaped "-"
# so that the string can go inside a character class in both RE2 and Python re.
_DASHES = r"\-‐‑‒–—―−ー"
_SEP = f"[{_DASHES} ]"
_MY_NUMBER_FORM = re.compile(
    f"[0-9]{{12}}|[0-9]{{4}}[{_DASHES}][0-9]{{4}}[{_DASHES}][0-9]{{4}}|[0-9]{{4}}( [0-9]{{4}}){{2}}"
)


def is_valid_my_number(number: str) -> bool:
    """12 digits, or 4-4-4 with hyphens or with spaces (full-width accepted), whose 12th is the check digit."""
    text = _compact(number)
    return _MY_NUMBER_FORM.fullmatch(text) is not None and bool(
        my_number.is_valid(re.sub("[^0-9]", "", text))
    )


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


# Step 1, on raw text: every shape needs three ASCII digits in a row or an "@" after NFKC. Three digits in a
# row after NFKC come from three adjacent [0-9０-９] (each maps to one digit, and no character maps to
# nothing) or involve another character whose NFKC holds a digit (①, ², ㉑, ㋀ = 1月, 𝟏 …), all of which are
# in _NFKC_DIGIT_SOURCES. tests/unit/test_identifiers.py checks both facts over every code point.
_NFKC_DIGIT_SOURCES = (
    r"[\p{No}\p{Nl}\x{1D7CE}-\x{1D7FF}\x{1FBF0}-\x{1FBF9}\x{3200}-\x{33FF}\x{1F100}-\x{1F1FF}]"
)
_PREFILTER = f"[0-9０-９]{{3}}|[@＠﹫]|{_NFKC_DIGIT_SOURCES}"
# Step 2: NFKC is slow, and a row made only of ASCII, kana and kanji reads the same to every shape before
# and after it (tested over every code point, except ゛゜ and the ideographic space, which are left out).
_NEEDS_NFKC = r"[^\x{0000}-\x{007F}\x{3001}-\x{309A}\x{309D}-\x{30FF}\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}]"


@dataclass(frozen=True)
class _Shape:
    """One written form of a leftover kind: a pattern, what may not touch it, and a vectorized check."""

    kind: str
    core: str  # valid in both RE2 (pyarrow) and Python re
    touching: str = ""  # class body of characters that may not be adjacent: "0-9"
    chain: str = ""  # class body of separators: a grouped value may not continue with one and a digit
    verify: Callable[[pa.Array], pa.Array] | None = None  # matched text → bool; None: the shape suffices

    def re2(self, group: str = "?P<v>") -> str:
        """RE2 has no look-around, so the context is consumed instead; the value is the group ``v``."""
        before, after = "", ""
        if self.touching and self.chain:
            t, c = self.touching, self.chain
            before = f"(?:^|^[{c}]|[^{t}{c}]|[^{t}][{c}])"
            after = f"(?:$|[{c}]$|[^{t}{c}]|[{c}][^{t}])"
        elif self.touching:
            before, after = f"(?:^|[^{self.touching}])", f"(?:[^{self.touching}]|$)"
        return f"{before}({group}{self.core}){after}"

    def python(self) -> re.Pattern[str]:
        return _python_pattern(self.core, self.touching, self.chain)


@functools.cache
def _python_pattern(core: str, touching: str, chain: str) -> re.Pattern[str]:
    before = f"(?<![{touching}])" if touching else ""
    after = f"(?![{touching}])" if touching else ""
    if chain:
        before += f"(?<![{touching}][{chain}])"
        after += f"(?![{chain}][{touching}])"
    return re.compile(f"{before}(?:{core}){after}")


def _digits_from_right(numbers: pa.Array, count: int) -> list[pa.Array]:
    """The last ``count`` decimal digits of non-negative int64 values, rightmost first."""
    digits = []
    for _ in range(count):
        digits.append(pc.modulo(numbers, 10))
        numbers = pc.divide(numbers, 10)
    return digits


def _my_numbers_valid(digits: pa.Array) -> pa.Array:
    """Vectorized :func:`is_valid_my_number` of 12-digit strings: Pn (n-th digit from the right of the first
    11) × Qn, with Qn = n + 1 for n ≤ 6 and n − 5 above."""
    check, *body = _digits_from_right(pc.cast(digits, pa.int64()), 12)
    total = _weighted_sum(body, [n + 1 if n <= 6 else n - 5 for n in range(1, 12)])
    remainder = pc.modulo(total, 11)
    expected = pc.if_else(pc.less_equal(remainder, 1), 0, pc.subtract(11, remainder))
    return pc.equal(expected, check)


def _grouped_my_numbers_valid(matched: pa.Array) -> pa.Array:
    return _my_numbers_valid(_only_digits(matched))


def _insurer_numbers_valid(matched: pa.Array) -> pa.Array:
    """Vectorized 検証番号 check of 8-digit 保険者番号: Luhn, doubling every other digit from the last body digit."""
    check, *body = _digits_from_right(pc.cast(matched, pa.int64()), 8)
    doubled = [
        pc.if_else(pc.less(d, 5), pc.multiply(d, 2), pc.subtract(pc.multiply(d, 2), 9)) for d in body[::2]
    ]
    total = _weighted_sum([*doubled, *body[1::2]], [1] * len(body))
    return pc.equal(pc.modulo(pc.subtract(10, pc.modulo(total, 10)), 10), check)


def _weighted_sum(digits: list[pa.Array], weights: list[int]) -> pa.Array:
    total = pc.multiply(digits[0], weights[0])
    for digit, weight in zip(digits[1:], weights[1:], strict=True):
        total = pc.add(total, pc.multiply(digit, weight))
    return total


def _phone_numbers_valid(matched: pa.Array) -> pa.Array:
    """Japanese numbers have 10 digits with the leading 0, or 11 for 0A0 numbers (020, 050 IP, 070/080/090
    mobile, 0800); a second digit 0 is an international prefix, so not a number."""
    national = _only_digits(pc.replace_substring_regex(matched, rf"^\+81{_SEP}?(?:\(0\))?", "0"))
    length = pc.utf8_length(national)
    eleven_digits = pc.match_substring_regex(national, "^0[2-9]0")
    right_length = pc.if_else(eleven_digits, pc.equal(length, 11), pc.equal(length, 10))
    return pc.and_(right_length, pc.invert(pc.match_substring_regex(national, "^00")))


def _only_digits(text: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(text, "[^0-9]", "")


# 保険者番号 (8 digits): 法別番号 01 協会けんぽ, 02 船員保険, 06 健保組合, 31–34 共済, 39 後期高齢者 (domain.md §3.2),
# then a 都道府県番号 01–47. Other 8-digit runs (dates, amounts, codes) rarely start this way.
_INSURER_NUMBER = r"(?:0[126]|3[12349])(?:0[1-9]|[1-3][0-9]|4[0-7])[0-9]{4}"
_PHONE = "|".join(
    (
        f"0[0-9]{{1,4}}{_SEP}[0-9]{{1,4}}{_SEP}[0-9]{{3,4}}",  # 078-331-8181, 090-1234-5678, 0120-123-456
        rf"\(0[0-9]{{1,4}}\) ?[0-9]{{1,4}}{_SEP}?[0-9]{{3,4}}",  # (078)331-8181
        r"0[0-9]{1,4}\([0-9]{1,4}\)[0-9]{3,4}",  # 078(331)8181
        "0[2-9]0[0-9]{8}",  # 09012345678, 05012345678 (without separators: only 0A0 numbers)
        rf"\+81{_SEP}?(?:\(0\))?[0-9]{{1,4}}{_SEP}[0-9]{{1,4}}{_SEP}[0-9]{{3,4}}",  # +81-78-331-8181
        r"\+81[0-9]{9,10}",  # +819012345678
    )
)
_SHAPES: tuple[_Shape, ...] = (
    _Shape("my_number", "[0-9]{12}", "0-9", verify=_my_numbers_valid),
    # 4-4-4 with hyphens or with spaces, not part of a longer chain of groups (1234-5678-9012-3456).
    _Shape(
        "my_number",
        f"[0-9]{{4}}[{_DASHES}][0-9]{{4}}[{_DASHES}][0-9]{{4}}",
        "0-9",
        _DASHES,
        _grouped_my_numbers_valid,
    ),
    _Shape("my_number", "[0-9]{4} [0-9]{4} [0-9]{4}", "0-9", " ", _grouped_my_numbers_valid),
    _Shape("insurer_number", _INSURER_NUMBER, "0-9", verify=_insurer_numbers_valid),
    _Shape("passport", "[A-Z]{2}[0-9]{7}", "A-Za-z0-9"),
    _Shape("phone", _PHONE, "0-9", verify=_phone_numbers_valid),
    _Shape("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
)
_ANY_SHAPE = "|".join(shape.re2(group="?:") for shape in _SHAPES)


def scan_leftovers(column: str, values: pa.Array | pa.ChunkedArray) -> list[LeftoverHit]:
    """Rows of a kept column holding a value shaped like a My Number (valid check digit), a 保険者番号 (valid
    検証番号 and 法別番号), a Japanese passport number, a phone number or an e-mail address, per kind.

    Text and integer columns are scanned (NFKC-normalized first); other types raise TypeError. Each distinct
    value is scanned once and counts for the rows that hold it (kept columns repeat their values).
    """
    counted_values = pc.value_counts(_as_text(column, values))
    texts, weights = counted_values.field("values"), counted_values.field("counts")
    texts, weights = _normalized_candidates(texts, weights)
    maybe = pc.match_substring_regex(texts, _ANY_SHAPE)
    texts, weights = texts.filter(maybe), weights.filter(maybe)
    found: dict[str, pa.Array] = {}
    for shape in _SHAPES:
        hit = _shape_hits(shape, texts)
        found[shape.kind] = pc.or_(found[shape.kind], hit) if shape.kind in found else hit
    counted = ((kind, _rows_of(mask, weights)) for kind, mask in found.items())
    return [LeftoverHit(column=column, kind=kind, rows=n) for kind, n in counted if n]


def _rows_of(mask: pa.Array, weights: pa.Array) -> int:
    """How many rows hold the distinct values where ``mask`` is true."""
    return int(pc.sum(weights.filter(mask)).as_py() or 0)


def _as_text(column: str, values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.cast(kind.value_type), kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return values
    if pa.types.is_string_view(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind):
        return values.cast(pa.string())
    raise TypeError(f"scan_leftovers: column {column!r} has type {kind}; only text and integers are scanned")


def _normalized_candidates(text: pa.Array, weights: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Values that pass the prefilter, NFKC-normalized where that can matter, and their weights; the order
    of values is not kept (the weights follow their values)."""
    passed = pc.match_substring_regex(text, _PREFILTER)
    rows, weights = text.filter(passed), weights.filter(passed)
    needs_nfkc = pc.match_substring_regex(rows, _NEEDS_NFKC)
    plain = pc.invert(needs_nfkc)
    normalized = pc.utf8_normalize(rows.filter(needs_nfkc), "NFKC")
    return (
        pa.concat_arrays([rows.filter(plain), normalized]),
        pa.concat_arrays([weights.filter(plain), weights.filter(needs_nfkc)]),
    )


def _shape_hits(shape: _Shape, rows: pa.Array) -> pa.Array:
    """Per row: does it hold a value of this shape that passes the shape's check?"""
    is_candidate = pc.match_substring_regex(rows, shape.re2())
    if shape.verify is None or not _count_true(is_candidate):
        return is_candidate
    verified = _verified(shape, shape.verify, rows.filter(is_candidate))
    return pc.replace_with_mask(is_candidate, is_candidate, verified)


def _verified(shape: _Shape, verify: Callable[[pa.Array], pa.Array], candidates: pa.Array) -> pa.Array:
    """Check the first match of each candidate in bulk (a cell that is only the value is its own match). A
    cell whose first match fails and that holds more than that match is searched again in Python."""
    trimmed = pc.utf8_trim_whitespace(candidates)
    bare = pc.match_substring_regex(trimmed, f"^(?:{shape.core})$")
    embedded = pc.invert(bare)
    first = trimmed
    if _count_true(embedded):
        extracted = pc.extract_regex(candidates.filter(embedded), shape.re2()).field("v")
        first = pc.replace_with_mask(trimmed, embedded, extracted)
    passed = verify(first)
    retry = pc.and_(pc.invert(passed), embedded)
    if not _count_true(retry):
        return passed
    passed_later = _verified_in_python(shape.python(), verify, candidates.filter(retry).to_pylist())
    return pc.or_(passed, pc.replace_with_mask(retry, retry, passed_later))


def _verified_in_python(
    pattern: re.Pattern[str], verify: Callable[[pa.Array], pa.Array], texts: list[str]
) -> pa.Array:
    owners, matches = [], []
    for row, text in enumerate(texts):
        for match in pattern.finditer(text):
            owners.append(row)
            matches.append(match.group())
    passed = [False] * len(texts)
    if matches:
        for row, ok in zip(owners, verify(pa.array(matches, pa.string())).to_pylist(), strict=True):
            passed[row] = passed[row] or ok
    return pa.array(passed, pa.bool_())


def _count_true(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)
