"""Vault throughput and memory: store and decrypt-to-memfd of a ~100 MB Parquet file, against the floors.

    .venv/bin/python benchmarks/bench_vault.py [--mb 100] [--reps 3]

Floors, measured in the same run on the same file: copying the bytes (``shutil.copyfile``, to disk with an
fsync and into a memfd) and plain age (pyrage ``encrypt_file``/``decrypt_file``, no vault around it). Each
operation runs in a fresh process so its peak RSS is its own; times are best and median of ``--reps`` with a
warm page cache. Results go to stdout as a Markdown table (docs/vault.md quotes them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyrage

from renkei.hub.keys import AesGcmKek
from renkei.hub.vault import SnapshotRef, Vault

OPERATIONS = {
    "copy": "shutil.copyfile to disk + fsync (floor for store)",
    "age-encrypt": "pyrage.encrypt_file, plain age (floor for store)",
    "vault-store": "Vault.store: age + wrapped DEK + hashes + fsyncs + rename",
    "copy-memfd": "shutil.copyfile into a memfd (floor for decrypt)",
    "age-decrypt": "pyrage.decrypt_file into a memfd, plain age (floor for decrypt)",
    "vault-memfd": "Vault.decrypt_to_memfd: unwrap + age + seal",
    "vault-stream": "Vault.open_plain read to the end (pipe + thread)",
}
KEK = bytes(range(32))
PERIOD = dt.date(2024, 1, 1)


def make_parquet(path: Path, megabytes: int) -> None:
    """Incompressible columns, so the file is about ``megabytes`` MB after zstd."""
    rows = megabytes * 1_000_000 // 32
    pid = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), rows, [None, pa.py_buffer(os.urandom(16 * rows))]
    )
    numbers = pa.Array.from_buffers(pa.int64(), rows, [None, pa.py_buffer(os.urandom(8 * rows))])
    amounts = pa.Array.from_buffers(pa.float64(), rows, [None, pa.py_buffer(os.urandom(8 * rows))])
    pq.write_table(pa.table({"pid": pid, "n": numbers, "amount": amounts}), path, compression="zstd")


def memfd_target() -> tuple[int, str]:
    fd = os.memfd_create("bench", os.MFD_CLOEXEC)
    return fd, f"/proc/self/fd/{fd}"


def operation(name: str, work: Path) -> Callable[[int], None]:
    """The timed body of one operation; ``rep`` keeps repeated stores from colliding."""
    plain, vault = work / "data.parquet", Vault(work / "vault", AesGcmKek(KEK, "bench"))
    identity = pyrage.x25519.Identity.generate()
    ref = SnapshotRef("bench", PERIOD, 1)

    def copy(rep: int) -> None:
        target = work / f"copy{rep}.parquet"
        shutil.copyfile(plain, target)
        with target.open("rb") as f:
            os.fsync(f.fileno())

    def into_memfd(body: Callable[[str], object]) -> None:
        fd, path = memfd_target()
        try:
            body(path)
        finally:
            os.close(fd)

    def store(rep: int) -> None:
        vault.store(SnapshotRef("bench", PERIOD, 10 + rep), {"data.parquet": plain})

    def read_to_end(rep: int) -> None:
        with vault.open_plain(ref, "data.parquet") as stream:
            while stream.read(1 << 20):
                pass

    age_file = str(work / "plain.age")
    bodies: dict[str, Callable[[int], None]] = {
        "copy": copy,
        "age-encrypt": lambda rep: pyrage.encrypt_file(
            str(plain), f"{age_file}{rep}", [identity.to_public()]
        ),
        "vault-store": store,
        "copy-memfd": lambda rep: into_memfd(lambda path: shutil.copyfile(plain, path)),
        "age-decrypt": lambda rep: into_memfd(lambda path: pyrage.decrypt_file(age_file, path, [identity])),
        "vault-memfd": lambda rep: os.close(vault.decrypt_to_memfd(ref, "data.parquet")),
        "vault-stream": read_to_end,
    }
    if name == "age-decrypt":
        pyrage.encrypt_file(str(plain), age_file, [identity.to_public()])
    if name in ("vault-memfd", "vault-stream") and not vault.exists(ref):
        vault.store(ref, {"data.parquet": plain})
    return bodies[name]


def rss_bytes(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process; the peak starts afresh at exec, unlike ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def run_child(name: str, work: Path, reps: int) -> None:
    body = operation(name, work)
    start_rss = rss_bytes("VmRSS")
    times = []
    for rep in range(reps):
        started = time.perf_counter()
        body(rep)
        times.append(time.perf_counter() - started)
    print(json.dumps({"times": times, "start_rss": start_rss, "peak_rss": rss_bytes("VmHWM")}))


def measure(name: str, work: Path, reps: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", name, "--work", str(work), "--reps", str(reps)]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(child.stdout)
    return {
        "best": min(result["times"]),
        "median": statistics.median(result["times"]),
        "peak_mb": result["peak_rss"] / 1e6,
        "growth_mb": (result["peak_rss"] - result["start_rss"]) / 1e6,
    }


def report(size: int, results: dict[str, dict[str, float]], argv: list[str]) -> str:
    lines = [
        f"command: `.venv/bin/python benchmarks/bench_vault.py {' '.join(argv)}`".replace("  ", " "),
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}",
        f"file: {size / 1e6:.1f} MB Parquet (zstd, incompressible columns)",
        "",
        "| operation | best s | median s | MB/s (best) | peak RSS MB | RSS growth MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name}: {OPERATIONS[name]} | {r['best']:.3f} | {r['median']:.3f} | {size / 1e6 / r['best']:.0f} "
            f"| {r['peak_mb']:.0f} | {r['growth_mb']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", choices=OPERATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.work, args.reps)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-vault-"))
    try:
        make_parquet(work / "data.parquet", args.mb)
        results = {name: measure(name, work, args.reps) for name in OPERATIONS}
        print(report((work / "data.parquet").stat().st_size, results, sys.argv[1:]))
    finally:
        for path in work.rglob("*"):
            if path.is_dir():
                path.chmod(0o700)  # snapshot dirs are read-only
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
