"""Benchmark: extract the 住民基本台帳 of a synthetic city against the pyarrow floor, in one script.

    .venv/bin/python benchmarks/bench_extract.py --residents 1500000

The floor reads the same CP932 CSV (every column as text, same block size) and writes the same rows to
Parquet (zstd) with pyarrow alone. Each run is a fresh subprocess so that its peak RSS is its own; the runs
alternate (floor, renkei, floor, renkei …) and the best time of each is compared, because this machine is
noisy. The ratio renkei / floor is the figure that matters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AS_OF = dt.date(2021, 1, 1)


def floor_run(source: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from renkei.sending.read import BLOCK_SIZE, read_header

    header = read_header(source, "cp932")
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(header.columns, pa.string()))
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(encoding="cp932", block_size=BLOCK_SIZE),
        convert_options=convert,
    )
    with pq.ParquetWriter(out / "floor.parquet", reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)


def renkei_run(source: Path, out: Path, home: Path) -> None:
    from renkei.sending.extract import extract
    from renkei.spec import bundled_specs, load_spec

    extract(load_spec(bundled_specs()["juki"]), source, AS_OF, out, home)


def synth_run(residents: int, out: Path) -> None:
    from renkei.sending.synth import generate_city

    snaps = generate_city(residents, AS_OF, out, seed=1, years=1, datasets=["juki"])
    print(json.dumps({"source": str(snaps[-1].paths["juki"]), "rows": snaps[-1].rows["juki"]}))


def child(kind: str, source: Path, out: Path, home: Path) -> None:
    start = time.perf_counter()
    if kind == "floor":
        floor_run(source, out)
    else:
        renkei_run(source, out, home)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "seconds": seconds, "peak_rss_mb": peak_mb}))


def run_child(kind: str, source: Path, work: Path, home: Path) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(dir=work, prefix=f"{kind}-"))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--source",
        str(source),
        "--out",
        str(out),
        "--home",
        str(home),
    ]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--residents", type=int, default=1_500_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--child", choices=["floor", "renkei", "synth"])
    parser.add_argument("--source", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    if args.child == "synth":
        synth_run(args.residents, args.out)
        return
    if args.child:
        child(args.child, args.source, args.out, args.home)
        return

    # The parent stays small and imports nothing heavy: on Linux a child's peak RSS starts from its parent's.
    work = Path(args.work or tempfile.mkdtemp(prefix="renkei-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "sender"
    if not (home / "pseudonym.key").exists():
        subprocess.run(
            [sys.executable, "-m", "renkei.cli.main", "sender", "init", "--home", str(home)],
            check=True,
            capture_output=True,
        )
    t0 = time.perf_counter()
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "synth",
        "--residents",
        str(args.residents),
        "--out",
        str(work / "raw"),
    ]
    made = json.loads(
        subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    )
    source, rows = Path(made["source"]), int(made["rows"])
    print(
        f"synthetic juki: {rows:,} rows, {source.stat().st_size / 1e6:.1f} MB CP932, {time.perf_counter() - t0:.1f} s"
    )

    results: dict[str, list[dict[str, float]]] = {"floor": [], "renkei": []}
    for i in range(args.repeats):
        for kind in ("floor", "renkei"):
            r = run_child(kind, source, work, home)
            results[kind].append(r)
            print(f"  run {i + 1} {kind:6s}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
    floor = min(r["seconds"] for r in results["floor"])
    best = min(r["seconds"] for r in results["renkei"])
    peak = max(r["peak_rss_mb"] for r in results["renkei"])
    floor_peak = max(r["peak_rss_mb"] for r in results["floor"])
    print(
        f"\nrenkei extract: {best:.2f} s ({rows / best:,.0f} rows/s), peak RSS {peak:.0f} MB\n"
        f"pyarrow floor:  {floor:.2f} s ({rows / floor:,.0f} rows/s), peak RSS {floor_peak:.0f} MB\n"
        f"ratio renkei/floor: {best / floor:.2f}  (target ≤ 2.0; peak RSS target ≤ 2048 MB)"
    )


if __name__ == "__main__":
    main()
