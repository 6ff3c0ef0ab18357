"""Password hashing and the rules for new passwords (checklist rows 9 and 10; ASVS 6.2.x, 11.4.2)."""

from __future__ import annotations

import pytest
from argon2 import Type, extract_parameters
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.hub.access.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    PRODUCTION_PARAMETERS,
    HashParameters,
    Passwords,
    WeakPasswordError,
    blocklist,
    check_new_password,
)
from tests.support.examples import scaled

TEST_HASHING = HashParameters(time_cost=1, memory_kib=64, parallelism=1)  # tests only


@pytest.fixture(scope="module")
def fast() -> Passwords:
    return Passwords(TEST_HASHING)


def reason_for(password: str, **context: str) -> str:
    with pytest.raises(WeakPasswordError) as caught:
        check_new_password(password, **context)
    return caught.value.reason


# --- storage ------------------------------------------------------------------------------------------------


def test_production_hash_is_argon2id_at_asvs_parameters() -> None:
    encoded = Passwords().hash("correct horse battery staple")
    params = extract_parameters(encoded)
    assert encoded.startswith("$argon2id$v=19$")
    assert params.type is Type.ID
    assert (params.time_cost, params.memory_cost, params.parallelism) == (1, 46 * 1024, 1)
    assert params.salt_len * 8 >= 128  # NIST: at least 32 bits
    assert PRODUCTION_PARAMETERS.meets_asvs()


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        (HashParameters(1, 46 * 1024, 1), True),
        (HashParameters(1, 46 * 1024 - 1, 1), False),
        (HashParameters(2, 19 * 1024, 1), True),
        (HashParameters(2, 19 * 1024 - 1, 1), False),
        (HashParameters(3, 12 * 1024, 1), True),
        (HashParameters(3, 12 * 1024 - 1, 1), False),
        (TEST_HASHING, False),
    ],
)
def test_asvs_appendix_c_table(params: HashParameters, ok: bool) -> None:
    assert params.meets_asvs() is ok


def test_weaker_hashes_are_flagged_for_rehash(fast: Passwords) -> None:
    old = fast.hash("correct horse battery staple")
    assert Passwords(HashParameters(2, 128, 1)).needs_rehash(old)
    assert not fast.needs_rehash(old)
    assert fast.needs_rehash("not a hash at all")


def test_round_trip_and_salting(fast: Passwords) -> None:
    first, second = fast.hash("correct horse battery staple"), fast.hash("correct horse battery staple")
    assert first != second  # a fresh salt each time
    assert fast.verify(first, "correct horse battery staple")
    assert not fast.verify(first, "correct horse battery stapl")
    assert not fast.verify("garbage", "correct horse battery staple")


def test_nfkc_full_width_and_half_width_are_the_same_password(fast: Passwords) -> None:
    encoded = fast.hash("ｃｏｒｒｅｃｔ　ｈｏｒｓｅ　ｂａｔｔｅｒｙ")
    assert fast.verify(encoded, "correct horse battery")


def test_no_truncation_at_64_or_256(fast: Passwords) -> None:
    sixty_four = "a1b2c3d4e5f6g7h8" * 4
    encoded = fast.hash(sixty_four)
    assert fast.verify(encoded, sixty_four)
    assert not fast.verify(encoded, sixty_four + "x")  # a 65th character changes the result
    long = "長い文章のパスワード" * 25 + "末尾"
    assert len(long) <= MAX_LENGTH
    assert not fast.verify(fast.hash(long), long[:-1] + "尾尾")


def test_absurdly_long_or_unencodable_input_is_refused_not_crashing(fast: Passwords) -> None:
    encoded = fast.hash("correct horse battery staple")
    assert not fast.verify(encoded, "x" * 100_000)
    assert not fast.verify(encoded, "\ud800 lone surrogate")


@settings(max_examples=scaled(0.4))  # an argon2 hash per example
@given(st.text(min_size=1, max_size=80))
def test_any_text_round_trips(password: str) -> None:
    hasher = Passwords(TEST_HASHING)
    try:
        encoded = hasher.hash(password)
    except UnicodeEncodeError:
        return  # lone surrogates cannot be typed; verify() refuses them
    assert hasher.verify(encoded, password)


# --- rules for a new password -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "黄色い潜水艦で海底を旅する",
        "Tr0ub4dor&3-horse",
        "alllowercaseletterswithoutdigits",  # no composition rules
        "x" * 3 + "7q!Lm2#Pz9vK",
        "🐙 octopus ink 墨 2026",
        "p" + "q7Wz" * 63 + "end",  # 256 characters
    ],
)
def test_reasonable_passwords_are_accepted(password: str) -> None:
    check_new_password(password, login_id="yamada.taro", display_name="山田 太郎")


def test_length_limits_count_characters_after_nfkc() -> None:
    assert reason_for("a7#Kq2!mZp9") == "too_short"  # 11
    check_new_password("a7#Kq2!mZp9x")  # 12
    check_new_password("日本語の長い合言葉ですよね")  # 13 characters, 39 bytes
    assert reason_for("q7Wz" * 64 + "a") == "too_long"
    assert MIN_LENGTH == 12


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "qwerty123456",
        "iloveyou2024",
        "P@ssw0rd2024",
        "Password!!!!",
        "1qaz2wsx3edc",
        "sunshine0000",
    ],
)
def test_common_passwords_are_refused(password: str) -> None:
    assert reason_for(password) in {"common", "repetitive"}


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaaaa",
        "abcabcabcabc",
        "abcdefghijkl",
        "123456789012",
        "qwertyuiopas",
        "zyxwvutsrqpo",
        "あいうえおかきくけこさし",
    ],
)
def test_repetitive_and_sequential_strings_are_refused(password: str) -> None:
    assert reason_for(password) == "repetitive"


@pytest.mark.parametrize(
    ("password", "login_id", "display_name"),
    [
        ("renkei-kobe-2024", "", ""),
        ("神戸市役所パスワード123", "", ""),
        ("yamada.taro1985", "yamada.taro", ""),
        ("TaroYamada!!2026", "", "Taro Yamada"),
        ("山田太郎です神戸が大好き", "", "山田 太郎"),
    ],
)
def test_context_words_alone_are_refused(password: str, login_id: str, display_name: str) -> None:
    assert reason_for(password, login_id=login_id, display_name=display_name) == "context"


def test_context_words_with_enough_of_ones_own_are_fine() -> None:
    check_new_password("renkei is where tomatoes ripen", login_id="renkei")


def test_control_characters_are_refused() -> None:
    assert reason_for("correct horse\nbattery") == "invalid_character"


def test_every_rejection_gives_a_reason_in_japanese_then_english() -> None:
    for password in ("short", "password1234", "aaaaaaaaaaaa", "renkei-kobe-2024"):
        with pytest.raises(WeakPasswordError) as caught:
            check_new_password(password)
        error = caught.value
        assert any(ord(ch) > 0x3000 for ch in error.ja)
        assert error.en.isascii() and error.en
        assert error.render().index(error.ja) < error.render().index(error.en)


def test_blocklist_is_shipped_and_large_enough() -> None:
    words = blocklist()
    assert len(words) >= 3000  # ASVS 6.2.4: at least the top 3000
    assert {"password", "123456", "qwerty123456"} <= words


@settings(max_examples=scaled(2))
@given(st.text(max_size=300))
def test_the_rules_either_accept_or_explain(password: str) -> None:
    try:
        check_new_password(password, login_id="sato", display_name="佐藤 花子")
    except WeakPasswordError as exc:
        assert exc.reason and exc.ja and exc.en
