"""`renkei backup` and `renkei restore` (issue 12, item 6): a running hub backed up consistently, restored into a
fresh home on SQLite or PostgreSQL (either way across), verifying and answering as before."""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from renkei.cli.main import app
from renkei.errors import EXIT_INTEGRITY, NoSpaceError
from renkei.hub.access.authz import Actor, Forbidden
from renkei.hub.audit import AuditEntry
from renkei.hub.audit_actions import AuditAction
from renkei.hub.backup import (
    MANIFEST,
    BackupDamagedError,
    BackupError,
    BackupKeyError,
    backup,
    hub_tables,
    read_rows,
    restore,
)
from renkei.hub.db import consistent_read, make_engine
from renkei.hub.home import Hub, verify_vault
from renkei.hub.migrate import upgrade
from renkei.hub.services import admin, catalog
from renkei.manifest import DATA_FILE
from tests.conftest import _postgres_schema_url
from tests.integration.hub_world import World, make_world

ACTOR = Actor.cli("cli:tester")
AUDIT_TABLES = {"audit_entries", "audit_head", "audit_checkpoints"}
FIRST, SECOND = dt.date(2024, 1, 1), dt.date(2025, 1, 1)


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A small hub (SQLite in its home, or a fresh PostgreSQL schema) with a department, an import and its
    audit entries; the second period's package is extracted, not imported."""
    if not database_url.startswith("sqlite"):
        monkeypatch.setenv("RENKEI_DATABASE_URL", database_url)
    world = make_world(tmp_path / "world", residents=200, years=2)
    admin.add_department(world.hub, ACTOR, "kikaku")
    world.import_(world.extract("juki", FIRST))
    yield world
    world.hub.engine.dispose()


def rows(hub: Hub) -> dict[str, list[list[Any]]]:
    with consistent_read(hub.engine, read_only=True) as conn:
        return {t.name: list(read_rows(conn, t)) for t in hub_tables()}


def plain(hub: Hub) -> dict[str, bytes]:
    out = {}
    for ref in hub.vault.snapshots():
        with hub.vault.open_plain(ref, DATA_FILE) as f:
            out[str(ref)] = f.read()
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
    else:
        yield from _postgres_schema_url()


def test_a_restored_hub_verifies_and_answers_as_the_backed_up_one(
    world: World, target_url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = world.hub
    done = backup(source, ACTOR, tmp_path / "bk")
    assert done.snapshots == 1 and (tmp_path / "bk" / MANIFEST).is_file()
    before = rows(source)
    monkeypatch.delenv("RENKEI_DATABASE_URL", raising=False)

    restored = restore(tmp_path / "bk", tmp_path / "new", source.home, ACTOR, database_url=target_url)

    hub = Hub(tmp_path / "new")
    assert restored.database == ("sqlite" if target_url is None else "postgresql")
    assert hub.engine.dialect.name == restored.database
    after = rows(hub)
    for name in before.keys() - AUDIT_TABLES:
        assert after[name] == before[name], name
    size = json.loads((tmp_path / "bk" / MANIFEST).read_text())["audit"]["size"]
    assert after["audit_entries"][:size] == before["audit_entries"][:size]
    assert verify_vault(hub) == []
    assert hub.audit.verify().ok
    assert plain(hub) == plain(source)
    with hub.session() as db:
        last = db.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert (
        last is not None and last.action == AuditAction.RESTORE and last.seq == size + 1
    )  # after its decision
    assert catalog.list_datasets(hub, ACTOR) == catalog.list_datasets(source, ACTOR)
    with source.session() as db:
        backups = db.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.BACKUP)).all()
    assert [b.result for b in backups] == ["ok"]
    # the restored hub goes on working: the next period imports as v1, ids and sequences past the loaded rows
    world_next = World(world.root, hub, world.sender_home, world.raw)
    outcome = world_next.import_(world.extract("juki", SECOND, out="out2"))
    assert outcome.status == "imported"
    admin.add_department(hub, ACTOR, "somu")
    assert verify_vault(hub) == [] and hub.audit.verify().ok
    hub.engine.dispose()


