"""kill -9 during an import, at many points: the complete snapshot or nothing is visible, and a re-run finishes."""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from renkei.hub.audit import AuditEntry
from renkei.hub.catalog import Package, PackageState, Snapshot
from renkei.hub.home import Hub
from tests.integration.hub_world import World, make_world

KILLS = 8


def run_import(home: Path, package: Path, tmpdir: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "renkei.cli.main", "import", str(package), "--home", str(home)]
    env = os.environ | ({"TMPDIR": str(tmpdir)} if tmpdir else {})
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def catalog_state(hub: Hub) -> tuple[int, list[PackageState], int]:
    with hub.session() as session:
        snapshots = session.scalar(select(func.count()).select_from(Snapshot)) or 0
        states = list(session.scalars(select(Package.state)).all())
        imports = (
            session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "import"))
            or 0
        )
    return snapshots, states, imports


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path, float]:
    world = make_world(tmp_path_factory.mktemp("crash"), residents=3000, years=1)
    package = world.extract("juki", min(world.raw))
    pristine = world.root / "pristine-hub"
    shutil.copytree(world.hub.home, pristine)
    start = time.perf_counter()
    assert run_import(world.hub.home, package).wait() == 0
    duration = time.perf_counter() - start
    return world, package, duration


def staging_busy(home: Path) -> bool:
    staging = home / "vault" / ".staging"
    return staging.exists() and any(staging.iterdir())


def snapshot_dir_exists(home: Path) -> bool:
    return (home / "vault" / "juki").exists()


WATCHES = [staging_busy, snapshot_dir_exists]


def kill_when(proc: subprocess.Popen[bytes], home: Path, watch: object, delay: float) -> None:
    """SIGKILL after ``delay`` seconds, or as soon as ``watch(home)`` holds when a watch is given."""
    deadline = time.monotonic() + delay
    while proc.poll() is None and time.monotonic() < deadline:
        if callable(watch) and watch(home):
            break
        time.sleep(0.002)
    proc.kill()
    proc.wait()


def test_kill_at_many_points_then_rerun(prepared: tuple[World, Path, float], tmp_path: Path) -> None:
    world, package, duration = prepared
    rng = random.Random(20261126)
    plan: list[tuple[object, float]] = [(None, rng.uniform(0.05, duration * 1.5)) for _ in range(KILLS)]
    plan += [(watch, duration * 10) for watch in WATCHES for _ in range(2)]
    outcomes: set[str] = set()
    for i, (watch, delay) in enumerate(plan):
        home = tmp_path / f"hub-{i}"
        shutil.copytree(world.root / "pristine-hub", home)
        hub = Hub(home)
        kill_when(run_import(home, package), home, watch, delay)

        snapshots, states, imports = catalog_state(hub)
        assert snapshots in (0, 1)
        assert hub.audit.verify().ok
        if snapshots == 1:
            outcomes.add("complete")
            assert states == [PackageState.IMPORTED] and imports == 1
            assert hub.vault.verify() == []
        else:
            outcomes.add("nothing" if not states else "pending")
            assert imports == 0
        # re-running completes the job exactly once
        assert run_import(home, package).wait() == 0
        snapshots, states, imports = catalog_state(hub)
        assert (snapshots, states, imports) == (1, [PackageState.IMPORTED], 1)
        assert hub.vault.verify() == [] and hub.audit.verify().ok
        hub.engine.dispose()
    assert len(outcomes) >= 2, outcomes  # the kills really landed at different stages


def decrypted_in_staging(home: Path) -> bool:
    return any((home / "staging").glob("import-*/data.parquet"))


def test_a_killed_import_leaves_plaintext_only_in_private_staging_and_the_next_sweeps_it(
    prepared: tuple[World, Path, float], tmp_path: Path
) -> None:
    world, package, duration = prepared
    home, tmpdir = tmp_path / "hub", tmp_path / "tmp"
    tmpdir.mkdir()
    for _ in range(10):  # the window with decrypted files is short; try until the kill lands in it
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(world.root / "pristine-hub", home)
        kill_when(run_import(home, package, tmpdir), home, decrypted_in_staging, duration * 10)
        if decrypted_in_staging(home):
            break
    else:
        pytest.fail("the kill never landed while decrypted files existed")
    assert list(tmpdir.iterdir()) == []  # nothing in the system temp, decrypted or not
    for path in (home / "staging").glob("import-*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        for file in path.iterdir():
            if file.name != "payload.age":  # ciphertext; every decrypted file is private
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert run_import(home, package, tmpdir).wait() == 0
    assert sorted(p.name for p in (home / "staging").iterdir()) == [".lock", "locks"]
    assert list(tmpdir.iterdir()) == []
    Hub(home).engine.dispose()
