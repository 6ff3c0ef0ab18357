"""Time the re-identification risk report on a juki-like Parquet file against the floor of one group-by.

    .venv/bin/python benchmarks/bench_risk.py [--rows 1000000] [--repeat 3]

The file has juki's six quasi-identifiers (age, 性別, 国籍, 住所_ward, 住所_town, household_size from
household_id), built once with numpy outside the timing. The floor is reading the file and one GROUP BY over
the full set (what a k-anonymity check alone costs); the report runs one group-by per combination (42 with the
default bound of 3), the minimal-sample-unique anti-joins and the household sizes. Best of ``--repeat`` wall
times; the figures in docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from renkei.hub.risk import RiskThresholds, risk_report

QIS = ("age", "性別", "国籍", "住所_ward", "住所_town", "household_size")


def make(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    households = rng.integers(0, rows // 2, rows)
    table = pa.table(
        {
            "pid": pa.array(np.char.add("p", np.arange(rows).astype(str))),
            "household_id": pa.array(np.char.add("h", households.astype(str))),
            "age": pa.array(rng.integers(0, 100, rows).astype("int16")),
            "性別": pa.array(rng.choice(["1", "2"], rows)),
            "国籍": pa.array(rng.choice(["日本", "中国", "韓国"], rows, p=[0.97, 0.02, 0.01])),
            "住所_ward": pa.array(rng.choice([f"{i}区" for i in range(9)], rows)),
            "住所_town": pa.array(rng.choice([f"町{i}" for i in range(300)], rows)),
        }
    )
    pq.write_table(table, path)


def floor(path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "SELECT count(*) FROM (SELECT count(*) FROM read_parquet(?) "
        'GROUP BY age, "性別", "国籍", "住所_ward", "住所_town", household_id)',
        [str(path)],
    ).fetchall()
    con.close()


def best(repeat: int, run: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "juki.parquet"
        make(path, args.rows)
        base = best(args.repeat, lambda: floor(path))
        report = best(args.repeat, lambda: risk_report(path, QIS, RiskThresholds()))
    print(
        f"rows {args.rows:,}: floor (one group-by) {base:.2f} s, risk report {report:.2f} s, ratio {report / base:.1f}"
    )


if __name__ == "__main__":
    main()