def test_an_import_during_the_backup_leaves_a_consistent_backup(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = world.extract("juki", SECOND)
    imported: list[str] = []

    def meanwhile(stage: str, done: int, _total: int) -> None:
        if stage == "catalog" and done == 3 and not imported:  # mid-dump: the catalog's view is older
            imported.append(world.import_(package).status)

    result = backup(world.hub, ACTOR, tmp_path / "bk", progress=meanwhile)
    assert imported == ["imported"] and len(world.hub.vault.snapshots()) == 2
    assert result.snapshots == 1  # the snapshot stored meanwhile is not in the copied catalog: left out
    manifest = json.loads((tmp_path / "bk" / MANIFEST).read_text())
    assert manifest["snapshots"] == [f"juki/{FIRST}/v1"]
    monkeypatch.delenv("RENKEI_DATABASE_URL", raising=False)
    restore(tmp_path / "bk", tmp_path / "new", world.hub.home, ACTOR)
    hub = Hub(tmp_path / "new")
    assert verify_vault(hub) == [] and hub.audit.verify().ok  # the later checkpoints were cut from the copy
    assert len(hub.vault.snapshots()) == 1
    outcome = World(world.root, hub, world.sender_home, world.raw).import_(package)
    assert outcome.status == "imported"  # what happened after the backup can be imported again
    hub.engine.dispose()


def test_a_tampered_backup_is_refused_naming_the_file(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup(world.hub, ACTOR, tmp_path / "bk")
    monkeypatch.delenv("RENKEI_DATABASE_URL", raising=False)
    users = tmp_path / "bk" / "catalog" / "departments.jsonl"
    users.write_text(users.read_text().replace("kikaku", "kikakx"))
    with pytest.raises(BackupDamagedError) as caught:
        restore(tmp_path / "bk", tmp_path / "new", world.hub.home, ACTOR)
    assert str(users) in str(caught.value)
    assert not (tmp_path / "new").exists()
    # a changed manifest (its hash edited to match) fails the signature
    manifest = tmp_path / "bk" / MANIFEST
    data = json.loads(manifest.read_text())
    data["files"]["catalog/departments.jsonl"]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(data))
    with pytest.raises(BackupDamagedError, match="manifest"):
        restore(tmp_path / "bk", tmp_path / "new", world.hub.home, ACTOR)


def test_a_failure_mid_backup_leaves_nothing_and_says_where(world: World, tmp_path: Path) -> None:
    def full_disk(stage: str, done: int, _total: int) -> None:
        if stage == "vault" and done == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "bk"))

    with pytest.raises(NoSpaceError) as caught:
        backup(world.hub, ACTOR, tmp_path / "bk", progress=full_disk)
    assert "copying the vault files" in caught.value.en and "保管庫" in caught.value.ja
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]  # no backup, no partial directory
    with world.hub.session() as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.BACKUP)).one()
    assert entry.result == "error" and "vault" in entry.reason
    # a backup killed with SIGKILL leaves its partial directory; the next one to that target removes it,
    # but not one a running backup holds
    dead, live = tmp_path / ".bk.partial-dead", tmp_path / ".bk.partial-live"
    for partial in (dead, live):
        (partial / "vault").mkdir(parents=True)
        (partial / "vault").chmod(0o500)
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        backup(world.hub, ACTOR, tmp_path / "bk")
    finally:
        os.close(holder)
    assert not dead.exists() and live.exists() and (tmp_path / "bk" / MANIFEST).is_file()


