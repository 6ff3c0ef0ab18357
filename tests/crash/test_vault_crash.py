"""kill -9 during ``Vault.store``: afterwards the snapshot is complete or absent, and a re-run completes it.

A child process runs one store. Every file-system step it takes (open, write, fsync, mkdir, rename, chmod,
unlink …) is counted, and the child SIGKILLs itself just before step N, for every N; further children are
killed by the parent after random delays. Each kill starts from a fresh copy of the same vault.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from renkei.hub.keys import KEK_ENV, AesGcmKek
from renkei.hub.vault import SnapshotExistsError, SnapshotRef, Vault

KEY = bytes(range(100, 132))
PERIOD = dt.date(2024, 1, 1)
MAX_KILL_POINTS = 60
RANDOM_KILLS = 10

CHILD = r"""
import datetime as dt, os, signal, sys
from pathlib import Path
from renkei.hub import vault as vault_module
from renkei.hub.keys import load_kek

root, data, manifest, dataset, version, kill_at = sys.argv[1:]
kill_at, steps = int(kill_at), 0

def counted(function):
    def step(*args, **kwargs):
        global steps
        steps += 1
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return function(*args, **kwargs)
    return step

for name in ("open", "fsync", "mkdir", "rename", "replace", "chmod", "unlink", "rmdir"):
    setattr(os, name, counted(getattr(os, name)))
vault_module._Tap.write = counted(vault_module._Tap.write)

vault = vault_module.Vault(Path(root), load_kek(Path(root)))
ref = vault_module.SnapshotRef(dataset, dt.date(2024, 1, 1), int(version))
print("ready", flush=True)
vault.store(ref, {"data.parquet": Path(data), "manifest.json": Path(manifest)})
print(steps, flush=True)
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    data, manifest = folder / "data.parquet", folder / "manifest.json"
    data.write_bytes(random.Random(7).randbytes(300_000))  # several 64 KiB age chunks
    manifest.write_text('{"rows": 1234}', encoding="utf-8")
    return {"data.parquet": data, "manifest.json": manifest}


@pytest.fixture
def kek() -> AesGcmKek:
    return AesGcmKek(KEY, "test")


def _child_command(root: Path, inputs: dict[str, Path], ref: SnapshotRef, kill_at: int) -> list[str]:
    args = [
        str(root),
        str(inputs["data.parquet"]),
        str(inputs["manifest.json"]),
        ref.dataset,
        str(ref.version),
    ]
    return [sys.executable, "-c", CHILD, *args, str(kill_at)]


CHILD_ENV = {**os.environ, KEK_ENV: base64.b64encode(KEY).decode()}


def _run_child(root: Path, inputs: dict[str, Path], ref: SnapshotRef, kill_at: int) -> int:
    command = _child_command(root, inputs, ref, kill_at)
    return subprocess.run(command, env=CHILD_ENV, capture_output=True, check=False).returncode


@contextmanager
def _started_child(root: Path, inputs: dict[str, Path], ref: SnapshotRef) -> Iterator[subprocess.Popen[str]]:
    """A child that has imported everything and is about to store (it printed "ready")."""
    command = _child_command(root, inputs, ref, kill_at=0)
    with subprocess.Popen(command, env=CHILD_ENV, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        yield child


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _prepare(root: Path, kek: AesGcmKek, inputs: dict[str, Path], scenario: str) -> SnapshotRef:
    """A vault in one of two starting states; returns the snapshot the child will store."""
    vault = Vault(root, kek)
    vault.store(SnapshotRef("other", PERIOD, 1), inputs)
    if scenario == "new-dataset":
        return SnapshotRef("crash", PERIOD, 1)
    vault.store(SnapshotRef("crash", PERIOD, 1), inputs)
    return SnapshotRef("crash", PERIOD, 2)


def _read(vault: Vault, ref: SnapshotRef, name: str) -> bytes:
    with vault.open_plain(ref, name) as plain:
        return plain.read()


def _check_after_kill(
    root: Path, kek: AesGcmKek, inputs: dict[str, Path], ref: SnapshotRef, before: list[str]
) -> None:
    vault = Vault(root, kek)
    visible = vault.exists(ref)
    if visible:
        # complete and authentic; only the final chmod to 0500 may still be missing (the sweep does it)
        assert {name: _read(vault, ref, name) for name in inputs} == {
            n: p.read_bytes() for n, p in inputs.items()
        }
        assert [p.kind for p in vault.verify_snapshot(ref) if p.kind != "mode"] == []
    else:
        assert _tree(root / ref.dataset) == before, "a partial snapshot is visible"
    try:
        vault.store(ref, inputs)  # the re-run after the restart
    except SnapshotExistsError:
        assert visible
    assert vault.verify() == []
    assert {name: _read(vault, ref, name) for name in inputs} == {
        n: p.read_bytes() for n, p in inputs.items()
    }
    assert list((root / ".staging").iterdir()) == []
    assert len(vault.snapshots()) == (2 if ref.version == 1 else 3)  # earlier snapshots intact


def _kill_points(total: int) -> list[int]:
    if total <= MAX_KILL_POINTS:
        return list(range(1, total + 1))
    return sorted({round(1 + i * (total - 1) / (MAX_KILL_POINTS - 1)) for i in range(MAX_KILL_POINTS)})


def _count_steps(tmp_path: Path, kek: AesGcmKek, inputs: dict[str, Path], scenario: str) -> tuple[int, float]:
    root = tmp_path / "count"
    ref = _prepare(root, kek, inputs, scenario)
    with _started_child(root, inputs, ref) as child:
        started = time.perf_counter()
        assert child.stdout is not None
        total = int(child.stdout.readline())
        duration = time.perf_counter() - started
    assert child.returncode == 0
    assert Vault(root, kek).verify() == []
    return total, duration


def _fresh_roots(tmp_path: Path) -> Iterator[Path]:
    for number in range(10_000):
        yield tmp_path / f"run{number}"


@pytest.mark.parametrize("scenario", ["new-dataset", "next-version"])
def test_sigkill_at_every_step_leaves_all_or_nothing(
    tmp_path: Path, kek: AesGcmKek, inputs: dict[str, Path], scenario: str
) -> None:
    total, _ = _count_steps(tmp_path, kek, inputs, scenario)
    points = _kill_points(total)
    assert len(points) >= 20
    roots = _fresh_roots(tmp_path)
    outcomes = {"visible": 0, "absent": 0}
    for kill_at in points:
        root = next(roots)
        ref = _prepare(root, kek, inputs, scenario)
        before = _tree(root / ref.dataset)
        assert _run_child(root, inputs, ref, kill_at) == -signal.SIGKILL
        outcomes["visible" if Vault(root, kek).exists(ref) else "absent"] += 1
        _check_after_kill(root, kek, inputs, ref, before)
    assert outcomes["visible"] and outcomes["absent"]  # the kills landed on both sides of the rename


def test_sigkill_after_random_delays(tmp_path: Path, kek: AesGcmKek, inputs: dict[str, Path]) -> None:
    _, duration = _count_steps(tmp_path, kek, inputs, "next-version")
    rng = random.Random(2024)
    roots = _fresh_roots(tmp_path)
    for _ in range(RANDOM_KILLS):
        root = next(roots)
        ref = _prepare(root, kek, inputs, "next-version")
        before = _tree(root / ref.dataset)
        with _started_child(root, inputs, ref) as child:
            time.sleep(rng.uniform(0, duration * 1.2))
            child.kill()
        _check_after_kill(root, kek, inputs, ref, before)
