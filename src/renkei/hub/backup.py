"""``renkei backup`` and ``renkei restore``: the whole hub in one directory, and a fresh hub made from it.

A backup is a directory (docs/backup.md)::

    manifest.json     format, time, the catalog's Alembic revision, the audit log's size and root, key ids,
                      every table's columns and row count, the snapshots, and the SHA-256 and size of every file
    manifest.sig      Ed25519 signature of manifest.json by the hub's audit key (hex)
    catalog/<table>.jsonl   every row of every hub table, one JSON array per line (the audit log is three of
                      these tables: entries, head, checkpoints)
    vault/<dataset>/<period>/v<N>/…   the encrypted snapshot files, byte for byte (they stay encrypted)
    home/             hub.toml, disclosure.toml, terminal_ca.crt (public), audit_checkpoints.jsonl

Consistency while the hub runs. The catalog is read in ONE transaction (PostgreSQL REPEATABLE READ, SQLite a
read transaction in WAL mode): every table as of one moment, the audit log included. The vault files are
copied *after*, and only those of the snapshots that moment's catalog names. That is enough because the
vault is written once and never changed: an import commits a snapshot's row only after its directory is
complete and sealed, so every snapshot the catalog names is complete in the vault and stays as it is; a
snapshot an import stores meanwhile has no row in the copy and is left out (its package, if reserved in the
copy, is a dead reservation the restored hub's next import releases). The one thing that changes vault files
in place, a key rotation, is kept out: the backup holds the rotation lock and refuses a pending rotation. The
checkpoint copy file is cut to the checkpoints the copied log covers.

Keys are not in the backup. The vault's files are encrypted under the KEK and the catalog's TOTP secrets are
wrapped by it; the KEK, the audit signing key, the package identity, the record key and the terminal CA's key
stay with their custodians. The manifest names each by a fingerprint, and ``restore`` takes them from a
directory (``--keys``) and refuses any that does not match.

Atomic: the backup is written into ``.<name>.partial-<random>`` next to the target and renamed once complete
and verified (every file read back against the manifest, every snapshot decrypted and checked against the
copied catalog); a failure removes it and says at which stage it failed.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Enum,
    LargeBinary,
    MetaData,
    Table,
    func,
    inspect,
    null,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import JSON

from renkei import __version__
from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.config import HUB, check_home, claim_home
from renkei.errors import Location, RenkeiError
from renkei.faults import as_renkei_error
from renkei.files import exclusive_flock, fsync_dir, write_private
from renkei.hub import merkle
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType
from renkei.hub.access.terminals import CA_CERT_FILE, CA_KEY_FILE
from renkei.hub.audit import AUDIT_KEY_FILE, CHECKPOINT_COPY_FILE, MAX_RESOURCE, key_id, load_audit_key
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import DATABASE_URL_ENV, Base, consistent_read, make_engine
from renkei.hub.disclosure.policy import POLICY_FILE
from renkei.hub.disclosure.record_keys import RECORD_KEY_FILE
from renkei.hub.home import PACKAGE_IDENTITY_FILE, STAGING_DIR, Hub
from renkei.hub.keys import KEK_FILE, PENDING_KEK_FILE, key_fingerprint
from renkei.hub.rotation import LOCK_FILE as ROTATION_LOCK_FILE
from renkei.hub.rotation import rotation_pending
from renkei.hub.settings import SETTINGS_FILE, load_settings
from renkei.hub.vault import CatalogRecord, SnapshotRef, Vault

FORMAT = "renkei-backup/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CATALOG_DIR = "catalog"
VAULT_DIR = "vault"
HOME_DIR = "home"
KEY_FILES = (KEK_FILE, AUDIT_KEY_FILE, PACKAGE_IDENTITY_FILE, RECORD_KEY_FILE, CA_KEY_FILE)  # never copied
HOME_FILES = (SETTINGS_FILE, POLICY_FILE, CA_CERT_FILE)  # copied as they are (no secrets: docs/backup.md)
BATCH = 1000
CHUNK = 1 << 20
FILE_MODE, SNAPSHOT_MODE, DIR_MODE = 0o400, 0o500, 0o700

# (stage, done, total): stages "catalog" (one step per table), "vault" (per file), "verify" (per file),
# "restore-catalog", "restore-vault". Also the tests' hook to act between steps.
Progress = Callable[[str, int, int], None]


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


class BackupError(RenkeiError):
    """A backup or restore cannot be made as asked (a target that exists, a running rotation, a newer schema)."""


class BackupDamagedError(BackupError):
    """A backup does not verify: a file is missing, changed or unexpected, or the manifest's signature fails."""


