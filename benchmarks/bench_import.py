"""Benchmark: seal and import the 住民基本台帳 extract against the floor of copying and decrypting its bytes.

    .venv/bin/python benchmarks/bench_import.py --extract DIR     # DIR = an extract output (data.parquet + manifest.json)

Make DIR first, e.g. with `benchmarks/bench_extract.py` (its renkei runs leave `renkei-*/juki_2021-01-01/`).
Each operation runs in its own subprocess so that its peak RSS is its own; floor and renkei runs alternate
and the best time of each is kept (the machine is noisy).

- seal floor: copy the Parquet file and age-encrypt it to the hub (the bytes any sealing must touch);
- seal: `renkei.sending.seal.seal` (inner tar, age encryption, envelope, Ed25519 signature, outer tar);
- import floor: copy the package and age-decrypt its payload (the bytes any import must touch);
- import: `Importer.import_package` into a fresh hub (verify, decrypt, validate, vault store, catalog, audit).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path


def seal_floor(extract: Path, work: Path, hub: Path) -> None:
    import pyrage

    from renkei.hub.home import Hub

    recipient = pyrage.x25519.Recipient.from_str(Hub(hub).package_recipient())
    shutil.copyfile(extract / "data.parquet", work / "copy.parquet")
    pyrage.encrypt_file(str(work / "copy.parquet"), str(work / "copy.age"), [recipient])


def seal_run(extract: Path, work: Path, hub: Path, sender: Path) -> None:
    from renkei.hub.home import Hub
    from renkei.manifest import Manifest
    from renkei.sending.seal import load_sender, seal

    manifest = Manifest.from_json((extract / "manifest.json").read_text(encoding="utf-8"))
    seal(extract, manifest, load_sender(sender), Hub(hub).package_recipient(), work / "juki.rkpkg")


def import_floor(package: Path, work: Path, hub: Path) -> None:
    import pyrage

    from renkei.hub.home import Hub

    shutil.copyfile(package, work / "copy.rkpkg")
    with tarfile.open(work / "copy.rkpkg") as tar:
        src = tar.extractfile("payload.age")
        assert src is not None
        with (work / "payload.age").open("wb") as dest:
            shutil.copyfileobj(src, dest, 1 << 20)
    pyrage.decrypt_file(str(work / "payload.age"), str(work / "inner.tar"), [Hub(hub).package_identity()])


def import_run(package: Path, work: Path, hub: Path) -> None:
    from renkei.hub.home import Hub

    fresh = work / "hub"
    shutil.copytree(hub, fresh)
    h = Hub(fresh)
    with h.session() as session:
        h.importer(session).import_package(package)


def child(kind: str, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(dir=args.work, prefix=f"{kind}-"))
    if kind == "seal-floor":
        seal_floor(args.extract, work, args.hub)
    elif kind == "seal":
        seal_run(args.extract, work, args.hub, args.sender)
    elif kind == "import-floor":
        import_floor(args.package, work, args.hub)
    else:
        import_run(args.package, work, args.hub)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "work": str(work)}))


def run(kind: str, args: argparse.Namespace, **extra: Path) -> dict[str, object]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--extract",
        str(args.extract),
        "--work",
        str(args.work),
    ]
    cmd += ["--hub", str(args.hub), "--sender", str(args.sender)]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def setup(work: Path) -> tuple[Path, Path]:
    """A hub and a registered sender, made through the CLI so this parent process stays small."""
    hub, sender = work / "hub", work / "sender"
    cli = [sys.executable, "-m", "renkei.cli.main"]
    subprocess.run([*cli, "hub", "init", "--home", str(hub)], check=True, capture_output=True)
    subprocess.run(
        [*cli, "sender", "init", "--home", str(sender), "--name", "bench"], check=True, capture_output=True
    )
    key = subprocess.run(
        [*cli, "sender", "public-key", "--home", str(sender)], check=True, capture_output=True, text=True
    )
    subprocess.run(
        [
            *cli,
            "hub",
            "add-sender",
            "--home",
            str(hub),
            "--name",
            "bench",
            "--public-key",
            key.stdout.strip(),
        ],
        check=True,
        capture_output=True,
    )
    return hub, sender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--extract", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--child")
    parser.add_argument("--hub", type=Path)
    parser.add_argument("--sender", type=Path)
    parser.add_argument("--package", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    args.work = Path(args.work or tempfile.mkdtemp(prefix="renkei-bench-import-"))
    args.hub, args.sender = setup(args.work)
    size = (args.extract / "data.parquet").stat().st_size
    print(f"extract: {size / 1e6:.1f} MB Parquet")
    best: dict[str, dict[str, float]] = {}
    package: Path | None = None
    for _ in range(args.repeats):
        for kind in ("seal-floor", "seal"):
            r = run(kind, args)
            if kind == "seal":
                package = Path(str(r["work"])) / "juki.rkpkg"
            _keep_best(best, kind, r)
        assert package is not None
        for kind in ("import-floor", "import"):
            _keep_best(best, kind, run(kind, args, package=package))
    for stage in ("seal", "import"):
        ours, floor = best[stage], best[f"{stage}-floor"]
        print(
            f"{stage:6s}: {ours['seconds']:.2f} s (peak RSS {ours['peak_rss_mb']:.0f} MB) vs floor "
            f"{floor['seconds']:.2f} s (peak RSS {floor['peak_rss_mb']:.0f} MB): ratio {ours['seconds'] / floor['seconds']:.2f}"
        )


def _keep_best(best: dict[str, dict[str, float]], kind: str, result: dict[str, object]) -> None:
    seconds, peak = float(str(result["seconds"])), float(str(result["peak_rss_mb"]))
    print(f"  {kind:12s} {seconds:.2f} s, peak RSS {peak:.0f} MB")
    if kind not in best or seconds < best[kind]["seconds"]:
        best[kind] = {
            "seconds": seconds,
            "peak_rss_mb": max(peak, best.get(kind, {}).get("peak_rss_mb", 0.0)),
        }


if __name__ == "__main__":
    main()
