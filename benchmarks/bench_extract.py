"""Benchmark: extract the 住民基本台帳 of a synthetic city against the pyarrow floor, in one script.

    .venv/bin/python benchmarks/bench_extract.py --residents 1500000 --rows12 1000000

Two files are measured: the synthetic city's ``juki.csv`` (17 columns, ``--residents`` rows) and a 12-column
住基 file of ``--rows12`` rows (宛名番号, 世帯番号, 氏名, 氏名カナ, 住所, 方書, 生年月日, 個人番号, 性別, 続柄,
異動事由, 異動日: the first rows of the same juki, those columns, CP932), extracted with the juki spec cut to
those columns. The floor reads the same CP932 CSV (every column as text, 32 MB and 64 MB blocks, the faster counts) and
writes the same rows to Parquet (zstd) with pyarrow alone. Each run is a fresh subprocess so that its peak RSS is its own; the runs
alternate (floor, renkei, floor, renkei …) and the best time of each is compared, because this machine is
noisy. The ratio renkei / floor is the figure that matters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AS_OF = dt.date(2021, 1, 1)
# The floor reads with pyarrow's 32 MB and 64 MB blocks (the extract reads with read.BLOCK_SIZE); the
# faster of all floor runs is the floor.
FLOORS = ("floor32", "floor64")
COLUMNS12 = (
    "宛名番号",
    "世帯番号",
    "氏名",
    "氏名カナ",
    "住所",
    "方書",
    "生年月日",
    "個人番号",
    "性別",
    "続柄",
    "異動事由",
    "異動日",
)


def floor_run(source: Path, out: Path, block_size: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from renkei.sending.read import read_header

    header = read_header(source, "cp932")
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(header.columns, pa.string()))
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(encoding="cp932", block_size=block_size),
        convert_options=convert,
    )
    with pq.ParquetWriter(out / "floor.parquet", reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)


def renkei_run(source: Path, out: Path, home: Path, spec: Path | None) -> None:
    from renkei.sending.extract import extract
    from renkei.spec import bundled_specs, load_spec

    extract(load_spec(spec or bundled_specs()["juki"]), source, AS_OF, out, home)


def make12_run(juki: Path, rows: int, out: Path) -> None:
    """The 12-column 住基 file and its spec (the juki spec's lines for those columns)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from renkei.sending.read import read_header
    from renkei.spec import bundled_specs

    header = read_header(juki, "cp932")
    table = pacsv.read_csv(
        juki,
        read_options=pacsv.ReadOptions(encoding="cp932"),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header.columns, pa.string()), include_columns=list(COLUMNS12)
        ),
    ).slice(0, rows)
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(quoting_style="needed"))
    csv_path = out / "juki12.csv"
    csv_path.write_bytes(buffer.getvalue().decode("utf-8").encode("cp932"))
    lines = bundled_specs()["juki"].read_text(encoding="utf-8").splitlines()
    keep = [ln for ln in lines if not ln.startswith("  ") or ln.split(":")[0].strip() in COLUMNS12]
    # quasi-identifiers of columns the file lacks (国籍) are left out, or the spec would not load
    keep = [_quasi12(ln) if ln.startswith("quasi_identifiers:") else ln for ln in keep]
    text = "\n".join(keep).replace("dataset: juki", "dataset: juki12") + "\n"
    (out / "juki12.yaml").write_text(text, encoding="utf-8")
    print(json.dumps({"source": str(csv_path), "spec": str(out / "juki12.yaml"), "rows": table.num_rows}))


def _quasi12(line: str) -> str:
    names = [n.strip() for n in line.split("[", 1)[1].rstrip("]").split(",")]
    kept = [n for n in names if n in COLUMNS12 or n in ("age", "household_size") or n.startswith("住所_")]
    return f"quasi_identifiers: [{', '.join(kept)}]"


def synth_run(residents: int, out: Path) -> None:
    from renkei.sending.synth import generate_city

    snaps = generate_city(residents, AS_OF, out, seed=1, years=1, datasets=["juki"])
    print(json.dumps({"source": str(snaps[-1].paths["juki"]), "rows": snaps[-1].rows["juki"]}))


def child(kind: str, source: Path, out: Path, home: Path, spec: Path | None) -> None:
    start = time.perf_counter()
    if kind.startswith("floor"):
        floor_run(source, out, int(kind.removeprefix("floor")) << 20)
    else:
        renkei_run(source, out, home, spec)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    print(json.dumps({"kind": kind, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_mb}))


def run_child(kind: str, source: Path, work: Path, home: Path, spec: Path | None) -> dict[str, float]:
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
        *(["--spec", str(spec)] if spec else []),
    ]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def measure(
    label: str, source: Path, rows: int, spec: Path | None, args: argparse.Namespace, work: Path
) -> None:
    home = work / "sender"
    print(f"{label}: {rows:,} rows, {source.stat().st_size / 1e6:.1f} MB CP932")
    results: dict[str, list[dict[str, float]]] = {"floor": [], "renkei": []}
    for i in range(args.repeats):
        for kind in (*FLOORS, "renkei"):
            r = run_child(kind, source, work, home, spec)
            results["renkei" if kind == "renkei" else "floor"].append(r)
            print(
                f"  run {i + 1} {kind:7s}: {r['seconds']:.2f} s (CPU {r['cpu_seconds']:.2f} s), "
                f"peak RSS {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    floor = min(r["seconds"] for r in results["floor"])
    best = min(r["seconds"] for r in results["renkei"])
    peak = max(r["peak_rss_mb"] for r in results["renkei"])
    floor_peak = max(r["peak_rss_mb"] for r in results["floor"])
    print(
        f"  renkei extract: {best:.2f} s ({rows / best:,.0f} rows/s), peak RSS {peak:.0f} MB\n"
        f"  pyarrow floor:  {floor:.2f} s ({rows / floor:,.0f} rows/s), peak RSS {floor_peak:.0f} MB\n"
        f"  ratio renkei/floor: {best / floor:.2f}  (target ≤ 1.5; peak RSS target ≤ 1024 MB)\n",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--residents", type=int, default=1_500_000)
    parser.add_argument("--rows12", type=int, default=1_000_000, help="rows of the 12-column file (0: skip)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--child", choices=[*FLOORS, "renkei", "synth", "make12"])
    parser.add_argument("--spec", type=Path)
    parser.add_argument("--source", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    if args.child == "synth":
        synth_run(args.residents, args.out)
        return
    if args.child == "make12":
        make12_run(args.source, args.rows12, args.out)
        return
    if args.child:
        child(args.child, args.source, args.out, args.home, args.spec)
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
    made_path = work / "raw" / "made.json"
    if made_path.exists():  # --work of an earlier run: reuse its files
        made = json.loads(made_path.read_text())
    else:
        synth = [sys.executable, __file__, "--child", "synth", "--residents", str(args.residents)]
        made = _last_json([*synth, "--out", str(work / "raw")])
        if args.rows12:
            make12 = [sys.executable, __file__, "--child", "make12", "--source", made["source"]]
            made["twelve"] = _last_json([*make12, "--rows12", str(args.rows12), "--out", str(work / "raw")])
        made_path.write_text(json.dumps(made))
    print(f"inputs ready in {time.perf_counter() - t0:.1f} s", flush=True)
    measure("synthetic juki (17 columns)", Path(made["source"]), int(made["rows"]), None, args, work)
    if "twelve" in made:
        t = made["twelve"]
        measure("12-column 住基 file", Path(t["source"]), int(t["rows"]), Path(t["spec"]), args, work)


def _last_json(cmd: list[str]) -> dict[str, Any]:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