class BackupKeyError(BackupError):
    """The keys offered to a restore are missing or are not the backed-up hub's."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    snapshots: int
    rows: int
    files: int
    bytes: int
    audit_size: int
    manifest_sha256: str


@dataclass(frozen=True, slots=True)
class RestoreResult:
    home: Path
    database: str  # dialect
    snapshots: int
    rows: int
    audit_size: int  # entries after the restore's own
    revision: str


# --- rows ----------------------------------------------------------------------------------------------


def hub_tables() -> list[Table]:
    """Every hub table, parents before children (the order rows are loaded in)."""
    import renkei.hub.models  # noqa: F401, PLC0415 (every module that defines tables)

    return list(Base.metadata.sorted_tables)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.name
    return value


def _decoder(column: Column[Any]) -> Callable[[Any], Any]:
    column_type = column.type
    if isinstance(column_type, JSON):  # None: SQL NULL where the column allows it, else JSON null
        return (lambda v: null() if v is None else v) if column.nullable else (lambda v: v)
    if isinstance(getattr(column_type, "impl", column_type), DateTime):
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    if isinstance(column_type, Date):
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    if isinstance(column_type, LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v)
    if isinstance(column_type, Enum) and column_type.enum_class is not None:
        members = column_type.enum_class
        return lambda v: None if v is None else members[v]
    return lambda v: v


def read_rows(conn: Connection, table: Table) -> Iterator[list[Any]]:
    """A table's rows in primary-key order, each as encoded JSON values in column order."""
    query = select(table).order_by(*table.primary_key.columns)
    result = conn.execution_options(yield_per=BATCH).execute(query)
    with result:
        for row in result:
            yield [_encode(v) for v in row]


def _revisions(engine: Engine) -> Any:
    from alembic.script import ScriptDirectory  # noqa: PLC0415 (Alembic: only here)

    from renkei.hub.migrate import alembic_config  # noqa: PLC0415

    return ScriptDirectory.from_config(alembic_config(engine))


def _current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    return MigrationContext.configure(conn).get_current_revision()


# --- files ---------------------------------------------------------------------------------------------


@dataclass
class _Writer:
    """Files written into the backup under construction, each hashed as written and fsynced."""

    root: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def open(self, relative: str, mode: int = 0o600) -> _HashedFile:
        path = self.root / relative
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        return _HashedFile(self, relative, os.fdopen(fd, "wb"))

    def copy(self, source: Path, relative: str, mode: int = 0o600) -> None:
        with source.open("rb") as src, self.open(relative, mode) as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)


