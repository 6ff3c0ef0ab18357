"""Concurrent ``renkei import`` processes on overlapping packages: every package is imported exactly once.

Issue 9, item 12: a base package and its correction raced to the same version (the catalog's v1 named one
package while the vault's v1 held the other), packages were left in ``storing`` for good, identical contents were
stored twice, and losers crashed with an ``IntegrityError`` or wrote a false ``import.rejected``. Real
processes race here on SQLite and on PostgreSQL; a database lock held by the test lines them up first, so that
each has read the catalog before any of them writes to it (the window the old code lost).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import make_url

from renkei.errors import EXIT_BUSY
from renkei.hub.audit import AuditEntry
from renkei.hub.catalog import Dataset, Package, PackageState, Snapshot
from renkei.hub.home import verify_vault
from renkei.hub.storing import ImportConflictError
from renkei.hub.vault import SnapshotRef
from renkei.manifest import DATA_FILE, MANIFEST_FILE
from renkei.package import ENVELOPE, Envelope
from tests.integration.hub_world import World, make_world

AS_OF = dt.date(2025, 1, 1)
LINE_UP_LIMIT = 120.0  # seconds: a safety net, never reached when the importers behave


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("RENKEI_DATABASE_URL", database_url)
    world = make_world(tmp_path, residents=300, years=1)
    yield world
    world.hub.engine.dispose()


def import_command(world: World, packages: list[Path]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "renkei.cli.main",
        "import",
        *map(str, packages),
        "--home",
        str(world.hub.home),
    ]


def start_import(world: World, packages: list[Path]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        import_command(world, packages), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def work_dirs_with_manifest(world: World) -> int:
    return len(list((world.hub.home / "staging").glob("import-*/manifest.json")))


@contextmanager
def writes_held(url: str) -> Iterator[None]:
    """Hold the catalog's write lock (SQLite) or the packages table against writes (PostgreSQL)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(url)
    with engine.connect() as conn, conn.begin():
        conn.execute(text("LOCK TABLE packages IN SHARE MODE"))
        yield
    engine.dispose()


def race(world: World, url: str, lists: list[list[Path]]) -> list[tuple[int, str]]:
    """Start one importer per list; release them together once each has decrypted its first package."""
    with writes_held(url):
        procs = [start_import(world, packages) for packages in lists]
        deadline = time.monotonic() + LINE_UP_LIMIT
        while work_dirs_with_manifest(world) < len(procs) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break  # one finished without waiting: nothing to line up any more
            time.sleep(0.005)
    results = []
    for proc in procs:
        _, stderr = proc.communicate(timeout=LINE_UP_LIMIT)
        results.append((proc.returncode, stderr))
    return results


def test_racing_imports_store_each_content_once_and_the_catalog_names_what_the_vault_holds(
    world: World, database_url: str
) -> None:
    base = world.extract("kaigo", AS_OF, out="base")
    same = world.extract("kaigo", AS_OF, out="same")  # a new package id, the very same content
    source = world.raw[AS_OF]["kaigo"]
    lines = source.read_bytes().split(b"\r\n")
    source.write_bytes(b"\r\n".join([*lines[:-3], b""]))  # the core system corrected its export
    correction = world.extract("kaigo", AS_OF, out="correction")
    other = world.extract("juki", AS_OF)

    results = race(
        world,
        database_url,
        [[base, correction, other], [correction, base, other], [same, base], [base]],
    )

    for code, stderr in results:
        assert "Traceback" not in stderr and "IntegrityError" not in stderr, stderr
        assert code in (0, 4), (code, stderr)  # 4: only the identical content, refused as a replay
    with world.hub.session() as session:
        packages = session.scalars(select(Package)).all()
        snapshots = session.execute(
            select(Dataset.name, Snapshot.version, Snapshot.package_id).join(Dataset)
        ).all()
        rejected = session.scalars(select(AuditEntry).where(AuditEntry.action == "import.rejected")).all()
        imports = session.scalars(select(AuditEntry).where(AuditEntry.action == "import")).all()
    assert {p.state for p in packages} == {PackageState.IMPORTED}
    kaigo = sorted((version, package_id) for name, version, package_id in snapshots if name == "kaigo")
    assert [version for version, _ in kaigo] == [1, 2]
    stored_ids = {package_id for _, package_id in kaigo}
    ids = {path: package_id_of(path) for path in (base, same, correction)}
    assert ids[correction] in stored_ids and len(stored_ids & {ids[base], ids[same]}) == 1
    loser = base if ids[same] in stored_ids else same  # the identical content that came second
    assert {entry.resource for entry in rejected} <= {loser.name}
    assert all("replay" in entry.reason for entry in rejected)
    assert len(imports) == len(snapshots) == 3
    assert verify_vault(world.hub) == []  # the vault holds, under each version, what the catalog says
    assert world.hub.audit.verify().ok


def package_id_of(path: Path) -> str:
    with tarfile.open(path, "r:") as tar:
        member = tar.extractfile(ENVELOPE)
        assert member is not None
        return Envelope.model_validate_json(member.read()).package_id


# --- an import that died is recovered by the next run ---------------------------------------------------------

DIE_AT = """
import os, sys
from pathlib import Path
from renkei.hub import storing
from renkei.hub.home import Hub

setattr(storing.Storing, sys.argv[1], lambda *args, **kwargs: os._exit(9))  # the process dies right there
hub = Hub(Path(sys.argv[2]))
with hub.session() as session:
    hub.importer(session).import_package(Path(sys.argv[3]))
"""


