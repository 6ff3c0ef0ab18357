from __future__ import annotations

import dataclasses
import re
import sys
import unicodedata
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei import identifiers
from renkei.identifier_kinds import LABELS_JA, IdentifierKind
from renkei.identifiers import (
    LEFTOVER_LABELS_JA,
    LeftoverHit,
    driver_license_check_digit,
    insurer_number_check_digit,
    is_valid_driver_license,
    is_valid_insurer_number,
    is_valid_my_number,
    my_number_check_digit,
    scan_leftovers,
)


def test_every_kind_has_a_japanese_label() -> None:
    assert set(LABELS_JA) == set(IdentifierKind)
    assert LABELS_JA[IdentifierKind.MY_NUMBER] == "個人番号"
    assert IdentifierKind("juminhyo_code") is IdentifierKind.JUMINHYO_CODE


# ---- check digits: every worked example of domain.md §3.2 ----


@pytest.mark.parametrize(
    ("first11", "check"),
    [("12345678901", 8), ("98320567321", 4), ("62149832025", 7), ("00000000000", 0)],
)
def test_my_number_worked_examples(first11: str, check: int) -> None:
    assert my_number_check_digit(first11) == check
    assert is_valid_my_number(f"{first11}{check}")
    assert not is_valid_my_number(f"{first11}{(check + 1) % 10}")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("6214 9832 0257", True),
        ("6214-9832-0257", True),
        ("6214−9832−0257", True),  # U+2212, as some converters write the hyphen
        ("６２１４－９８３２－０２５７", True),
        ("６２１４９８３２０２５７", True),
        (" 621498320257 ", True),
        ("6214-9832 0257", False),  # mixed separators
        ("62149832025", False),
        ("6214983202570", False),
        ("62149832025X", False),
        ("", False),
    ],
)
def test_is_valid_my_number_forms(text: str, valid: bool) -> None:
    assert is_valid_my_number(text) is valid


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_my_number_check_digit_is_the_official_formula(first11: str) -> None:
    # 総務省令第85号 第5条, transcribed: Pn counts from the right, Qn = n + 1 (n ≤ 6) or n − 5 (n ≥ 7)
    total = sum(int(first11[-n]) * (n + 1 if n <= 6 else n - 5) for n in range(1, 12))
    remainder = total % 11
    assert my_number_check_digit(first11) == (0 if remainder <= 1 else 11 - remainder)


def test_each_my_number_body_has_exactly_one_valid_last_digit() -> None:
    # so a random 12-digit string passes with probability 1/10
    for body in (f"{n:011d}" for n in range(0, 10**11, 7_919_999_999)):
        assert sum(is_valid_my_number(f"{body}{d}") for d in range(10)) == 1


@pytest.mark.parametrize(
    ("body", "check"),
    [("3312001", 5), ("0628001", 0), ("3928010", 2), ("28001", 6)],  # the last: a 6-digit 国保 number
)
def test_insurer_number_worked_examples(body: str, check: int) -> None:
    assert insurer_number_check_digit(body) == check
    assert is_valid_insurer_number(f"{body}{check}")
    assert not is_valid_insurer_number(f"{body}{(check + 1) % 10}")


@pytest.mark.parametrize("text", ["06000010", "06480014", "0628001", "062800100", "33l20015", "480012"])
def test_invalid_insurer_numbers(text: str) -> None:
    assert not is_valid_insurer_number(text)


@pytest.mark.parametrize(("first10", "check"), [("3090123456", 2), ("6320123456", 7)])
def test_driver_license_worked_examples(first10: str, check: int) -> None:
    assert driver_license_check_digit(first10) == check
    assert is_valid_driver_license(f"{first10}{check}0")
    assert not is_valid_driver_license(f"{first10}{(check + 1) % 10}0")
    assert not is_valid_driver_license(f"{first10}{check}")


@pytest.mark.parametrize(
    ("function", "text"),
    [
        (my_number_check_digit, "1234567890"),
        (my_number_check_digit, "１２３４５６７８９０１"),
        (insurer_number_check_digit, "331200"),
        (driver_license_check_digit, "30901234a6"),
    ],
)
def test_check_digit_errors_do_not_repeat_the_input(function: Callable[[str], int], text: str) -> None:
    with pytest.raises(ValueError, match="digits") as raised:
        function(text)
    assert text not in str(raised.value)


# ---- vectorized checks agree with the scalar ones ----

DIGITS12 = st.text(alphabet="0123456789", min_size=12, max_size=12)


@given(st.lists(DIGITS12, min_size=1, max_size=50))
def test_vectorized_my_number_check(numbers: list[str]) -> None:
    bulk = identifiers._my_numbers_valid(pa.array(numbers)).to_pylist()
    assert bulk == [is_valid_my_number(n) for n in numbers]