class _HashedFile:
    def __init__(self, writer: _Writer, relative: str, file: Any) -> None:
        self.writer, self.relative, self.file = writer, relative, file
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.digest.update(data)
        self.size += len(data)

    def __enter__(self) -> _HashedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.file.flush()
                os.fsync(self.file.fileno())
                self.writer.files[self.relative] = {"sha256": self.digest.hexdigest(), "bytes": self.size}
        finally:
            self.file.close()


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _remove_tree(path: Path) -> None:
    """Remove a tree that may hold sealed (0500) directories."""
    if not path.exists():
        return
    for directory, _dirs, _files in os.walk(path):
        with suppress(OSError):
            Path(directory).chmod(DIR_MODE)
    shutil.rmtree(path, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for directory, _dirs, _files in os.walk(root, topdown=False):
        fsync_dir(Path(directory))


def _key_files(home: Path) -> dict[str, str]:
    """The private key files a home holds, by a fingerprint that reveals nothing of them."""
    return {
        name: key_fingerprint((home / name).read_bytes()) for name in KEY_FILES if (home / name).is_file()
    }


def _snapshot_dir(root: Path, ref: SnapshotRef) -> Path:
    return root.joinpath(*ref.parts)


# --- backup --------------------------------------------------------------------------------------------


def backup(
    hub: Hub, actor: Actor, target: Path, *, clock: Clock = SYSTEM_CLOCK, progress: Progress = _no_progress
) -> BackupResult:
    """Write a complete, verified backup of ``hub`` to the new directory ``target`` (atomically)."""
    from renkei.hub.services.decisions import require  # noqa: PLC0415 (the access stack: only here)

    target = target.absolute()
    resource = Resource(ResourceType.SYSTEM.value, None, "backup")
    with hub.session() as db:
        require(db, hub, actor, Action.ADMIN_CATALOG, resource, clock)
    _check_target(target)
    _sweep_partials(target)
    temporary = target.parent / f"{_partial_prefix(target)}{secrets.token_hex(6)}"
    stage = ["開始", "start"]
    try:
        with _no_rotation(hub.home):
            temporary.mkdir(mode=DIR_MODE)
            with _held(temporary):
                result = _write_backup(hub, temporary, target, clock, progress, stage)
            stage[:] = ["完成したバックアップの名前の変更", "renaming the finished backup"]
            temporary.rename(target)
            fsync_dir(target.parent)
    except Exception as exc:
        _remove_tree(temporary)
        failed = f"failed while {stage[1]}; nothing was left behind"
        with suppress(Exception):  # the failure itself must reach the operator even if the log cannot
            hub.audit.append(
                actor=actor.name,
                action=AuditAction.BACKUP,
                resource=_label(target),
                result="error",
                reason=f"{failed}: {type(exc).__name__}",
                terminal=actor.terminal,
                details={},
            )
        error = as_renkei_error(exc)
        if error is None:
            raise
        error.ja = f"バックアップは「{stage[0]}」の段階で失敗しました（何も残していません）: {error.ja}"
        error.en = f"the backup {failed}: {error.en}"
        raise error from exc
    hub.audit.append(
        actor=actor.name,
        action=AuditAction.BACKUP,
        resource=_label(target),
        terminal=actor.terminal,
        details={
            "snapshots": result.snapshots,
            "row_count": result.rows,
            "audit_size": result.audit_size,
            "manifest_sha256": result.manifest_sha256,
        },
    )
    return result


def _label(target: Path) -> str:
    """The backup's name in the audit log: its path, or its last part when the path is too long for a resource."""
    return str(target) if len(str(target)) <= MAX_RESOURCE else target.name[:MAX_RESOURCE]


def _partial_prefix(target: Path) -> str:
    return f".{target.name}.partial-"


@contextmanager
def _held(directory: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive flock on the directory itself: a backup holds its partial directory while writing it."""
    with exclusive_flock(
        os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), blocking=blocking
    ) as held:
        yield held


def _sweep_partials(target: Path) -> None:
    """Remove what a killed backup to the same target left (a partial directory no live backup holds)."""
    for leftover in target.parent.glob(f"{glob_escape(_partial_prefix(target))}*"):
        with suppress(OSError), _held(leftover, blocking=False) as dead:
            if dead:
                _remove_tree(leftover)


def _check_target(target: Path) -> None:
    if target.exists() or target.is_symlink():
        raise BackupError(
            "バックアップ先が既に存在します。新しいディレクトリ名を指定してください（上書きしません）",
            "the backup target exists; name a new directory (a backup never overwrites)",
            Location(target),
        )
    if not target.parent.is_dir():
        raise BackupError(
            "バックアップ先の親ディレクトリがありません",
            "the backup target's parent directory does not exist",
            Location(target.parent),
        )


@contextmanager
def _no_rotation(home: Path) -> Iterator[None]:
    """Keep a KEK rotation out for the whole backup (it rewrites vault key files in place)."""
    if rotation_pending(home) or (home / PENDING_KEK_FILE).exists():
        raise BackupError(
            "鍵暗号化鍵の更新が途中です。`renkei vault rotate-key` を完了させてからバックアップしてください",
            "a KEK rotation is unfinished; complete `renkei vault rotate-key` before taking a backup",
            Location(home / PENDING_KEK_FILE),
        )
    fd = os.open(home / ROTATION_LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with exclusive_flock(fd, blocking=False) as alone:
        if not alone:
            raise BackupError(
                "鍵暗号化鍵の更新が実行中です。終わってからもう一度実行してください",
                "a KEK rotation is running; run the backup again when it has finished",
                Location(home / ROTATION_LOCK_FILE),
            )
        yield


def _write_backup(
    hub: Hub, root: Path, target: Path, clock: Clock, progress: Progress, stage: list[str]
) -> BackupResult:
    writer = _Writer(root)
    tables = hub_tables()
    engine = hub.engine
    head = _revisions(engine).get_current_head()
    table_info: dict[str, dict[str, Any]] = {}
    stage[:] = ["カタログの読み出し", "reading the catalog"]
    with consistent_read(engine, read_only=True) as conn:
        revision = _current_revision(conn)
        if revision != head:
            raise BackupError(
                "カタログのスキーマが最新ではありません。`renkei hub migrate` を実行してからバックアップしてください",
                "the catalog schema is not at this version's head; run `renkei hub migrate` first",
            )
        for number, table in enumerate(tables):
            progress("catalog", number, len(tables))
            count = 0
            with writer.open(f"{CATALOG_DIR}/{table.name}.jsonl") as out:
                for row in read_rows(conn, table):
                    out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
                    count += 1
            table_info[table.name] = {"columns": [c.name for c in table.columns], "rows": count}
        progress("catalog", len(tables), len(tables))
        audit = {**_audit_state(conn), "key_id": key_id(load_audit_key(hub.home).public_key())}
        catalog = _catalog_view(conn)
    stage[:] = ["保管庫ファイルの複製", "copying the vault files"]
    for ref in sorted(catalog):
        if not _snapshot_dir(hub.vault.root, ref).is_dir():
            raise BackupDamagedError(
                "カタログにあるスナップショットが保管庫にありません。`renkei vault verify` で検査してください",
                "a snapshot the catalog names is not in the vault; run `renkei vault verify`",
                Location(_snapshot_dir(hub.vault.root, ref)),
            )
    sources = [
        (ref, path)
        for ref in sorted(catalog)
        for path in sorted(_snapshot_dir(hub.vault.root, ref).iterdir())
    ]
    for number, (ref, path) in enumerate(sources):
        progress("vault", number, len(sources))
        writer.copy(path, f"{VAULT_DIR}/{'/'.join(ref.parts)}/{path.name}", FILE_MODE)
    progress("vault", len(sources), len(sources))
    stage[:] = ["ホームの設定ファイルの複製", "copying the home's settings files"]
    for name in HOME_FILES:
        if (hub.home / name).is_file():
            writer.copy(hub.home / name, f"{HOME_DIR}/{name}")
    _copy_checkpoints(hub.home / CHECKPOINT_COPY_FILE, writer, audit["size"])
    for ref in catalog:
        _snapshot_dir(root / VAULT_DIR, ref).chmod(SNAPSHOT_MODE)
    manifest = {
        "format": FORMAT,
        "created_at": clock.now().astimezone(dt.UTC).isoformat(),
        "renkei_version": __version__,
        "name": target.name,
        "source": {"home": str(hub.home), "database": engine.dialect.name},
        "revision": revision,
        "audit": audit,
        "kek_id": hub.kek.key_id,
        "package_recipient": hub.package_recipient(),
        "keys": _key_files(hub.home),
        "tables": table_info,
        "snapshots": [str(ref) for ref in sorted(catalog)],
        "files": dict(sorted(writer.files.items())),
    }
    data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode() + b"\n"
    key = load_audit_key(hub.home)
    _write_file(root / MANIFEST, data)
    _write_file(root / SIGNATURE, key.sign(data).hex().encode() + b"\n")
    _fsync_tree(root)
    stage[:] = ["書き込んだバックアップの検証", "verifying the written backup"]
    read = _read_manifest(root, key.public_key())
    _check_files(root, read, progress)
    problems = Vault(root / VAULT_DIR, hub.kek).verify(catalog)
    if problems:
        raise BackupDamagedError(
            "書き込んだバックアップの保管庫ファイルが検証できません",
            f"the backup's vault copy does not verify: {problems[0].en}",
            Location(problems[0].path),
        )
    return BackupResult(
        path=target,
        snapshots=len(catalog),
        rows=sum(t["rows"] for t in table_info.values()),
        files=len(writer.files) + 2,
        bytes=sum(f["bytes"] for f in writer.files.values()) + len(data),
        audit_size=audit["size"],
        manifest_sha256=hashlib.sha256(data).hexdigest(),
    )


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _audit_state(conn: Connection) -> dict[str, Any]:
    """The copied log's size and Merkle root, from its head row (restore checks the loaded log against it)."""
    row = conn.execute(text("SELECT size, frontier FROM audit_head WHERE id = 1")).one_or_none()
    if row is None:
        return {"size": 0, "root": merkle.Frontier().root().hex()}
    return {"size": row.size, "root": merkle.Frontier.from_hex(row.size, row.frontier).root().hex()}


def _catalog_view(conn: Connection) -> dict[SnapshotRef, dict[str, CatalogRecord | None]]:
    from renkei.hub.home import catalog_view  # noqa: PLC0415

    return catalog_view(conn)  # the same files vault verify expects (data, manifest, record keys)


def _copy_checkpoints(source: Path, writer: _Writer, audit_size: int) -> None:
    """The checkpoint copy file, cut to the checkpoints the copied log covers (later ones sign entries that
    are not in the backup, so a restored log would look truncated against them)."""
    try:
        lines = source.read_bytes().split(b"\n")
    except FileNotFoundError:
        return
    kept: list[bytes] = []
    for line in lines[:-1]:  # a last line with no newline is a torn write: left out
        try:
            size = json.loads(line).get("size")
        except (ValueError, AttributeError):
            size = None
        if not isinstance(size, int) or size <= audit_size:
            kept.append(line + b"\n")
    with writer.open(f"{HOME_DIR}/{CHECKPOINT_COPY_FILE}") as out:
        out.write(b"".join(kept))


# --- reading and checking a backup ---------------------------------------------------------------------


def _damaged(ja: str, en: str, where: Path) -> BackupDamagedError:
    return BackupDamagedError(
        f"バックアップが壊れているか改ざんされています: {ja}",
        f"the backup is damaged or altered: {en}",
        Location(where),
    )


def _read_manifest(root: Path, public_key: Any) -> dict[str, Any]:
    """The manifest, once its signature by the audit key verifies."""
    path = root / MANIFEST
    try:
        data = path.read_bytes()
        signature = bytes.fromhex((root / SIGNATURE).read_text(encoding="ascii").strip())
    except FileNotFoundError as exc:
        raise _damaged(
            "目録または署名がありません", "the manifest or its signature is missing", Path(exc.filename)
        ) from None
    except ValueError:
        raise _damaged("署名の形式が不正です", "the signature is malformed", root / SIGNATURE) from None
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        raise _damaged(
            "目録の署名が監査署名鍵で検証できません",
            "the manifest's signature does not verify with the audit key",
            path,
        ) from None
    manifest = json.loads(data)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("renkei のバックアップではありません", f"not a {FORMAT} backup", Location(path))
    return manifest


def _check_files(root: Path, manifest: Mapping[str, Any], progress: Progress) -> None:
    """Every file the manifest lists, with its hash and size, and no other."""
    listed: Mapping[str, Mapping[str, Any]] = manifest["files"]
    present = {str((Path(d) / f).relative_to(root)) for d, _dirs, files in os.walk(root) for f in files} - {
        MANIFEST,
        SIGNATURE,
    }
    for extra in sorted(present - set(listed)):
        raise _damaged("目録にないファイルがあります", "a file not in the manifest", root / extra)
    for number, (relative, record) in enumerate(sorted(listed.items())):
        progress("verify", number, len(listed))
        path = root / relative
        if relative not in present:
            raise _damaged("ファイルがありません", "a file is missing", path)
        if _sha256(path) != (record["sha256"], record["bytes"]):
            raise _damaged(
                "ファイルの内容が目録と一致しません", "a file's content differs from the manifest", path
            )
    progress("verify", len(listed), len(listed))


def inspect_backup(source: Path, keys: Path) -> dict[str, Any]:
    """A backup's manifest, checked: its signature by the audit key in ``keys``, every file's hash."""
    audit_key = _audit_key(source, keys)
    with suppress(ValueError, KeyError, TypeError, OSError):  # unreadable: the signature check names it
        claimed = json.loads((source / MANIFEST).read_bytes())["audit"]["key_id"]
        if claimed != key_id(audit_key.public_key()):
            raise BackupKeyError(
                "鍵のディレクトリの監査署名鍵はバックアップ元の基盤のものではありません",
                f"the audit signing key in the keys directory is not the backed-up hub's (key id {claimed})",
                Location(keys / AUDIT_KEY_FILE),
            )
    manifest = _read_manifest(source, audit_key.public_key())
    _check_files(source, manifest, _no_progress)
    return manifest


def _audit_key(source: Path, keys: Path) -> Ed25519PrivateKey:
    if not (source / MANIFEST).is_file():
        raise BackupError(
            "バックアップ（manifest.json のあるディレクトリ）ではありません",
            "not a backup (a directory holding manifest.json)",
            Location(source),
        )
    try:
        return load_audit_key(keys)
    except RenkeiError as exc:
        raise BackupKeyError(
            f"鍵のディレクトリに監査署名鍵がありません: {exc.ja}",
            f"the keys directory holds no usable audit signing key: {exc.en}",
            Location(keys / AUDIT_KEY_FILE),
        ) from None


# --- restore -------------------------------------------------------------------------------------------


def restore(
    source: Path,
    home: Path,
    keys: Path,
    actor: Actor,
    *,
    database_url: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    progress: Progress = _no_progress,
) -> RestoreResult:
    """Make a fresh hub in ``home`` (and ``database_url``, else its own SQLite file) from the backup ``source``.

    Checks before writing anything: the manifest's signature and every file's hash, the schema revision,
    the keys in ``keys`` against the manifest's fingerprints, an empty home and an empty database. Then: the
    keys and settings into the home, the schema by the Alembic migrations up to the backup's revision, the
    rows, the migrations to this version's head, the vault files; finally the vault and the audit log are
    verified and the restore is authorized and recorded in the restored log.
    """
    source, home = source.absolute(), home.absolute()
    check_home(home, HUB)  # a sending side's home (or one holding its key) is refused before anything else
    manifest = inspect_backup(source, keys)
    _check_home_empty(home)
    url = database_url or f"sqlite:///{home / 'catalog.db'}"
    env_url = os.environ.get(DATABASE_URL_ENV, "")
    if env_url and env_url != url:
        raise BackupError(
            f"{DATABASE_URL_ENV} が復元先と別のデータベースを指しています。外すか、同じ URL を --database-url に指定してください",
            f"{DATABASE_URL_ENV} names another database than the restore's; unset it or pass it as --database-url",
        )
    key_files = _check_keys(manifest, keys)
    engine = make_engine(url) if not url.startswith("sqlite") else None
    if engine is not None:
        try:
            _check_database_empty(engine, url)
        except BackupError:
            engine.dispose()  # no connection outlives a refusal
            raise
    created_home = not home.exists()
    hub: Hub | None = None
    try:
        _make_home(home, source, keys, key_files, url if database_url else None)
        engine = engine or make_engine(url)
        revision = _check_revision(engine, manifest["revision"])
        rows = _load_catalog(engine, home, source, manifest, revision, progress)
        _copy_vault(source, home, manifest, progress)
        hub = Hub(home)
        _check_restored(hub, manifest)
    except BaseException:  # undo what was written, so that the restore can simply be run again
        if hub is not None and "engine" in hub.__dict__:
            hub.engine.dispose()
        if engine is not None and engine.dialect.name != "sqlite":  # SQLite's file goes with the home
            with suppress(Exception):
                _drop_everything(engine)
        if created_home:
            _remove_tree(home)
        else:
            for child in list(home.iterdir()):
                _remove_tree(child) if child.is_dir() else child.unlink()
        raise
    finally:
        if engine is not None:
            engine.dispose()
    try:
        return _record_restore(hub, actor, source, manifest, rows, home, clock)
    finally:
        hub.engine.dispose()  # the restored hub's connections are this function's, not the caller's


def _record_restore(
    hub: Hub, actor: Actor, source: Path, manifest: Mapping[str, Any], rows: int, home: Path, clock: Clock
) -> RestoreResult:
    from renkei.hub.services.decisions import require  # noqa: PLC0415

    with hub.session() as db:
        require(
            db, hub, actor, Action.ADMIN_CATALOG, Resource(ResourceType.SYSTEM.value, None, "restore"), clock
        )
    entry = hub.audit.append(
        actor=actor.name,
        action=AuditAction.RESTORE,
        resource=manifest.get("name", source.name),
        terminal=actor.terminal,
        details={
            "backup_created_at": manifest["created_at"],
            "source_database": manifest["source"]["database"],
            "database": hub.engine.dialect.name,
            "audit_size": manifest["audit"]["size"],
            "snapshots": len(manifest["snapshots"]),
            "row_count": rows,
        },
    )
    hub.audit.checkpoint()
    return RestoreResult(
        home, hub.engine.dialect.name, len(manifest["snapshots"]), rows, entry.seq + 1, manifest["revision"]
    )


def _check_home_empty(home: Path) -> None:
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise BackupError(
            "復元先のホームが空ではありません。新しいディレクトリを指定してください",
            "the restore's home is not empty; name a new directory",
            Location(home),
        )


def _check_database_empty(engine: Engine, url: str) -> None:
    names = inspect(engine).get_table_names()
    if names:
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        raise BackupError(
            f"復元先のデータベースが空ではありません（テーブル {len(names)} 個）。空のデータベースを指定してください",
            f"the restore's database is not empty ({len(names)} tables); name an empty one",
            Location(make_url(url).render_as_string(hide_password=True)),
        )


def _check_keys(manifest: Mapping[str, Any], keys: Path) -> list[str]:
    """The key files to install: every one the backed-up home held, each with its recorded fingerprint."""
    wanted: Mapping[str, str] = manifest["keys"]
    for name, fingerprint in sorted(wanted.items()):
        path = keys / name
        if not path.is_file():
            raise BackupKeyError(
                f"鍵のディレクトリに {name} がありません（バックアップ元の基盤が持っていた鍵です）",
                f"{name} is not in the keys directory (the backed-up hub held it)",
                Location(path),
            )
        if key_fingerprint(path.read_bytes()) != fingerprint:
            raise BackupKeyError(
                f"{name} はバックアップ元の基盤の鍵ではありません",
                f"{name} is not the backed-up hub's key",
                Location(path),
            )
    return sorted(wanted)


def _make_home(home: Path, source: Path, keys: Path, key_files: list[str], url: str | None) -> None:
    claim_home(home, HUB)
    home.chmod(DIR_MODE)
    for sub in (VAULT_DIR, "inbox", STAGING_DIR):
        (home / sub).mkdir(mode=DIR_MODE, exist_ok=True)
    for name in key_files:
        write_private(home / name, (keys / name).read_bytes())
    for name in (POLICY_FILE, CA_CERT_FILE, CHECKPOINT_COPY_FILE):
        if (source / HOME_DIR / name).is_file():
            write_private(home / name, (source / HOME_DIR / name).read_bytes())
    settings = source / HOME_DIR / SETTINGS_FILE
    text_ = settings.read_text(encoding="utf-8") if settings.is_file() else ""
    text_ = _with_database(text_, url)
    if text_.strip():
        write_private(home / SETTINGS_FILE, text_.encode())


def _with_database(toml: str, url: str | None) -> str:
    """``hub.toml`` with its ``[database]`` table replaced: the restored hub's URL, or none (its own SQLite)."""
    lines, keep = [], True
    for line in toml.splitlines(keepends=True):
        header = line.strip()
        if header.startswith("[") and not header.startswith("[["):
            keep = header.split("#", 1)[0].strip() != "[database]"
        if keep:
            lines.append(line)
    result = "".join(lines)
    if url:
        result = f"[database]\nurl = {json.dumps(url)}\n\n" + result
    return result


def _check_revision(engine: Engine, revision: str) -> str:
    """The backup's revision, which this version must know (a backup from a newer one is refused)."""
    script = _revisions(engine)
    try:
        known = script.get_revision(revision) is not None
    except Exception:  # Alembic raises its own errors for an unknown or malformed id
        known = False
    if not known:
        raise BackupError(
            f"バックアップのスキーマ版 {revision} をこの版の renkei は知りません（より新しい版で作られたバックアップです）。"
            "同じ版以降の renkei で復元してください",
            f"the backup's schema revision {revision} is unknown to this renkei (a backup from a newer version);"
            " restore it with that version or later",
        )
    return revision


def _load_catalog(
    engine: Engine, home: Path, source: Path, manifest: Mapping[str, Any], revision: str, progress: Progress
) -> int:
    """The schema up to the backup's revision, every row, then the migrations up to head."""
    from renkei.hub.keys import load_kek  # noqa: PLC0415
    from renkei.hub.migrate import upgrade  # noqa: PLC0415

    upgrade(engine, revision)
    schema = inspect(engine)
    present = {name: {c["name"] for c in schema.get_columns(name)} for name in schema.get_table_names()}
    recorded: Mapping[str, Mapping[str, Any]] = manifest["tables"]
    for name, info in sorted(recorded.items()):
        unknown = sorted(set(info["columns"]) - present.get(name, set()))
        if name not in present or unknown:
            raise BackupDamagedError(
                f"バックアップのテーブル {name} がスキーマ版 {revision} のスキーマと合いません",
                f"the backup's table {name} does not fit the schema of its revision {revision}"
                + (f" (columns {', '.join(unknown)})" if name in present else ""),
                Location(source / CATALOG_DIR / f"{name}.jsonl"),
            )
    models = {t.name: t for t in hub_tables()}
    order = [n for n in models if n in recorded] + sorted(set(recorded) - set(models))
    loaded: list[Table] = []
    total = 0
    with engine.begin() as conn:
        for number, name in enumerate(order):
            progress("restore-catalog", number, len(order))
            table = _loading_table(name, recorded[name]["columns"], models.get(name))
            loaded.append(table)
            decoders = [_decoder(c) for c in table.columns]
            keys = [c.key for c in table.columns]
            batch: list[dict[str, Any]] = []
            with (source / CATALOG_DIR / f"{name}.jsonl").open("rb") as lines:
                for line in lines:
                    row = json.loads(line)
                    batch.append({k: d(v) for k, d, v in zip(keys, decoders, row, strict=True)})
                    if len(batch) == BATCH:
                        conn.execute(table.insert(), batch)
                        total += len(batch)
                        batch = []
            if batch:
                conn.execute(table.insert(), batch)
                total += len(batch)
        progress("restore-catalog", len(order), len(order))
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn, loaded)
    head = _revisions(engine).get_current_head()
    if revision != head:
        upgrade(engine, "head", kek=load_kek(home, load_settings(home).keys.kms))
    return total


def _loading_table(name: str, columns: list[str], model: Table | None) -> Table:
    """The columns a backup holds of a table, typed as the model types them (a column the model no longer has,
    kept at an older revision, as it comes), with no defaults: the insert writes exactly the backed-up values."""
    typed = {c.name: c for c in model.columns} if model is not None else {}
    return Table(
        name,
        MetaData(),
        *(
            Column(
                c,
                typed[c].type,
                primary_key=typed[c].primary_key,
                autoincrement=typed[c].autoincrement,
                nullable=typed[c].nullable,
            )
            if c in typed
            else Column(c)
            for c in columns
        ),
    )


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: each serial column's sequence past the loaded ids (SQLite takes max(rowid) + 1 itself)."""
    for table in tables:
        for column in table.primary_key.columns:
            if column.autoincrement is not True and not (
                column.autoincrement == "auto" and len(table.primary_key.columns) == 1
            ):
                continue
            sequence = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            ).scalar()
            if sequence is None:
                continue
            highest = conn.execute(select(func.max(column))).scalar() or 0
            conn.execute(text("SELECT setval(:s, :n, false)"), {"s": sequence, "n": highest + 1})