def test_restore_refuses_what_it_cannot_restore_safely(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Forbidden):
        backup(world.hub, Actor("nobody"), tmp_path / "bk")
    assert not (tmp_path / "bk").exists()
    backup(world.hub, ACTOR, tmp_path / "bk")
    with pytest.raises(BackupError, match="exists"):
        backup(world.hub, ACTOR, tmp_path / "bk")
    monkeypatch.delenv("RENKEI_DATABASE_URL", raising=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("")
    with pytest.raises(BackupError, match="not empty"):
        restore(tmp_path / "bk", busy, world.hub.home, ACTOR)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "audit_signing.key").write_bytes((world.hub.home / "audit_signing.key").read_bytes())
    (keys / "audit_signing.key").chmod(0o600)
    with pytest.raises(BackupKeyError, match=r"kek\.key"):
        restore(tmp_path / "bk", tmp_path / "new", keys, ACTOR)
    assert not (tmp_path / "new").exists()
    manifest = json.loads((tmp_path / "bk" / MANIFEST).read_text())
    manifest["revision"] = "ffffffffffff"
    newer = tmp_path / "newer"
    newer.mkdir()
    from renkei.hub.audit import load_audit_key  # noqa: PLC0415

    data = json.dumps(manifest).encode()
    import shutil  # noqa: PLC0415

    shutil.copytree(tmp_path / "bk", newer / "bk")
    (newer / "bk" / MANIFEST).write_bytes(data)
    (newer / "bk" / "manifest.sig").write_text(load_audit_key(world.hub.home).sign(data).hex())
    with pytest.raises(BackupError, match="newer"):
        restore(newer / "bk", tmp_path / "new", world.hub.home, ACTOR)
    assert not (tmp_path / "new").exists()