@given(st.lists(st.text(alphabet="0123456789", min_size=8, max_size=8), min_size=1, max_size=50))
def test_vectorized_insurer_number_check(numbers: list[str]) -> None:
    bulk = identifiers._insurer_numbers_valid(pa.array(numbers)).to_pylist()
    assert bulk == [insurer_number_check_digit(n[:7]) == int(n[7]) for n in numbers]


# ---- leftover scan ----


def kinds(*texts: str | None) -> dict[str, int]:
    return {hit.kind: hit.rows for hit in scan_leftovers("備考", pa.array(list(texts), pa.string()))}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("123456789018", "my_number"),
        ("個人番号は123456789018です", "my_number"),
        ("9832 0567 3214", "my_number"),
        ("番号:6214-9832-0257。", "my_number"),
        ("番号 6214−9832−0257", "my_number"),
        ("６２１４９８３２０２５７", "my_number"),
        ("①２３４５６７８９０１８", "my_number"),  # ① is 1 under NFKC
        ("番号 123456789019 訂正後 123456789018", "my_number"),  # the second value is valid
        ("33120015", "insurer_number"),
        ("保険者番号06280010", "insurer_number"),
        ("39280102 後期", "insurer_number"),
        ("TH1234567", "passport"),
        ("旅券 MZ0000000 更新", "passport"),
        ("ＴＨ１２３４５６７", "passport"),
        ("078-331-8181", "phone"),
        ("(078)331-8181", "phone"),
        ("(078) 331-8181", "phone"),
        ("078(331)8181", "phone"),
        ("03-1234-5678", "phone"),
        ("TEL 090-1234-5678", "phone"),
        ("09012345678", "phone"),
        ("080 1234 5678", "phone"),
        ("050-1234-5678", "phone"),
        ("0120-123-456", "phone"),
        ("0800-123-4567", "phone"),
        ("０７８－３３１－８１８１", "phone"),
        ("078ー331ー8181", "phone"),
        ("+81-78-331-8181", "phone"),
        ("+81 90 1234 5678", "phone"),
        ("+81(0)78-331-8181", "phone"),
        ("+819012345678", "phone"),
        ("taro.yamada@example.jp", "email"),
        ("連絡先 taro_y+1@mail.example.co.jp まで", "email"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "email"),
    ],
)
def test_identifier_shaped_values_are_found(text: str, kind: str) -> None:
    assert kinds(text) == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "12345678901",  # 11 digits
        "1234567890180",  # 13 digits (holds a valid 12-digit run)
        "0123456789018",
        "123456789019",  # wrong check digit
        "1234-5678-9019",
        "1234-5678-9018-3456",  # a longer chain of groups
        "1234 5678 9018 3456",
        "1234-5678 9018",  # mixed separators
        "123,456,789,018",
        "金額 1,234,567,890円",
        "支給額 123456789円",
        "0000123456",  # zero-padded codes
        "00001234567",
        "000000000001",
        "20120401",  # dates
        "2012-04-01",
        "2012/04/01",
        "平成24年4月1日",
        "〒650-0001",
        "33120016",  # wrong 検証番号
        "20120405",  # 法別番号 20 is not in the list
        "06480010",  # 都道府県 48
        "0628001",  # 7 digits
        "th1234567",  # passport letters are capitals
        "ABC1234567",
        "AB12345678",
        "03-1234-567",  # 9 digits
        "090-1234-56789",
        "00-1234-5678",
        "0-1234-5678",
        "0783318181",  # a landline without separators is not flagged (documented false negative)
        "foo@bar",
        "@example.jp",
        "神戸市中央区加納町６丁目５番",
        "第123号",
        "",
        None,
    ],
)
def test_near_misses_are_not_flagged(text: str | None) -> None:
    assert kinds(text) == {}


def test_rows_are_counted_per_kind_once_per_row() -> None:
    hits = kinds(
        "123456789018 と 983205673214",  # two My Numbers: one row
        "123456789018 / 078-331-8181",  # two kinds
        "123456789018",
        None,
        "特記事項なし",
        "taro@example.jp",
    )
    assert hits == {"my_number": 3, "phone": 1, "email": 1}


def test_hits_come_in_a_fixed_kind_order_with_the_column_name() -> None:
    hits = scan_leftovers("備考", pa.array(["a@example.jp 33120015 TH1234567 123456789018 03-1234-5678"]))
    assert [h.kind for h in hits] == ["my_number", "insurer_number", "passport", "phone", "email"]
    assert {h.column for h in hits} == {"備考"}
    assert set(LEFTOVER_LABELS_JA) == {h.kind for h in hits}


