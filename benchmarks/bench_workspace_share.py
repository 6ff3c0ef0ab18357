"""Benchmark: N workspaces over the same snapshots, with the shared snapshot cache and without it, in one run.

    .venv/bin/python benchmarks/bench_workspace_share.py --dir /tmp/bs --residents 300000 --years 10 --workspaces 4
    .venv/bin/python benchmarks/bench_workspace_share.py --dir /tmp/bs --reuse --workspaces 4   # measure again

The hub is bench_workspace.py's (juki + kaigo per year, an analyst granted every snapshot). For each mode,
``--workspaces`` workspaces are opened one after another and kept open (as the portal keeps one per login
session), each timed from ``Workspace.open`` to the answer of its first query (Q1); then:

- plaintext held: the distinct sealed memfds the workers hold (by inode; their sizes summed) — what the
  decrypted snapshots take in memory (shmem), exact and unaffected by other processes;
- the hub process's shmem + the workers' RSS, sampled from /proc (the workers' DuckDB buffers come on top).

"shared" is the hub's cache (``hub.snapshot_cache``, idle time 0): the first workspace decrypts, the next ones
lease the same memfds. "unshared" gives every workspace a cache of its own, so each decrypts its own copy —
what every workspace did before the cache. The modes alternate (unshared, shared, unshared, shared with
``--rounds 2``) so that a change in the machine's load does not favour one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_workspace import Q1, build, reopen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=300_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--workspaces", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    hub, actor, _ = reopen(args.dir) if args.reuse else build(args.dir, args.residents, args.years)
    from renkei.hub.workspace.workspace import Workspace

    Workspace.open(hub, actor).close()  # the first workspace of a process also finds the worker's interpreter
    results: dict[str, list[dict[str, Any]]] = {"unshared": [], "shared": []}
    for _ in range(args.rounds):
        for mode in ("unshared", "shared"):
            results[mode].append(measure(hub, actor, args.workspaces, shared=mode == "shared"))
    report(results, args)


def measure(hub: Any, actor: Any, count: int, *, shared: bool) -> dict[str, Any]:
    from renkei.hub.workspace.gate import SnapshotCache
    from renkei.hub.workspace.workspace import Workspace

    common = SnapshotCache(hub.vault, idle=0)
    workspaces, opens, loads = [], [], []
    decryptions = 0  # of the snapshots' data (the record keys load after Q1, in the background)
    try:
        for _ in range(count):
            cache = hub.snapshot_cache = common if shared else SnapshotCache(hub.vault, idle=0)
            loads.append(os.getloadavg()[0])
            start = time.perf_counter()
            before = cache.decryptions
            workspace = Workspace.open(hub, actor)
            decryptions += cache.decryptions - before
            workspace.query(Q1)
            opens.append(time.perf_counter() - start)
            workspaces.append(workspace)
        time.sleep(1)
        plaintext = _plaintext([w.worker.pid for w in workspaces])
        rss = sum(_status(w.worker.pid, "VmRSS") for w in workspaces)
        shmem = _status(os.getpid(), "RssShmem")
    finally:
        for workspace in workspaces:
            workspace.close()
    return {"open": opens, "plaintext": plaintext, "rss": rss, "shmem": shmem, "decryptions": decryptions,
            "load": loads}  # fmt: skip


def _plaintext(pids: list[int]) -> int:
    """Bytes of the distinct memfds the processes hold."""
    sizes: dict[int, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            if str(fd.readlink()).startswith("/memfd:"):
                info = fd.stat()
                sizes[info.st_ino] = info.st_size
    return sum(sizes.values())


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    mib = 1 << 20
    print(f"{args.workspaces} workspaces over the same snapshots, one after another, kept open; "
          f"{args.rounds} round(s); load average {os.getloadavg()}")  # fmt: skip
    for mode, runs in results.items():
        for number, r in enumerate(runs, 1):
            print(
                f"{mode:8} round {number}: open+Q1 first {r['open'][0]:.2f} s, later "
                f"{statistics.median(r['open'][1:]) if len(r['open']) > 1 else 0:.2f} s (median), "
                f"all {', '.join(f'{t:.2f}' for t in r['open'])}; data files decrypted {r['decryptions']}; plaintext "
                f"{r['plaintext'] / mib:.0f} MiB; workers' RSS {r['rss'] / mib:.0f} MiB; load "
                f"{', '.join(f'{x:.1f}' for x in r['load'])}"
            )
    unshared, shared = results["unshared"][-1], results["shared"][-1]
    later_u = statistics.median(unshared["open"][1:]) if args.workspaces > 1 else unshared["open"][0]
    later_s = statistics.median(shared["open"][1:]) if args.workspaces > 1 else shared["open"][0]
    print(
        f"ratio unshared/shared: plaintext {unshared['plaintext'] / shared['plaintext']:.1f}x, "
        f"later open+Q1 {later_u / later_s:.1f}x"
    )


if __name__ == "__main__":
    main()