def fits(output: str, tmp_path: Path) -> bool:
    """Every line but a path's fits 80 columns (Japanese characters count two)."""
    from rich.cells import cell_len  # noqa: PLC0415

    return all(cell_len(line) <= 80 for line in output.splitlines() if str(tmp_path) not in line)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_commands(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["backup", "--to", str(tmp_path / "bk"), "--home", str(world.hub.home)])
    assert made.exit_code == 0, made.output
    assert "backup written" in made.output and fits(made.output, tmp_path)
    (tmp_path / "bk" / "home" / "audit_checkpoints.jsonl").write_text("{}\n")
    refused = runner.invoke(
        app,
        [
            "restore",
            "--from",
            str(tmp_path / "bk"),
            "--home",
            str(tmp_path / "n"),
            "--keys",
            str(world.hub.home),
        ],
    )
    assert refused.exit_code == EXIT_INTEGRITY, refused.output
    assert "audit_checkpoints.jsonl" in refused.output
    made = runner.invoke(app, ["backup", "--to", str(tmp_path / "bk2"), "--home", str(world.hub.home)])
    done = runner.invoke(
        app,
        [
            "restore",
            "--from",
            str(tmp_path / "bk2"),
            "--home",
            str(tmp_path / "n"),
            "--keys",
            str(world.hub.home),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "restored" in done.output and fits(done.output, tmp_path)
    verified = runner.invoke(app, ["vault", "verify", "--home", str(tmp_path / "n")])
    assert verified.exit_code == 0, verified.output
    make_engine(f"sqlite:///{tmp_path / 'n' / 'catalog.db'}").dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failed_restore_undoes_itself_and_can_be_run_again(
    world: World, target_url: str | None, tmp_path: Path
) -> None:
    backup(world.hub, ACTOR, tmp_path / "bk")

    def broken(stage: str, done: int, _total: int) -> None:
        if stage == "restore-vault" and done == 1:
            raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output"):
        restore(
            tmp_path / "bk", tmp_path / "new", world.hub.home, ACTOR, database_url=target_url, progress=broken
        )
    assert not (tmp_path / "new").exists()
    if target_url is not None:
        engine = make_engine(target_url)
        assert inspect(engine).get_table_names() == []
        engine.dispose()
    restore(tmp_path / "bk", tmp_path / "new", world.hub.home, ACTOR, database_url=target_url)
    hub = Hub(tmp_path / "new")
    assert verify_vault(hub) == [] and hub.audit.verify().ok
    hub.engine.dispose()


def resign(backup_dir: Path, manifest: dict[str, Any], home: Path) -> None:
    """Write ``manifest`` with every file's hash as it is now, signed with the hub's audit key."""
    from renkei.hub.audit import load_audit_key  # noqa: PLC0415
    from renkei.hub.backup import _sha256  # noqa: PLC0415

    for relative in manifest["files"]:
        digest, size = _sha256(backup_dir / relative)
        manifest["files"][relative] = {"sha256": digest, "bytes": size}
    data = json.dumps(manifest).encode()
    (backup_dir / MANIFEST).write_bytes(data)
    (backup_dir / "manifest.sig").write_text(load_audit_key(home).sign(data).hex())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backup_of_an_older_schema_is_loaded_at_its_revision_and_migrated_on(
    world: World, target_url: str | None, tmp_path: Path
) -> None:
    """A backup made at an older revision (8d3f6a1b2c90: before packages had rows, bytes and spec_hash, and
    before every later table and column) restores: the rows go into the schema of its revision, and the
    migrations bring them to the head."""
    backup(world.hub, ACTOR, tmp_path / "bk")
    manifest = json.loads((tmp_path / "bk" / MANIFEST).read_text())
    old_schema = _schema_at(OLD_REVISION, tmp_path / "old.db")
    for table in list(manifest["tables"]):
        path = tmp_path / "bk" / "catalog" / f"{table}.jsonl"
        if table not in old_schema:  # a table made by a later migration: an older backup has none
            del manifest["tables"][table]
            path.unlink()
            continue
        columns = manifest["tables"][table]["columns"]
        keep = [i for i, c in enumerate(columns) if c in old_schema[table]]
        old_rows = [[json.loads(line)[i] for i in keep] for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(r) + "\n" for r in old_rows))
        manifest["tables"][table]["columns"] = [columns[i] for i in keep]
    assert "rows" not in manifest["tables"]["packages"]["columns"]
    manifest["files"] = {k: v for k, v in manifest["files"].items() if (tmp_path / "bk" / k).exists()}
    manifest["revision"] = OLD_REVISION
    resign(tmp_path / "bk", manifest, world.hub.home)

    restore(tmp_path / "bk", tmp_path / "new", world.hub.home, ACTOR, database_url=target_url)
    hub = Hub(tmp_path / "new")
    before, after = rows(world.hub), rows(hub)
    assert after["departments"] == before["departments"] and after["snapshots"] == before["snapshots"]
    assert len(after["packages"]) == len(before["packages"]) == 1
    assert verify_vault(hub) == [] and hub.audit.verify().ok
    hub.engine.dispose()


OLD_REVISION = "8d3f6a1b2c90"


def _schema_at(revision: str, path: Path) -> dict[str, set[str]]:
    """Each table's columns in the hub's schema at ``revision`` (migrated into a scratch SQLite file)."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine, revision)
        found = inspect(engine)
        return {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names()}
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_key_rotation_is_kept_out_of_a_backup(world: World, tmp_path: Path) -> None:
    home = world.hub.home
    holder = os.open(home / "kek.rotation.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a rotation running in another process
    try:
        with pytest.raises(BackupError, match="rotation is running"):
            backup(world.hub, ACTOR, tmp_path / "bk")
    finally:
        os.close(holder)
    (home / "kek.rotation.json").write_text("{}")  # one that stopped half-way
    with pytest.raises(BackupError, match="rotation is unfinished"):
        backup(world.hub, ACTOR, tmp_path / "bk")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_restore_refuses_a_database_that_is_not_empty(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup(world.hub, ACTOR, tmp_path / "bk")
    for url in _postgres_schema_url():
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE something (id integer)")
        engine.dispose()
        with pytest.raises(BackupError, match="not empty"):
            restore(tmp_path / "bk", tmp_path / "new", world.hub.home, ACTOR, database_url=url)
        monkeypatch.setenv("RENKEI_DATABASE_URL", url)
        with pytest.raises(BackupError, match="RENKEI_DATABASE_URL"):
            restore(tmp_path / "bk", tmp_path / "new", world.hub.home, ACTOR)
    assert not (tmp_path / "new").exists()
