"""Time the sending-side column rules on synthetic columns: parse_dates, ages, scan_leftovers.

    .venv/bin/python benchmarks/bench_rules.py [--rows 1500000] [--repeat 3]

Prints, per case, the best of ``--repeat`` runs in wall-clock time and in CPU time of this process (the
second is steadier on a shared machine). Inputs are built once, outside the timing. The figures in
docs/rules/dates-and-ages.md and docs/rules/identifiers.md come from this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from collections.abc import Callable

import pyarrow as pa

from renkei.identifiers import my_number_check_digit, scan_leftovers
from renkei.sending.birthdate import ages
from renkei.sending.dates import parse_dates

AS_OF = dt.date(2025, 3, 31)
FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
ERAS = ((dt.date(1989, 1, 8), "平成", 1988), (dt.date(1926, 12, 25), "昭和", 1925))


def birth_dates(rng: random.Random, rows: int) -> list[dt.date]:
    start = dt.date(1920, 1, 1).toordinal()
    span = AS_OF.toordinal() - start
    return [dt.date.fromordinal(start + rng.randrange(span)) for _ in range(rows)]


def wareki(day: dt.date) -> str:
    for first, name, offset in ERAS:
        if day >= first:
            return f"{name}{day.year - offset}年{day.month}月{day.day}日"
    return f"大正{day.year - 1911}年{day.month}月{day.day}日"


def free_text(rng: random.Random, rows: int) -> list[str]:
    """備考-like notes: most without digits, some with amounts, dates and 3-digit codes; all distinct."""
    forms = (
        "{n}回目の相談。特記事項なし",
        "{n}円を支給 (2024/4/1)",
        "窓口で受付 番号{n:07d}",
        "電話連絡済み {n}",
    )
    return [rng.choice(forms).format(n=i) for i in range(rows)]


def twelve_digit_codes(rows: int) -> list[str]:
    """The worst case: a kept column that is really a My Number column, every value distinct and candidate."""
    first11 = (f"{i:011d}" for i in range(10**10, 10**10 + rows))
    return [f"{body}{my_number_check_digit(body)}" for body in first11]


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(20250331)  # noqa: S311 - synthetic benchmark data, not a secret
    rows: int = args.rows

    births = birth_dates(rng, rows)
    relationships = ["世帯主", "妻", "子", "母", "父", "孫", "子の妻", "同居人", "夫", "兄"]
    addresses = [
        f"神戸市中央区加納町{rng.randint(1, 6)}丁目{rng.randint(1, 30)}番".translate(FULL_WIDTH)
        for _ in range(rows)
    ]
    cases: list[tuple[str, Callable[[], object]]] = []
    iso = pa.array([b.isoformat() for b in births])
    japanese = pa.array([wareki(b) for b in births])
    date32 = pa.array(births, pa.date32())
    cases += [
        ("parse_dates ISO 2012-04-01 (~38k distinct)", lambda: parse_dates(iso)),
        ("parse_dates 和暦 平成24年4月1日 (~38k distinct)", lambda: parse_dates(japanese)),
        ("ages (date32)", lambda: ages(date32, AS_OF)),
    ]
    kept = pa.array([rng.choice(relationships) for _ in range(rows)])
    address = pa.array(addresses)
    notes = pa.array(free_text(rng, rows))
    codes = pa.array(twelve_digit_codes(rows))
    cases += [
        ("scan_leftovers 続柄 (10 distinct)", lambda: scan_leftovers("続柄", kept)),
        ("scan_leftovers 住所 after truncation (full-width digits)", lambda: scan_leftovers("住所", address)),
        ("scan_leftovers 備考 free text (all distinct)", lambda: scan_leftovers("備考", notes)),
        ("scan_leftovers worst case: 12-digit My Numbers", lambda: scan_leftovers("番号", codes)),
    ]
    print(f"rows: {rows:,}, best of {args.repeat}\n   wall      cpu")
    for name, run in cases:
        wall, cpu = best_of(args.repeat, run)
        print(f"{wall:7.3f}  {cpu:7.3f} s  {name}")


if __name__ == "__main__":
    main()
