"""kill -9 during ``Vault.store``: afterwards the snapshot is complete or absent, and a re-run completes it.

A child process imports the vault once, then forks one writer per kill point, each on a fresh copy of the
same vault. Every file-system step a writer takes (open, write, fsync, mkdir, rename, chmod, unlink …) is
counted, and the writer SIGKILLs itself just before step N, for every N. Further writers are SIGKILLed
from outside after random delays. The test then checks each vault as a restarted hub would find it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from renkei.hub.keys import KEK_ENV, AesGcmKek
from renkei.hub.vault import SnapshotExistsError, SnapshotRef, Vault

KEY = bytes(range(100, 132))
PERIOD = dt.date(2024, 1, 1)
RANDOM_KILLS = 12

# argv: data, manifest, then jobs "root|dataset|version|step|N" (kill before step N; 0 = never, print the
# step count) or "root|dataset|version|delay|S" (killed by its parent after S seconds).
# Prints one JSON list: how each writer ended (negative = killed by that signal).
CHILD = r"""
import datetime as dt, json, os, signal, sys, time
from pathlib import Path
from renkei.hub import vault as vault_module
from renkei.hub.keys import load_kek

data, manifest, *jobs = sys.argv[1:]

def count_steps(kill_at):
    steps = 0
    def counted(function):
        def step(*args, **kwargs):
            nonlocal steps
            steps += 1
            if steps == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return step
    for name in ("open", "fsync", "mkdir", "rename", "replace", "chmod", "unlink", "rmdir"):
        setattr(os, name, counted(getattr(os, name)))
    vault_module._Tap.write = counted(vault_module._Tap.write)
    return lambda: steps

def write(root, dataset, version):
    vault = vault_module.Vault(Path(root), load_kek(Path(root)))
    ref = vault_module.SnapshotRef(dataset, dt.date(2024, 1, 1), int(version))
    vault.store(ref, {"data.parquet": Path(data), "manifest.json": Path(manifest)})

ended = []
for job in jobs:
    root, dataset, version, mode, value = job.split("|")
    pid = os.fork()
    if pid == 0:
        steps = count_steps(int(value)) if mode == "step" else lambda: 0
        write(root, dataset, version)
        if mode == "step" and value == "0":
            print(steps(), flush=True)
        os._exit(0)
    if mode == "delay":
        time.sleep(float(value))
        os.kill(pid, signal.SIGKILL)
    ended.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(json.dumps(ended), flush=True)
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


def _run_writers(inputs: dict[str, Path], jobs: list[str]) -> list[str]:
    command = [sys.executable, "-c", CHILD, str(inputs["data.parquet"]), str(inputs["manifest.json"]), *jobs]
    env = {**os.environ, KEK_ENV: base64.b64encode(KEY).decode()}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def _job(root: Path, ref: SnapshotRef, mode: str, value: float) -> str:
    return f"{root}|{ref.dataset}|{ref.version}|{mode}|{value}"


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
        unsealed = (vault.root.joinpath(*ref.parts), "mode")
        assert [(p.path, p.kind) for p in vault.verify_snapshot(ref) if (p.path, p.kind) != unsealed] == []
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


def _count_steps(tmp_path: Path, kek: AesGcmKek, inputs: dict[str, Path], scenario: str) -> int:
    root = tmp_path / f"count-{scenario}"
    ref = _prepare(root, kek, inputs, scenario)
    steps, ended = _run_writers(inputs, [_job(root, ref, "step", 0)])
    assert json.loads(ended) == [0]
    assert Vault(root, kek).verify() == []
    return int(steps)


@pytest.mark.parametrize("scenario", ["new-dataset", "next-version"])
def test_sigkill_at_every_step_leaves_all_or_nothing(
    tmp_path: Path, kek: AesGcmKek, inputs: dict[str, Path], scenario: str
) -> None:
    total = _count_steps(tmp_path, kek, inputs, scenario)
    assert total >= 20
    runs = [(tmp_path / f"kill{n}", n) for n in range(1, total + 1)]
    refs = {root: _prepare(root, kek, inputs, scenario) for root, _ in runs}
    befores = {root: _tree(root / ref.dataset) for root, ref in refs.items()}
    (ended,) = _run_writers(inputs, [_job(root, refs[root], "step", n) for root, n in runs])
    assert json.loads(ended) == [-signal.SIGKILL] * total
    visible = [Vault(root, kek).exists(refs[root]) for root, _ in runs]
    for root, _ in runs:
        _check_after_kill(root, kek, inputs, refs[root], befores[root])
    assert any(visible) and not all(visible)  # the kills landed on both sides of the rename


def test_sigkill_after_random_delays(tmp_path: Path, kek: AesGcmKek, inputs: dict[str, Path]) -> None:
    rng = random.Random(2024)
    roots = [tmp_path / f"delay{n}" for n in range(RANDOM_KILLS)]
    refs = {root: _prepare(root, kek, inputs, "next-version") for root in roots}
    befores = {root: _tree(root / ref.dataset) for root, ref in refs.items()}
    delays = [rng.uniform(0, 0.04) for _ in roots]  # the step test above already kills at every step
    (ended,) = _run_writers(
        inputs, [_job(root, refs[root], "delay", d) for root, d in zip(roots, delays, strict=True)]
    )
    assert set(json.loads(ended)) <= {0, -signal.SIGKILL}  # killed or finished, never failed
    for root in roots:
        _check_after_kill(root, kek, inputs, refs[root], befores[root])
