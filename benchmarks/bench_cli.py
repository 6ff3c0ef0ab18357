"""CLI start-up: ``renkei --help`` and ``renkei catalog list`` against the interpreter's own start-up.

    .venv/bin/python benchmarks/bench_cli.py [--reps 15]

Each run is a fresh process started the way the ``renkei`` console script starts (``from renkei.cli.main
import app; app()``), on the source tree this script sits in, with its bytecode cached as an installed or an
editable package has it after its first run: the runs write and read their ``.pyc`` files in a private
``PYTHONPYCACHEPREFIX`` (filled by the warm-up runs), whatever ``PYTHONDONTWRITEBYTECODE`` says here.
``--no-bytecode-cache`` runs them with ``PYTHONDONTWRITEBYTECODE=1`` instead: renkei's own modules are then
compiled from source in every run (the installed libraries keep their ``.pyc`` files), as measured before stop
18. The floors, measured in the same run and
alternating with the commands: ``python -c pass`` (the interpreter), ``import typer.rich_utils`` (what any
Typer help screen loads) and ``import sqlalchemy.orm`` (what any command that reads the catalog must load). ``catalog list`` reads a fresh hub (``renkei hub init``: the six
bundled datasets, no snapshots), so its time is start-up, one recorded decision and one query. Reported: best
and median wall time of ``--reps`` runs each, and the best time as a multiple of ``python -c pass``'s best.
Results go to stdout as a Markdown table (docs/benchmarks.md quotes them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
RENKEI = "import sys; from renkei.cli.main import app; sys.exit(app())"
TARGETS = {"renkei --help": 0.4, "renkei catalog list": 0.8}  # seconds (issue 7)


def runs(home: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": ["-c", "pass"],
        "python -c 'import typer.rich_utils'": ["-c", "import typer.rich_utils"],
        "python -c 'import sqlalchemy.orm'": ["-c", "import sqlalchemy.orm"],
        "renkei --help": ["-c", RENKEI, "--help"],
        "renkei catalog list": ["-c", RENKEI, "catalog", "list", "--home", str(home)],
    }


def timed(arguments: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="PYTHONDONTWRITEBYTECODE=1: compile renkei's modules in every run",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "100"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if args.no_bytecode_cache:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        home = Path(tmp) / "hub"
        subprocess.run(
            [sys.executable, "-c", RENKEI, "hub", "init", "--home", str(home)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        commands = runs(home)
        for arguments in commands.values():  # warm the page cache and the bytecode caches
            timed(arguments, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.reps):  # alternate, so that a burst of load hits every command alike
            for name, arguments in commands.items():
                times[name].append(timed(arguments, env))
    floor = min(times["python -c pass"])
    load = os.getloadavg()[0]
    cache = "no bytecode cache for renkei" if args.no_bytecode_cache else "bytecode cached"
    print(
        f"{args.reps} runs each, alternating, {cache}; load average {load:.1f} at the end;"
        f" Python {sys.version.split()[0]}"
    )
    print()
    print("| run | best | median | best / `python -c pass` | target |")
    print("|---|---|---|---|---|")
    for name, measured in times.items():
        best = min(measured)
        target = f"≤ {TARGETS[name]} s" if name in TARGETS else "floor"
        print(
            f"| `{name}` | {best:.3f} s | {statistics.median(measured):.3f} s | {best / floor:.1f} × | {target} |"
        )


if __name__ == "__main__":
    main()