def _copy_vault(source: Path, home: Path, manifest: Mapping[str, Any], progress: Progress) -> None:
    prefix = VAULT_DIR + "/"
    files = sorted(f for f in manifest["files"] if f.startswith(prefix))
    for number, relative in enumerate(files):
        progress("restore-vault", number, len(files))
        target = home / relative
        target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        with os.fdopen(fd, "wb") as out, (source / relative).open("rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
    progress("restore-vault", len(files), len(files))
    for name in manifest["snapshots"]:
        directory = home / VAULT_DIR / name
        fsync_dir(directory)
        directory.chmod(SNAPSHOT_MODE)
    _fsync_tree(home / VAULT_DIR)


def _check_restored(hub: Hub, manifest: Mapping[str, Any]) -> None:
    """The restored vault against the restored catalog, and the restored log, as the backup recorded it."""
    from renkei.hub.home import verify_vault  # noqa: PLC0415

    if hub.kek.key_id != manifest["kek_id"]:
        raise BackupKeyError(
            "鍵暗号化鍵がバックアップ元の基盤のものではありません",
            f"the key-encryption key in force ({hub.kek.key_id}) is not the backed-up hub's ({manifest['kek_id']})",
        )
    if hub.package_recipient() != manifest["package_recipient"]:
        raise BackupKeyError(
            "受入鍵がバックアップ元の基盤のものではありません",
            "the package identity is not the backed-up hub's",
            Location(hub.home / PACKAGE_IDENTITY_FILE),
        )
    problems = verify_vault(hub)
    if problems:
        raise BackupDamagedError(
            f"復元した保管庫が検証できません: {problems[0].ja}",
            f"the restored vault does not verify: {problems[0].en}",
            Location(problems[0].path),
        )
    report = hub.audit.verify()
    audit = manifest["audit"]
    if not report.ok or (report.size, report.root_hex) != (audit["size"], audit["root"]):
        raise BackupDamagedError(
            f"復元した監査ログが検証できません: {report.message_ja or 'バックアップ時と一致しません'}",
            f"the restored audit log does not verify: {report.message_en or 'it differs from the backed-up log'}",
        )


def _drop_everything(engine: Engine) -> None:
    """Undo a failed restore's schema, so that the database is empty again for the next attempt."""
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