def test_chunked_dictionary_and_integer_columns() -> None:
    chunked = pa.chunked_array([["123456789018", "x"], ["983205673214"]])
    assert [(h.kind, h.rows) for h in scan_leftovers("c", chunked)] == [("my_number", 2)]
    dictionary = pa.array(["33120015", "33120015", "x"]).dictionary_encode()
    assert [(h.kind, h.rows) for h in scan_leftovers("c", dictionary)] == [("insurer_number", 2)]
    integers = pa.array([123456789018, 5, None], pa.int64())
    assert [(h.kind, h.rows) for h in scan_leftovers("c", integers)] == [("my_number", 1)]
    assert scan_leftovers("c", pa.array([], pa.string())) == []
    assert scan_leftovers("c", pa.array([None, None])) == []


def test_other_column_types_are_refused() -> None:
    with pytest.raises(TypeError, match="double"):
        scan_leftovers("金額", pa.array([1.5]))


def test_a_whole_column_of_identifiers_is_counted_exactly() -> None:
    numbers = [f"{n:011d}" for n in range(10**10, 10**10 + 2000)]
    valid = [f"{n}{my_number_check_digit(n)}" for n in numbers]
    invalid = [f"{n}{(my_number_check_digit(n) + 1) % 10}" for n in numbers[:500]]
    assert kinds(*valid, *invalid) == {"my_number": 2000}


def test_report_never_holds_a_value() -> None:
    assert [f.name for f in dataclasses.fields(LeftoverHit)] == ["column", "kind", "rows"]
    values = [
        "本人 123456789018",
        "9832 0567 3214",
        "保険者 33120015",
        "TH1234567",
        "携帯 090-1234-5678",
        "taro.yamada@example.jp",
    ]
    hits = scan_leftovers("備考", pa.array(values))
    assert len(hits) == 5
    report = "\n".join([*(h.describe() for h in hits), repr(hits), str(hits)])
    identifiers_in_values = [
        "123456789018", "983205673214", "9832 0567 3214", "33120015", "TH1234567",
        "090-1234-5678", "09012345678", "taro.yamada@example.jp", "taro.yamada",
    ]  # fmt: skip
    for secret in [*values, *identifiers_in_values]:
        assert secret not in report
    assert "列「備考」の 2 行に個人番号の形の値があります" in report


# ---- the prefilter and the NFKC shortcut hold for every code point ----


@pytest.fixture(scope="module")
def nfkc_of_every_code_point() -> list[tuple[str, str]]:
    pairs = []
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        pairs.append((char, unicodedata.normalize("NFKC", char)))
    return pairs


def matching(chars: list[str], pattern: str) -> list[str]:
    hits = pc.match_substring_regex(pa.array(chars), pattern).to_pylist()
    return [c for c, hit in zip(chars, hits, strict=True) if hit]


def test_prefilter_sees_every_character_that_becomes_a_digit_or_at(
    nfkc_of_every_code_point: list[tuple[str, str]],
) -> None:
    becomes_digit = [
        c
        for c, n in nfkc_of_every_code_point
        if re.search("[0-9]", n) and c not in "0123456789０１２３４５６７８９"
    ]
    assert len(becomes_digit) > 200
    assert matching(becomes_digit, identifiers._NFKC_DIGIT_SOURCES) == becomes_digit
    assert {c for c, n in nfkc_of_every_code_point if "@" in n} == set("@＠﹫")
    assert [c for c, n in nfkc_of_every_code_point if n == ""] == []
    assert max(len(n) for c, n in nfkc_of_every_code_point if c in "0123456789０１２３４５６７８９") == 1


def test_rows_skipped_by_nfkc_read_the_same_to_every_shape(
    nfkc_of_every_code_point: list[tuple[str, str]],
) -> None:
    separators = set("-‐‑‒–—―−ー ")
    matters = [
        c for c, n in nfkc_of_every_code_point if n != c and any(x.isascii() or x in separators for x in n)
    ]
    assert matching(matters, identifiers._NEEDS_NFKC) == matters


# ---- each distinct value is scanned once and counts for its rows ----

_SCAN_POOL = [
    "123456789018",
    "123456789019",
    "個人番号 9832-0567-3214",
    "33120015",
    "TH1234567",
    "090-1234-5678",
    "０９０－１２３４－５６７８",
    "taro@example.jp",
    "神戸市中央区加納町6丁目5番",
    "①②③",
    "",
    None,
]


@given(st.lists(st.sampled_from(_SCAN_POOL) | st.text(max_size=12), max_size=40))
def test_scanning_distinct_values_counts_like_scanning_each_row(values: list[str | None]) -> None:
    per_row: dict[str, int] = {}
    for value in values:
        for hit in scan_leftovers("c", pa.array([value], pa.string())):
            per_row[hit.kind] = per_row.get(hit.kind, 0) + hit.rows
    assert {h.kind: h.rows for h in scan_leftovers("c", pa.array(values, pa.string()))} == per_row
