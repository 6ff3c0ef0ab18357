"""`renkei vault verify` against a real hub: the vault on its own, the vault against the catalog both ways, and
an audit log found broken is left as it was found (issue 9, item 13)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner, Result

from renkei.cli.hub import EXIT_AUDIT_BROKEN
from renkei.cli.main import app
from renkei.hub.audit import AuditEntry
from renkei.hub.catalog import Dataset, Snapshot
from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE
from renkei.hub.home import Hub
from renkei.hub.vault import SnapshotRef
from renkei.manifest import DATA_FILE
from tests.integration.hub_world import make_world, store_without_record_keys

AS_OF = dt.date(2025, 1, 1)
JUKI = Path("juki") / AS_OF.isoformat() / "v1"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub with two imported datasets, copied afresh for each test (each one breaks it differently)."""
    world = make_world(tmp_path_factory.mktemp("vault-verify"), residents=200, years=1)
    for dataset in ("juki", "kokuho"):
        assert world.import_(world.extract(dataset, AS_OF)).status == "imported"
    world.hub.engine.dispose()
    return world.hub.home


@pytest.fixture
def home(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "hub"
    shutil.copytree(template, copy, symlinks=True)
    return copy


def verify(home: Path) -> Result:
    result = CliRunner().invoke(app, ["vault", "verify", "--home", str(home)])
    assert "Traceback" not in result.output
    return result


def says(result: Result, *texts: str) -> bool:
    """Whether the output holds every text, however the terminal wrapped it."""
    flat = "".join(result.output.split())
    return all("".join(text.split()) in flat for text in texts)


def audit_size(home: Path) -> int:
    hub = Hub(home)
    size = hub.audit.size()
    hub.engine.dispose()
    return size


def writable(path: Path) -> None:
    for directory in (path, *path.parents):
        if directory.name == "vault":
            break
        directory.chmod(0o700)


def test_a_sound_vault_passes_and_the_check_is_recorded(home: Path) -> None:
    before = audit_size(home)
    result = verify(home)
    assert result.exit_code == 0, result.output
    assert "2 スナップショット, 問題 0 件" in result.output
    assert audit_size(home) == before + 1


@pytest.mark.parametrize("depth", [1, 2, 3], ids=["dataset", "period", "snapshot"])
def test_a_deleted_snapshot_period_or_dataset_folder_is_reported(home: Path, depth: int) -> None:
    gone = home / "vault" / Path(*JUKI.parts[:depth])
    writable(gone.parent)
    for path in (gone, *gone.rglob("*")):
        path.chmod(0o700)
    shutil.rmtree(gone)
    result = verify(home)
    assert result.exit_code == EXIT_AUDIT_BROKEN
    assert says(result, f"{home / 'vault' / JUKI}: カタログにあるスナップショットが保管庫にありません")
    assert says(result, f"({gone} is gone)")


def test_a_stored_snapshot_without_a_catalog_row_is_reported(home: Path) -> None:
    hub = Hub(home)
    with hub.session() as session:  # as a disk-full or a dropped connection after storing would leave it
        juki = session.scalars(select(Dataset.id).where(Dataset.name == "juki")).one()
        session.execute(delete(Snapshot).where(Snapshot.dataset_id == juki))
        session.commit()
    hub.engine.dispose()
    result = verify(home)
    assert result.exit_code == EXIT_AUDIT_BROKEN
    assert says(result, f"{home / 'vault' / JUKI}: カタログに記録のないスナップショットです")


def test_content_other_than_the_catalog_records_is_named(home: Path) -> None:
    hub = Hub(home)
    with hub.session() as session:
        rows = session.scalars(select(Snapshot).order_by(Snapshot.id)).all()
        session.execute(update(Snapshot).where(Snapshot.id == rows[0].id).values(content_sha256="0" * 64))
        session.commit()
        resource = rows[0].resource
    hub.engine.dispose()
    result = verify(home)
    assert result.exit_code == EXIT_AUDIT_BROKEN
    expected = home / "vault" / resource / "data.parquet.age"
    assert says(result, f"{expected}: 保管されている内容がカタログの記録と違います")


def test_the_record_keys_stored_at_import_are_verified_like_the_data(home: Path) -> None:
    hub = Hub(home)
    assert hub.vault.files(SnapshotRef("juki", AS_OF, 1)) == [DATA_FILE, "manifest.json", RECORD_KEYS_FILE]
    hub.engine.dispose()
    target = home / "vault" / JUKI / f"{RECORD_KEYS_FILE}.age"
    writable(target.parent)
    target.chmod(0o600)
    with target.open("r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    target.chmod(0o400)
    target.parent.chmod(0o500)
    result = verify(home)
    assert result.exit_code == EXIT_AUDIT_BROKEN
    assert says(result, f"{target}: 復号できません")


def test_a_catalogued_snapshot_without_record_keys_is_reported(home: Path, tmp_path: Path) -> None:
    """A snapshot stored without its keys (as before imports kept them) is complete on its own; only the
    catalog, which expects the keys of every snapshot, tells that they are missing."""
    hub = Hub(home)
    store_without_record_keys(hub, SnapshotRef("juki", AS_OF, 1), SnapshotRef("juki", AS_OF, 2), tmp_path)
    hub.engine.dispose()
    result = verify(home)
    assert result.exit_code == EXIT_AUDIT_BROKEN
    missing = home / "vault" / "juki" / AS_OF.isoformat() / "v2" / f"{RECORD_KEYS_FILE}.age"
    assert says(result, f"{missing}: カタログに記録されたファイルがありません")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda entry: {**entry, "wrapped": entry["wrapped"][::-1]}, "key file was altered"),
        (lambda entry: {**entry, "kek_id": "0123456789abcdef"}, "it was edited, or belongs to another hub"),
    ],
    ids=["wrapped", "kek_id"],
)
def test_an_edited_key_file_is_named_with_what_is_wrong(
    home: Path, edit: Callable[[dict[str, str]], dict[str, str]], reason: str
) -> None:
    key_file = home / "vault" / JUKI / "data.parquet.age.key.json"
    writable(key_file.parent)
    key_file.chmod(0o600)
    key_file.write_text(json.dumps(edit(json.loads(key_file.read_text()))))
    key_file.chmod(0o400)
    key_file.parent.chmod(0o500)
    result = verify(home)
    assert result.exit_code == EXIT_AUDIT_BROKEN
    assert says(result, f"{key_file}: ", reason)
    assert not says(result, "data.parquet.age: ") and not says(result, "run rotate-key")


def test_a_broken_audit_log_is_not_appended_to(home: Path) -> None:
    hub = Hub(home)
    with hub.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(actor="someone-else"))
        session.commit()
    hub.engine.dispose()
    before = audit_size(home)
    result = verify(home)
    assert result.exit_code == EXIT_AUDIT_BROKEN
    assert says(result, "this check is not appended to it")
    assert audit_size(home) == before