def import_and_die(world: World, package: Path, at: str) -> None:
    """Import ``package`` in a process that dies at ``Storing.<at>``: ``_place`` is just after the version was
    reserved (nothing in the vault yet), ``finish`` just after the vault write (no snapshot row yet)."""
    cmd = [sys.executable, "-c", DIE_AT, at, str(world.hub.home), str(package)]
    assert subprocess.run(cmd, env=os.environ.copy(), check=False).returncode == 9


def run_import(world: World, *packages: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(import_command(world, list(packages)), capture_output=True, text=True, check=False)


def catalog(
    world: World,
) -> tuple[list[tuple[str, PackageState, int]], list[tuple[str, int]], list[AuditEntry]]:
    with world.hub.session() as session:
        packages = session.execute(select(Package.package_id, Package.state, Package.version)).all()
        snapshots = session.execute(select(Snapshot.package_id, Snapshot.version)).all()
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    return sorted(tuple(p) for p in packages), sorted(tuple(s) for s in snapshots), list(entries)


def test_an_import_that_died_after_its_vault_write_is_finished_by_the_next_run_of_any_package(
    world: World,
) -> None:
    stuck = world.extract("kaigo", AS_OF)
    import_and_die(world, stuck, "finish")
    assert world.hub.vault.snapshots() != []  # the vault holds it, the catalog does not yet
    result = run_import(world, world.extract("juki", AS_OF))  # another package: the stuck one is not re-run
    assert result.returncode == 0, result.stderr
    packages, snapshots, entries = catalog(world)
    kaigo = package_id_of(stuck)
    assert (kaigo, PackageState.IMPORTED, 1) in packages and (kaigo, 1) in snapshots
    recovered = [e for e in entries if e.action == "import" and e.resource == f"kaigo/{AS_OF}/v1"]
    assert len(recovered) == 1 and recovered[0].details["recovered"] is True
    assert verify_vault(world.hub) == [] and world.hub.audit.verify().ok


def test_an_import_that_died_before_its_vault_write_is_released_and_imports_anew(world: World) -> None:
    stuck = world.extract("kaigo", AS_OF)
    import_and_die(world, stuck, "_place")
    assert catalog(world)[0] == [(package_id_of(stuck), PackageState.STORING, 1)]
    assert run_import(world, world.extract("juki", AS_OF)).returncode == 0
    packages, _, entries = catalog(world)
    assert package_id_of(stuck) not in {p[0] for p in packages}
    released = [e for e in entries if e.action == "import.released"]
    assert [e.resource for e in released] == [f"kaigo/{AS_OF}/v1"]
    assert "re-run the import" in released[0].reason
    result = run_import(world, stuck)
    assert result.returncode == 0 and f"kaigo/{AS_OF}/v1" in result.stdout, result.stderr
    assert verify_vault(world.hub) == [] and world.hub.audit.verify().ok


def test_a_vault_directory_with_other_content_is_never_taken_for_a_reservation(world: World) -> None:
    """What the old race left: the package reserved v1, and the vault's v1 holds another package's data."""
    mine = world.extract("kaigo", AS_OF, out="mine")
    import_and_die(world, mine, "_place")  # reserved v1, nothing written
    stranger = world.root / "stranger.parquet"
    stranger.write_bytes(b"not this package's data")
    world.hub.vault.store(SnapshotRef("kaigo", AS_OF, 1), {DATA_FILE: stranger, MANIFEST_FILE: stranger})
    result = run_import(world, mine)
    assert result.returncode == 0 and f"kaigo/{AS_OF}/v2" in result.stdout, result.stderr
    assert catalog(world)[1] == [(package_id_of(mine), 2)]
    problems = verify_vault(world.hub)
    assert [(p.kind, p.path.name) for p in problems] == [("uncatalogued", "v1")]  # reported, not adopted


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_an_importer_outside_the_lock_cannot_take_a_reserved_version_and_the_loser_says_so(
    world: World, database_url: str
) -> None:
    """The unique key holds even for importers that do not share the period lock: on PostgreSQL a racer
    reserves the very version this import is inserting, every time; the import gives up with a clear error.
    (On SQLite the reservation holds the database's write lock: no racer can get in between.)"""
    racer = create_engine(database_url, isolation_level="AUTOCOMMIT")
    racers = iter(range(1000))

    def reserve_first(conn: object, cursor: object, statement: str, parameters: object, *_: object) -> None:
        if statement.startswith("INSERT INTO packages") and isinstance(parameters, dict):
            with racer.connect() as other:
                row = {**parameters, "package_id": f"racer{next(racers)}"}
                columns = ", ".join(row)
                other.execute(text(f"INSERT INTO packages ({columns}) VALUES (:{', :'.join(row)})"), row)

    event.listen(world.hub.engine, "before_cursor_execute", reserve_first)
    package = world.extract("kaigo", AS_OF)
    with pytest.raises(ImportConflictError) as caught:
        world.import_(package)
    event.remove(world.hub.engine, "before_cursor_execute", reserve_first)
    racer.dispose()
    assert "nothing was stored" in caught.value.en and caught.value.exit_code == EXIT_BUSY
    packages, snapshots, entries = catalog(world)
    assert package_id_of(package) not in {p[0] for p in packages} and snapshots == []
    assert [
        e for e in entries if e.action == "import.rejected"
    ] == []  # not a replay, not the package's fault
    assert world.hub.vault.snapshots() == []
