"""受入 (import): verify a sealed package, unseal it, validate its manifest, store it in the vault.

Order of checks, cheapest and least trusting first: the outer container's shape; the envelope's signature
against the registered sender's key; the payload hash; replay; decryption with the hub's package key; the
seal binding payload to envelope; the manifest against the dataset registry (spec hash, schema, deleted
columns absent, row count, content hash); nothing in the Parquet file beyond what the extract writes
(:mod:`renkei.hub.parquet_check`). Any failure stores nothing and is logged as ``import.rejected``.

Plaintext stays in the hub's home: the payload is decrypted into a private directory (0700, files 0600) under
``<home>/staging``, never the system temp, removed when the import ends; what a killed import left there is
swept by the next hub start or import that finds no import running (``renkei.hub.staging``).

Crash safety and concurrency (``renkei.hub.storing``): under a lock per (dataset, period), the package's version
is first reserved (the package recorded as ``storing``, committed; the version a unique key), then the files are
written to the vault (atomic directory rename), then the snapshot row, the package state ``imported`` and the
audit entry are committed in one transaction. A crash in between leaves no visible snapshot; the next import run
finishes it from the vault, or releases the reservation so that re-running the import stores it anew.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow.parquet as pq
import pyrage
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from renkei.errors import Location, NoSpaceError, RenkeiError
from renkei.hub.assessment import assess_import
from renkei.hub.audit import AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset, Package, PackageState, Sender, Snapshot
from renkei.hub.db import is_disconnect, writing
from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE, write_record_keys
from renkei.hub.parquet_check import unexpected_content
from renkei.hub.settings import RiskSettings
from renkei.hub.staging import import_workspace
from renkei.hub.storing import IMPORTER, Storing, conflict, period_lock
from renkei.hub.vault import Vault
from renkei.manifest import DATA_FILE, MANIFEST_FILE, Manifest, schema_fields, sha256_file
from renkei.package import (
    ENVELOPE,
    MAX_ENVELOPE_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_SEAL_BYTES,
    MAX_SIGNATURE_BYTES,
    PACKAGE_FORMAT,
    PAYLOAD,
    SEAL,
    SIGNATURE,
    Envelope,
    PackageFormatError,
    Seal,
    checked_members,
    copy_member,
    open_archive,
    read_member,
)
from renkei.spec import DELETED_ROLES

DISCONNECT_ATTEMPTS = 2
RESERVE_ATTEMPTS = 3
OUTER_LIMITS = {ENVELOPE: MAX_ENVELOPE_BYTES, SIGNATURE: MAX_SIGNATURE_BYTES, PAYLOAD: MAX_PAYLOAD_BYTES}
# Peak working space per payload byte: the payload, the decrypted inner tar, the data file taken out of it.
WORK_FACTOR = 3
FREE_SPACE_RESERVE = 64 << 20


class PackageRejectedError(RenkeiError):
    """The package failed a check; nothing was stored."""


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    package: Path
    status: str  # "imported" or "already imported"
    resource: str
    rows: int


def _reject(ja: str, en: str, package: Path) -> PackageRejectedError:
    return PackageRejectedError(
        f"パッケージを受け入れませんでした: {ja}", f"package rejected: {en}", Location(package)
    )


class Importer:
    def __init__(
        self,
        session: Session,
        vault: Vault,
        audit: AuditLog,
        identity: pyrage.x25519.Identity,
        *,
        staging: Path,
        record_key: bytes,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        risk: RiskSettings | None = None,
    ) -> None:
        self.session = session
        self.vault = vault
        self.audit = audit
        self.identity = identity
        self.staging = staging  # the hub home's own place for decrypted work files (and the period locks)
        self.max_payload_bytes = min(
            max_payload_bytes, MAX_PAYLOAD_BYTES
        )  # the setting imports.max_payload_bytes
        self.outer_limits = {**OUTER_LIMITS, PAYLOAD: self.max_payload_bytes}
        self.record_key = record_key  # the snapshot's record keys are made once, here (disclosure control)
        self.storing = Storing(session, vault, audit, staging)
        self.risk = risk or RiskSettings()  # the setting risk.*: thresholds of the risk report (docs/risk.md)
        self._recovered = False

    def import_package(self, path: Path) -> ImportOutcome:
        """Import one package; either way, sign a checkpoint that covers what was logged."""
        if not self._recovered:  # once per run: what imports that died left in ``storing``
            self.storing.recover_idle_periods()
            self._recovered = True
        try:
            outcome = self._import_retrying(path)
        except PackageRejectedError as exc:
            self.session.rollback()
            self.audit.append(
                actor=IMPORTER,
                action=AuditAction.IMPORT_REJECTED,
                resource=path.name,
                result="rejected",
                reason=exc.en,
            )
            self._sign_checkpoint()
            raise
        self._sign_checkpoint()
        return outcome

    def _import_retrying(self, path: Path) -> ImportOutcome:
        """An import is safe to run again from the start (that is how a killed one is finished), so a dropped
        database connection is retried once, on a fresh connection, before it is reported."""
        for attempt in range(DISCONNECT_ATTEMPTS):
            try:
                return self._import(path)
            except DBAPIError as exc:
                if not is_disconnect(exc) or attempt == DISCONNECT_ATTEMPTS - 1:
                    raise
                self.session.rollback()
        raise AssertionError("unreachable")

    def _sign_checkpoint(self) -> None:
        if self.audit.can_sign:
            self.audit.checkpoint()

    def _import(self, path: Path) -> ImportOutcome:
        with import_workspace(self.staging) as work:
            envelope, envelope_sha = self._open_envelope(path, work)
            previous = self._previous(path, envelope, envelope_sha)
            if previous is not None and previous.state is PackageState.IMPORTED:
                return self._already_imported(path, previous)
            manifest = self._unseal(path, envelope, work)
            dataset = self._validate(path, envelope, manifest, work)
            with period_lock(self.staging, dataset.name, manifest.as_of):
                return self._store(path, envelope, envelope_sha, manifest, dataset, work)

    def _previous(self, path: Path, envelope: Envelope, envelope_sha: str) -> Package | None:
        """The package's earlier import (finished or not); a different envelope under its id is a replay."""
        previous = self.session.scalar(select(Package).where(Package.package_id == envelope.package_id))
        if previous is not None and previous.envelope_sha256 != envelope_sha:
            raise _reject(
                "同じパッケージ ID で内容が異なります（再送攻撃の疑い）",
                "replayed package id with different content",
                path,
            )
        return previous

    # -- checks -----------------------------------------------------------------------------------------

    def _open_envelope(self, path: Path, work: Path) -> tuple[Envelope, str]:
        """Authenticate the envelope before a byte of the payload is written, then copy what it declares."""
        try:
            with open_archive(path) as tar:
                members = checked_members(tar, self.outer_limits, path.stat().st_size)
                body = read_member(tar, members[ENVELOPE])
                signature = read_member(tar, members[SIGNATURE])
                envelope = self._authenticate(path, body, signature)
                if members[PAYLOAD].size != envelope.payload_bytes:
                    raise _reject(
                        "中身の大きさが送り状と一致しません（改ざんの疑い）",
                        "payload size does not match the envelope",
                        path,
                    )
                ensure_free_space(work, WORK_FACTOR * envelope.payload_bytes)
                with private_file(work / PAYLOAD) as dest:
                    digest = copy_member(tar, members[PAYLOAD], dest)
        except FileNotFoundError:
            raise RenkeiError("パッケージが見つかりません", "package not found", Location(path)) from None
        except (tarfile.TarError, PackageFormatError, EOFError) as exc:
            raise _reject(
                "封緘パッケージの形式ではありません", f"not a sealed package ({exc})", path
            ) from None
        if digest != envelope.payload_sha256:
            raise _reject(
                "中身が送り状と一致しません（改ざんの疑い）", "payload hash does not match the envelope", path
            )
        return envelope, hashlib.sha256(body + signature).hexdigest()

    def _authenticate(self, path: Path, body: bytes, signature: bytes) -> Envelope:
        try:
            envelope = Envelope.model_validate_json(body)
        except ValidationError:
            raise _reject("送り状 (envelope) が読めません", "malformed envelope", path) from None
        if envelope.format != PACKAGE_FORMAT:
            raise _reject("未対応の形式です", f"unsupported format {envelope.format!r}", path)
        if envelope.payload_bytes > self.max_payload_bytes:
            raise _reject(
                "中身が大きすぎます", f"payload of {envelope.payload_bytes} bytes exceeds the ceiling", path
            )
        self._check_signature(path, envelope, body, signature)
        return envelope

    def _check_signature(self, path: Path, envelope: Envelope, body: bytes, signature: bytes) -> None:
        sender = self.session.scalar(select(Sender).where(Sender.name == envelope.sender))
        if sender is None:
            raise _reject(
                f"未登録の送信元です: {envelope.sender}", f"unknown sender {envelope.sender!r}", path
            )
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sender.public_key))
            key.verify(base64.b64decode(signature, validate=True), body)
        except (InvalidSignature, binascii.Error, ValueError):
            raise _reject(
                "署名を検証できません", f"signature does not verify for sender {sender.name!r}", path
            ) from None

    def _unseal(self, path: Path, envelope: Envelope, work: Path) -> Manifest:
        inner = work / "inner.tar"
        try:
            private_file(inner).close()  # age writes into it: 0600 from the first byte
            pyrage.decrypt_file(str(work / PAYLOAD), str(inner), [self.identity])
        except pyrage.DecryptError:
            inner.unlink(missing_ok=True)
            raise _reject(
                "基盤の鍵で復号できません（宛先が違うか改ざん）",
                "payload does not decrypt with the hub key",
                path,
            ) from None
        try:
            seal, manifest = self._read_inner(inner, envelope.payload_bytes, work)
        except (tarfile.TarError, PackageFormatError, ValidationError, EOFError) as exc:
            raise _reject("中身の形式が正しくありません", f"malformed payload ({_why(exc)})", path) from None
        finally:
            inner.unlink(missing_ok=True)
        with private_file(work / MANIFEST_FILE) as dest:
            dest.write(manifest.to_json().encode("utf-8"))
        if (seal.package_id, seal.sender) != (envelope.package_id, envelope.sender):
            raise _reject(
                "中身が送り状に結び付いていません", "sealed content is bound to another envelope", path
            )
        return manifest

    def _read_inner(self, inner: Path, payload_bytes: int, work: Path) -> tuple[Seal, Manifest]:
        limits = {SEAL: MAX_SEAL_BYTES, MANIFEST_FILE: MAX_MANIFEST_BYTES, DATA_FILE: payload_bytes}
        with open_archive(inner) as tar:
            members = checked_members(tar, limits, inner.stat().st_size)
            seal = Seal.model_validate_json(read_member(tar, members[SEAL]))
            manifest = Manifest.from_json(read_member(tar, members[MANIFEST_FILE]))
            with private_file(work / DATA_FILE) as dest:
                copy_member(tar, members[DATA_FILE], dest)
        return seal, manifest

    def _validate(self, path: Path, envelope: Envelope, manifest: Manifest, work: Path) -> Dataset:
        if (manifest.dataset, manifest.as_of) != (envelope.dataset, envelope.as_of):
            raise _reject(
                "送り状とマニフェストのデータセット・基準日が違います",
                "manifest does not match the envelope",
                path,
            )
        dataset = self.session.scalar(select(Dataset).where(Dataset.name == manifest.dataset))
        if dataset is None:
            raise _reject(
                f"未登録のデータセットです: {manifest.dataset}", f"unknown dataset {manifest.dataset!r}", path
            )
        spec = dataset.dataset_spec()
        if manifest.spec_hash != dataset.spec_hash:
            raise _reject(
                "データセット仕様が登録済みのものと違います",
                "spec hash differs from the registered spec",
                path,
            )
        data = work / DATA_FILE
        if sha256_file(data) != manifest.content_sha256 or data.stat().st_size != manifest.data_bytes:
            raise _reject(
                "データの内容ハッシュが一致しません", "content hash does not match the manifest", path
            )
        try:
            parquet = pq.ParquetFile(data)
            schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
        except Exception:
            raise _reject(
                "Parquet ファイルとして読めません", "data is not a readable Parquet file", path
            ) from None
        deleted = {name for name, col in spec.columns.items() if col.role in DELETED_ROLES}
        if deleted & set(schema.names):
            raise _reject(
                "削除すべき列（氏名・識別符号・生年月日）が含まれています",
                "a deleted column is present",
                path,
            )
        if schema_fields(schema) != schema_fields(spec.output_schema) or manifest.schema_ != schema_fields(
            schema
        ):
            raise _reject("列の構成が仕様と違います", "schema differs from the registered spec", path)
        if rows != manifest.rows_out:
            raise _reject("行数がマニフェストと違います", f"row count {rows} differs from the manifest", path)
        if refusal := unexpected_content(parquet, spec):
            raise _reject(refusal.ja, refusal.en, path)
        return dataset

    # -- storing (under the period's lock: renkei.hub.storing) ------------------------------------------

    def _store(
        self,
        path: Path,
        envelope: Envelope,
        envelope_sha: str,
        manifest: Manifest,
        dataset: Dataset,
        work: Path,
    ) -> ImportOutcome:
        name, dataset_id = dataset.name, dataset.id
        self.storing.recover_period(name, dataset_id, manifest.as_of, keep=envelope.package_id)
        package = self._reserve(path, envelope, envelope_sha, manifest, dataset_id, name)
        if package.state is PackageState.IMPORTED:  # a racing import of the same package finished first
            return self._already_imported(path, package)
        keys = write_record_keys(self.record_key, work / DATA_FILE, work / RECORD_KEYS_FILE)
        snapshot = self.storing.store(
            package,
            name,
            {DATA_FILE: work / DATA_FILE, MANIFEST_FILE: work / MANIFEST_FILE, RECORD_KEYS_FILE: keys},
        )
        assess_import(
            self.session, self.vault, self.audit, snapshot, work / DATA_FILE, self.risk, self.staging
        )
        return ImportOutcome(
            path, "imported", f"{name}/{snapshot.period.isoformat()}/v{snapshot.version}", snapshot.rows
        )

    def _reserve(
        self,
        path: Path,
        envelope: Envelope,
        envelope_sha: str,
        manifest: Manifest,
        dataset_id: int,
        name: str,
    ) -> Package:
        """This package's reservation: its earlier one, or the next version, after the checks made again here."""
        for _ in range(RESERVE_ATTEMPTS):
            try:
                with writing(self.session):
                    package = self._previous(path, envelope, envelope_sha)
                    if package is not None and package.state is PackageState.IMPORTED:
                        return package
                    self._refuse_stored_content(path, dataset_id, manifest)  # by another package meanwhile
                    if package is None:
                        package = self._new_reservation(envelope, envelope_sha, manifest, dataset_id, name)
                        self.session.add(package)
                    elif package.bytes is None:  # reserved by an older hub: record what finishing needs
                        package.rows, package.bytes = manifest.rows_out, manifest.data_bytes
                        package.spec_hash = manifest.spec_hash
                return package
            except IntegrityError:
                continue  # an importer that does not share the lock reserved first: decide again
        raise conflict(path)

    def _refuse_stored_content(self, path: Path, dataset_id: int, manifest: Manifest) -> None:
        duplicate = self.session.scalar(
            select(Snapshot.id).where(
                Snapshot.dataset_id == dataset_id,
                Snapshot.period == manifest.as_of,
                Snapshot.content_sha256 == manifest.content_sha256,
            )
        )
        if duplicate is not None:
            raise _reject(
                "同じ内容のスナップショットが既に保存されています（再送）",
                "same content already stored (replay)",
                path,
            )

    def _new_reservation(
        self, envelope: Envelope, envelope_sha: str, manifest: Manifest, dataset_id: int, name: str
    ) -> Package:
        sender = self.session.scalar(select(Sender).where(Sender.name == envelope.sender))
        assert sender is not None  # checked with the signature
        return Package(
            package_id=envelope.package_id,
            envelope_sha256=envelope_sha,
            sender_id=sender.id,
            dataset_id=dataset_id,
            period=manifest.as_of,
            version=self.storing.next_version(name, dataset_id, manifest.as_of),
            content_sha256=manifest.content_sha256,
            rows=manifest.rows_out,
            bytes=manifest.data_bytes,
            spec_hash=manifest.spec_hash,
            state=PackageState.STORING,
        )

    def _already_imported(self, path: Path, package: Package) -> ImportOutcome:
        snapshot = self.session.scalar(select(Snapshot).where(Snapshot.package_id == package.package_id))
        assert snapshot is not None
        self.audit.append(
            actor=IMPORTER,
            action=AuditAction.IMPORT_DUPLICATE,
            resource=snapshot.resource,
            result="ok",
            reason="package already imported; nothing changed",
            details={"package_id": package.package_id},
        )
        return ImportOutcome(path, "already imported", snapshot.resource, snapshot.rows)


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, PackageFormatError) else type(exc).__name__


def private_file(path: Path) -> BinaryIO:
    """A new file only the hub's user can read (0600 from creation, never an existing file)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def ensure_free_space(directory: Path, needed: int) -> None:
    """Refuse to start writing what would not fit (plus a reserve), instead of filling the disk midway."""
    free = shutil.disk_usage(directory).free
    if free < needed + FREE_SPACE_RESERVE:
        raise NoSpaceError(
            f"空き容量が足りません（必要 {needed + FREE_SPACE_RESERVE:,} バイト、空き {free:,} バイト）",
            f"not enough free space ({needed + FREE_SPACE_RESERVE:,} bytes needed, {free:,} free)",
            Location(directory),
        )
