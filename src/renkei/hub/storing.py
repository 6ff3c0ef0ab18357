"""Storing an accepted package exactly once: a version reservation, the vault write, the snapshot row.

Two ``renkei import`` processes may import overlapping packages at the same time (a scheduled run and an
operator, say). Three mechanisms keep every package imported once, and the catalog naming under each version
what the vault holds there (issue 9, item 12):

* **A lock per (dataset, period)**: an exclusive ``flock`` on ``<home>/staging/locks/<dataset>@<period>.lock``,
  held by the importer from its last catalog checks to the commit of the snapshot row. The checks that decide
  (imported already? the same content stored already? which version?) are made again under it, so a racing
  import sees what the one before it committed. A file lock rather than a database lock: SQLite's only lock is
  the whole database's write lock, which would stop every other writer (logins, audit appends) for as long as
  a vault write takes. Every importer runs where the vault is, so all see the lock, and it dies with its holder.
* **The reservation**: the package row in state ``storing``, whose (dataset, period, version) is a unique key,
  so that two importers can never reserve one version, even ones that do not share the lock.
* **Recovery**: a ``storing`` row found while holding its period's lock was left by an import that died. If the
  vault holds its snapshot, complete (:data:`SNAPSHOT_FILES`: data, manifest, record keys) and with the reserved
  content, the snapshot row is written from the reservation (an ``import`` entry marked ``recovered``); otherwise
  the reservation is released (an ``import.released`` entry) and a re-run imports the package anew. Each import
  run first recovers the periods no import is working on.

An existing vault directory is taken for a reservation only when it holds that package's content (decrypted and
compared); otherwise the reservation moves to the next free version.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.errors import Location, RenkeiError
from renkei.files import exclusive_flock
from renkei.hub.audit import AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset, Package, PackageState, Snapshot
from renkei.hub.db import writing
from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE
from renkei.hub.vault import CatalogRecord, SnapshotRef, Vault
from renkei.manifest import DATA_FILE, MANIFEST_FILE, sha256_file

IMPORTER = "importer"  # the audit actor of every import
# What an import stores of a snapshot: the data, its manifest, and the record keys made from the data at import
# (renkei.hub.disclosure.record_keys); a snapshot is complete only with all three.
SNAPSHOT_FILES = (DATA_FILE, MANIFEST_FILE, RECORD_KEYS_FILE)
LOCKS_DIR = "locks"


class ImportConflictError(RenkeiError):
    """The catalog kept changing under the import (another importer that does not share the period lock)."""


def conflict(where: Path) -> ImportConflictError:
    return ImportConflictError(
        "同時に実行中の別の受入と競合しました。何も保存していません。もう一度実行してください",
        "another import running at the same time took the version reserved for this one; nothing was stored,"
        " run the import again",
        Location(where),
    )


@contextmanager
def period_lock(staging: Path, dataset: str, period: dt.date, *, blocking: bool = True) -> Iterator[bool]:
    """Hold the (dataset, period) lock; yields False if not blocking and another import holds it."""
    locks = staging / LOCKS_DIR
    locks.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = locks / f"{dataset}@{period.isoformat()}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with exclusive_flock(fd, blocking=blocking) as held:
        yield held


class Storing:
    """Reservations, vault writes and snapshot rows of one importer; call under the period's lock."""

    def __init__(self, session: Session, vault: Vault, audit: AuditLog, staging: Path) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.staging = staging

    def next_version(self, dataset: str, dataset_id: int, period: dt.date) -> int:
        """One above every version reserved in the catalog or present in the vault (even one with no row)."""
        used = self.session.scalars(
            select(Package.version).where(Package.dataset_id == dataset_id, Package.period == period)
        ).all()
        return max([0, *used, self.vault.next_version(dataset, period) - 1]) + 1

    def store(self, package: Package, dataset: str, files: Mapping[str, Path]) -> Snapshot:
        """Write the reserved package's files to the vault (or find them there) and record its snapshot."""
        ref = self._place(package, dataset, files)
        return self.finish(package, ref)

    def _place(self, package: Package, dataset: str, files: Mapping[str, Path]) -> SnapshotRef:
        self.vault.sweep_staging()  # finishes a write killed after its rename (seals the snapshot)
        ref = SnapshotRef(dataset, package.period, package.version)
        if self.vault.exists(ref):
            if self.holds(ref, package, files[MANIFEST_FILE]):
                return ref  # an earlier run of this import stored it and died before its row
            ref = self._move(package, dataset)  # someone else's files: never taken for this package
        self.vault.store(ref, files)
        return ref

    def _move(self, package: Package, dataset: str) -> SnapshotRef:
        with writing(self.session):
            version = self.next_version(dataset, package.dataset_id, package.period)
            package.version = version
        return SnapshotRef(dataset, package.period, version)

    def holds(self, ref: SnapshotRef, package: Package, manifest: Path | None) -> bool:
        """Whether the vault's ``ref`` is complete (every one of :data:`SNAPSHOT_FILES`, each matching the
        snapshot's checksums) and holds exactly this package's data (and manifest)."""
        if package.bytes is None:
            return False
        recorded: dict[str, CatalogRecord | None] = dict.fromkeys(SNAPSHOT_FILES)
        recorded[DATA_FILE] = CatalogRecord(package.content_sha256, package.bytes)
        if manifest is not None:
            recorded[MANIFEST_FILE] = CatalogRecord(sha256_file(manifest), manifest.stat().st_size)
        return self.vault.verify_snapshot(ref, recorded) == []

    def finish(self, package: Package, ref: SnapshotRef, *, recovered: bool = False) -> Snapshot:
        """The snapshot row, the package imported and its ``import`` entry: one transaction."""
        assert package.rows is not None and package.bytes is not None and package.spec_hash is not None
        with writing(self.session):
            snapshot = Snapshot(
                dataset_id=package.dataset_id,
                period=package.period,
                version=ref.version,
                rows=package.rows,
                bytes=package.bytes,
                content_sha256=package.content_sha256,
                spec_hash=package.spec_hash,
                sender_id=package.sender_id,
                package_id=package.package_id,
            )
            self.session.add(snapshot)
            package.state = PackageState.IMPORTED
            self.session.flush()
            details: dict[str, object] = {
                "package_id": package.package_id,
                "sender": package.sender.name,
                "rows": package.rows,
                "content_sha256": package.content_sha256,
            }
            if recovered:
                details["recovered"] = True
            self.audit.append_in(
                self.session, actor=IMPORTER, action=AuditAction.IMPORT, resource=str(ref), details=details
            )
        return snapshot

    # -- recovery -----------------------------------------------------------------------------------------

    def recover_idle_periods(self) -> int:
        """Finish or release the reservations of every period no import is working on; returns how many."""
        stuck = self.session.execute(
            select(Dataset.id, Dataset.name, Package.period)
            .join(Dataset, Package.dataset_id == Dataset.id)
            .where(Package.state == PackageState.STORING)
            .distinct()
        ).all()
        self.session.rollback()
        done = 0
        for dataset_id, dataset, period in stuck:
            with period_lock(self.staging, dataset, period, blocking=False) as idle:
                if idle:
                    done += self.recover_period(dataset, dataset_id, period)
        return done

    def recover_period(self, dataset: str, dataset_id: int, period: dt.date, *, keep: str = "") -> int:
        """Under the period's lock: every ``storing`` row but ``keep``'s (the running import's) is a dead one's."""
        query = select(Package).where(
            Package.dataset_id == dataset_id, Package.period == period, Package.state == PackageState.STORING
        )
        stuck = [p for p in self.session.scalars(query).all() if p.package_id != keep]
        if stuck:
            self.vault.sweep_staging()
        recovered = 0
        for package in stuck:
            recovered += self._recover(package, dataset)
        return recovered

    def _recover(self, package: Package, dataset: str) -> int:
        ref = SnapshotRef(dataset, package.period, package.version)
        if not self.vault.exists(ref):
            self._release(package, ref, "the import stopped before the vault held the snapshot")
        elif package.rows is None or package.spec_hash is None:
            return (
                0  # reserved by an older hub, which kept too little to finish it: re-running the package does
            )
        elif self.holds(ref, package, None):
            self.finish(package, ref, recovered=True)
        else:
            self._release(package, ref, "the vault holds other content under the reserved version")
        return 1

    def _release(self, package: Package, ref: SnapshotRef, why: str) -> None:
        with writing(self.session):
            details = {"package_id": package.package_id, "version": package.version}  # before it is gone
            self.session.delete(package)
            self.audit.append_in(
                self.session,
                actor=IMPORTER,
                action=AuditAction.IMPORT_RELEASED,
                resource=str(ref),
                reason=f"{why}; the reservation is released, re-run the import of the package",
                details=details,
            )
