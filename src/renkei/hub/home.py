"""The hub's home directory and the objects built from it.

Layout (all created by ``renkei hub init``, mode 0700 / 0600):

    <home>/renkei-side            "hub": the marker that keeps the sending side out (renkei.config)
    <home>/package_identity.txt   age X25519 identity that opens sealed packages (0600)
    <home>/hub.toml               the hub's settings, if any (renkei.hub.settings; RENKEI_* variables win)
    <home>/kek.key                key-encryption key of the vault (0600; or RENKEI_KEK / RENKEI_KMS)
    <home>/audit_signing.key      Ed25519 key that signs audit checkpoints (0600)
    <home>/audit_checkpoints.jsonl  a copy of every checkpoint signed on demand, one JSON line each (append-only)
    <home>/catalog.db             SQLite catalog (unless database.url names PostgreSQL; 0600, TOTP
                                  secrets in it wrapped by the KEK)
    <home>/vault/                 encrypted snapshots, one folder per dataset
    <home>/inbox/                 where sealed packages are dropped
    <home>/staging/               private work directories of running imports (decrypted; a killed one's are swept
                                  by the next hub start or import, renkei.hub.staging)

The hub never holds the sending side's pseudonymization key (a hub refuses to start in a home that holds
one: ``renkei.config.check_home``) and has no code path that writes to the sending
side: it only reads packages dropped into its inbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pyrage
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from renkei.config import HUB, check_home, claim_home
from renkei.errors import KeyFileError, Location
from renkei.files import write_private
from renkei.hub.audit import CHECKPOINT_COPY_FILE, AuditLog, create_audit_key, load_audit_key
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import database_url, make_engine, session_factory
from renkei.hub.keys import KeyEncryptionKey, bind_kek, create_kek_file, load_kek, pending_kek_id
from renkei.hub.rotation import reconcile_rotation, rotation_pending
from renkei.hub.settings import HubSettings, load_settings
from renkei.hub.staging import sweep_dead_imports

if TYPE_CHECKING:  # the importer, the vault, Alembic and the specs load pyarrow: only for what needs them
    from renkei.hub.importer import Importer
    from renkei.hub.vault import CatalogRecord, SnapshotRef, Vault, VerifyProblem
    from renkei.hub.workspace.gate import SnapshotCache
    from renkei.hub.workspace.reuse import ControlResults
    from renkei.hub.workspace.slots import QuerySlots

PACKAGE_IDENTITY_FILE = "package_identity.txt"
STAGING_DIR = "staging"


@dataclass
class Hub:
    """Everything a hub command needs, opened lazily from the home directory."""

    home: Path

    def __post_init__(self) -> None:
        # Absolute once and for all: the vault's decrypting children and the workspace workers run in "/",
        # so a relative home (`renkei serve --home hub`) would name files they cannot find.
        self.home = self.home.absolute()
        check_home(self.home, HUB)  # every hub command and the portal start here
        self.settings  # noqa: B018 (loaded now: an invalid setting stops the start, not a later request)
        if rotation_pending(self.home):
            reconcile_rotation(self)  # a rotation killed before its outcome was audited
        sweep_dead_imports(self.staging)  # decrypted work files of killed imports, if no import is running

    @cached_property
    def settings(self) -> HubSettings:
        """``<home>/hub.toml`` and the ``RENKEI_*`` variables, validated and frozen."""
        return load_settings(self.home)

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(database_url(self.home, self.settings))
        bind_kek(engine, lambda: self.kek)  # services built from the engine alone open TOTP secrets with it
        return engine

    @cached_property
    def kek(self) -> KeyEncryptionKey:
        return load_kek(self.home, self.settings.keys.kms)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_factory(self.engine)() as session:
            yield session

    @cached_property
    def audit(self) -> AuditLog:
        copy = self.home / CHECKPOINT_COPY_FILE
        every = self.settings.audit.checkpoint_every
        return AuditLog(self.engine, load_audit_key(self.home), checkpoint_every=every, checkpoint_copy=copy)

    @cached_property
    def vault(self) -> Vault:
        from renkei.hub.vault import Vault  # noqa: PLC0415 (lazy: see the imports)

        return Vault(self.home / "vault", self.kek)

    @cached_property
    def snapshot_cache(self) -> SnapshotCache:
        """The decrypted snapshots this process's workspaces share (renkei.hub.workspace.gate)."""
        from renkei.hub.workspace.gate import SnapshotCache  # noqa: PLC0415 (lazy: see the imports)

        return SnapshotCache(self.vault, self.settings.workspace.shared_idle_seconds)

    @cached_property
    def query_slots(self) -> QuerySlots:
        """How many workspace queries of this process run at once (renkei.hub.workspace.slots)."""
        from renkei.hub.workspace.slots import QuerySlots  # noqa: PLC0415 (lazy: see the imports)

        limits = self.settings.workspace
        return QuerySlots(limits.max_running_queries, limits.queue_seconds)

    @cached_property
    def control_results(self) -> ControlResults:
        """Control results reused across this process's workspaces (renkei.hub.workspace.reuse)."""
        from renkei.hub.workspace.reuse import ControlResults  # noqa: PLC0415 (lazy: see the imports)

        return ControlResults(self.settings.workspace.reuse_mib << 20)

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def staging(self) -> Path:
        """Where imports decrypt packages: inside the home, never the system temp."""
        return self.home / STAGING_DIR

    def importer(self, session: Session) -> Importer:
        from renkei.hub.disclosure.record_keys import load_record_key  # noqa: PLC0415 (lazy: see the imports)
        from renkei.hub.importer import Importer  # noqa: PLC0415

        return Importer(
            session,
            self.vault,
            self.audit,
            self.package_identity(),
            staging=self.staging,
            record_key=load_record_key(self.home),
            max_payload_bytes=self.settings.imports.max_payload_bytes,
            risk=self.settings.risk,
        )

    def package_identity(self) -> pyrage.x25519.Identity:
        path = self.home / PACKAGE_IDENTITY_FILE
        try:
            return pyrage.x25519.Identity.from_str(path.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            raise KeyFileError(
                "基盤の受入鍵がありません。`renkei hub init` を実行してください",
                "hub package key not found; run `renkei hub init`",
                Location(path),
            ) from None

    def package_recipient(self) -> str:
        return str(self.package_identity().to_public())


def catalog_view(session: Session | Connection) -> dict[SnapshotRef, dict[str, CatalogRecord | None]]:
    """Every snapshot the catalog records, with the files an import stores (data, manifest, record keys) and
    the data file's hash and size; the other files' contents are checked against the snapshot's checksums."""
    from renkei.hub.catalog import Dataset, Snapshot  # noqa: PLC0415 (lazy: see the imports)
    from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE  # noqa: PLC0415
    from renkei.hub.vault import CatalogRecord, SnapshotRef  # noqa: PLC0415
    from renkei.manifest import DATA_FILE, MANIFEST_FILE  # noqa: PLC0415

    rows = session.execute(
        select(Dataset.name, Snapshot.period, Snapshot.version, Snapshot.content_sha256, Snapshot.bytes).join(
            Dataset, Snapshot.dataset_id == Dataset.id
        )
    )
    return {
        SnapshotRef(name, period, version): {
            DATA_FILE: CatalogRecord(sha256, size),
            MANIFEST_FILE: None,
            RECORD_KEYS_FILE: None,
        }
        for name, period, version, sha256, size in rows
    }


def verify_vault(hub: Hub) -> list[VerifyProblem]:
    """The vault on its own and against the catalog, both ways (``renkei vault verify``)."""
    with hub.session() as session:
        catalog = catalog_view(session)
    return hub.vault.verify(catalog, pending_kek_id=pending_kek_id(hub.home))


def init_hub(home: Path) -> Hub:
    """Create a new hub home: keys, catalog schema, vault, inbox, and the bundled dataset registry."""
    from renkei.hub.catalog import register_dataset  # noqa: PLC0415 (lazy: see the imports)
    from renkei.hub.disclosure.record_keys import create_record_key  # noqa: PLC0415
    from renkei.hub.migrate import upgrade  # noqa: PLC0415
    from renkei.spec import bundled_specs, load_spec  # noqa: PLC0415

    claim_home(home, HUB)
    identity = pyrage.x25519.Identity.generate()
    write_private(home / PACKAGE_IDENTITY_FILE, (str(identity) + "\n").encode())
    create_kek_file(home)
    create_audit_key(home)
    create_record_key(home)
    for sub in ("vault", "inbox", STAGING_DIR):
        (home / sub).mkdir(mode=0o700, exist_ok=True)
    hub = Hub(home)
    upgrade(hub.engine, kek=hub.kek)
    with hub.session() as session:
        for path in bundled_specs().values():
            register_dataset(session, load_spec(path))
        session.commit()
    hub.audit.append(actor="admin-cli", action=AuditAction.HUB_INIT, resource=str(home.name), details={})
    hub.audit.checkpoint()
    return hub
