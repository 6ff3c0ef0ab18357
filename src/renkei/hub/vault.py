"""The vault (保管庫): every stored snapshot, encrypted at rest, written once and never changed or deleted.

Layout under ``<hub home>/vault/``::

    <dataset>/<period as-of date>/v<version>/     one snapshot (dir 0500, files 0400)
        data.parquet.age                          the file, age-encrypted to its own X25519 identity (the DEK)
        data.parquet.age.key.json                 that DEK, wrapped by the KEK (AES-256-GCM, bound to the file)
        manifest.json.age (+ .key.json)           …one pair per stored file
        checksums.json.age (+ .key.json)          sizes and SHA-256 of every file, plaintext and ciphertext
    .staging/                                     snapshots being written (never read as snapshots)
    .lock                                         writers share it; sweeping and key rotation take it alone

Why this shape (docs/vault.md): DuckDB cannot safely read encrypted Parquet written by pyarrow (engine facts
§1), so files are encrypted whole and decrypted at workspace open into sealed memfds that DuckDB reads as
``/proc/self/fd/N`` (§9, design b). age is a standard authenticated streaming format (ChaCha20-Poly1305 in
64 KiB chunks; truncation and reordering are detected). The file's identity is generated for that file and
its public half is never stored, so only a holder of the KEK can open a file or make a valid one.

Write protocol (crash-safe, append-only): files are encrypted into ``.staging/<token>/<dataset>/<period>/vN``
and fsynced, then the highest level that does not exist yet is renamed into place in one ``rename`` and the
parent directory is fsynced. A ``kill -9`` at any moment leaves the complete snapshot or nothing visible; the
next write (or :meth:`Vault.sweep_staging`) removes what was left in staging. An existing snapshot is never
replaced: a correction is stored as the next version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyrage

from renkei.errors import Location, RenkeiError
from renkei.files import exclusive_flock, fsync_dir
from renkei.hub.keys import KeyEncryptionKey, WrappedKey, WrongKekError, check_kek_id

CIPHER_SUFFIX = ".age"
KEY_SUFFIX = ".key.json"
CHECKSUMS = "checksums.json"
STAGING = ".staging"
LOCK = ".lock"
FILE_MODE = 0o400
SNAPSHOT_MODE = 0o500
DIR_MODE = 0o700
KEY_FORMAT = "renkei-dek/1"
CHECKSUMS_FORMAT = "renkei-checksums/1"
DEK_AAD_PREFIX = b"renkei/dek/v1|"
MEMFD_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL

_DATASET = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_VERSION = re.compile(r"v([1-9][0-9]{0,8})\Z")
_IO_BUFFER = 1 << 20
AGE_AUTH_FAILURE = "decryption error"  # pyrage's message when a chunk fails authentication


class VaultError(RenkeiError):
    """The vault refuses or cannot complete an operation."""


class SnapshotExistsError(VaultError):
    """The snapshot is already stored; the vault never replaces one (store the next version instead)."""


class SnapshotNotFoundError(VaultError):
    """Unknown dataset, snapshot, or file in a snapshot."""


class CorruptedFileError(VaultError):
    """A stored file fails authentication or its recorded checksum: damaged or tampered with."""


class VaultFullError(VaultError):
    """The disk filled up while storing; nothing was stored."""


@dataclass(frozen=True, order=True, slots=True)
class SnapshotRef:
    """One snapshot: a dataset as of a date (the period), in a version (corrections are v2, v3 …)."""

    dataset: str
    period: dt.date
    version: int

    def __post_init__(self) -> None:
        _check_dataset(self.dataset)
        if isinstance(self.period, dt.datetime) or not isinstance(self.period, dt.date):
            raise VaultError("期間は日付で指定してください", f"period must be a date, got {self.period!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise VaultError(
                "版は 1 以上の整数です", f"version must be an integer >= 1, got {self.version!r}"
            )

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.dataset, self.period.isoformat(), f"v{self.version}"

    def __str__(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    plain_sha256: str
    plain_bytes: int
    cipher_sha256: str
    cipher_bytes: int

    def to_json(self) -> dict[str, str | int]:
        return {
            "plain_sha256": self.plain_sha256,
            "plain_bytes": self.plain_bytes,
            "cipher_sha256": self.cipher_sha256,
            "cipher_bytes": self.cipher_bytes,
        }


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    ref: SnapshotRef
    path: Path
    files: Mapping[str, StoredFile]


@dataclass(frozen=True, slots=True)
class CatalogRecord:
    """What the catalog records of a stored file: its plaintext SHA-256 and size."""

    plain_sha256: str
    plain_bytes: int


# What the catalog says the vault holds: each snapshot's files, with their record where the catalog keeps one.
CatalogView = Mapping[SnapshotRef, Mapping[str, CatalogRecord | None]]


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    """One finding of :meth:`Vault.verify`; ``kind`` is unreadable, checksum, missing, unexpected, mode, staging,
    rotation (an interrupted key rotation), catalog (content differs from the catalog's record) or
    uncatalogued (a snapshot with no catalog row)."""

    path: Path
    kind: str
    ja: str
    en: str

    def __str__(self) -> str:
        return f"{self.path}: {self.ja} ({self.en})"


class Vault:
    """Encrypted, append-only snapshot store under ``root`` (``<hub home>/vault``)."""

    def __init__(self, root: Path, kek: KeyEncryptionKey) -> None:
        self.root = root
        self._kek = kek

    @property
    def kek_id(self) -> str:
        return self._kek.key_id

    # -- listing ------------------------------------------------------------------------------------------

    def exists(self, ref: SnapshotRef) -> bool:
        """Whether the snapshot is stored (visible snapshots are always complete)."""
        return self._dir(ref).is_dir()

    def next_version(self, dataset: str, period: dt.date) -> int:
        _check_dataset(dataset)
        period_dir = self.root / dataset / period.isoformat()
        return max([0, *(_version_of(entry) for entry in _names(period_dir))]) + 1

    def snapshots(self, dataset: str | None = None) -> list[SnapshotRef]:
        """Stored snapshots, sorted; a named dataset must have at least one."""
        if dataset is None:
            datasets = [name for name in _names(self.root) if _DATASET.match(name)]
        else:
            _check_dataset(dataset)
            if not (self.root / dataset).is_dir():
                raise _unknown_dataset(self.root / dataset)
            datasets = [dataset]
        return sorted(ref for name in datasets for ref in self._dataset_snapshots(name))

    def _dataset_snapshots(self, dataset: str) -> Iterator[SnapshotRef]:
        for period_name in _names(self.root / dataset):
            period = _parse_period(period_name)
            if period is None:
                continue
            for version_name in _names(self.root / dataset / period_name):
                if version := _version_of(version_name):
                    yield SnapshotRef(dataset, period, version)

    def files(self, ref: SnapshotRef) -> list[str]:
        """Names of the files stored in a snapshot (as given to :meth:`store`)."""
        return sorted(_stored_names(self._existing_dir(ref)))

    # -- storing ------------------------------------------------------------------------------------------

    def store(self, ref: SnapshotRef, files: Mapping[str, Path]) -> StoredSnapshot:
        """Encrypt ``files`` (name → plaintext path) as snapshot ``ref``; fails if ``ref`` already exists."""
        _check_inputs(files)
        try:
            _make_dirs(self.root / STAGING)
            with self._writer_lock():
                if self.exists(ref):  # checked after the sweep, which completes a crashed earlier attempt
                    raise _exists(self._dir(ref))
                stored = self._store_staged(ref, files)
        except OSError as e:
            if e.errno == errno.ENOSPC and not self.exists(ref):
                raise _disk_full(self.root, e) from e
            raise
        return StoredSnapshot(ref, self._dir(ref), stored)

    def _store_staged(self, ref: SnapshotRef, files: Mapping[str, Path]) -> dict[str, StoredFile]:
        staged = self.root.joinpath(STAGING, secrets.token_hex(8), *ref.parts)
        try:
            self._stage(staged, ref)
            stored = self._write_snapshot(staged, ref, files)
            self._publish(staged, ref)
        except BaseException:
            self._discard(staged)
            raise
        self._finish(staged, ref)  # if this fails, the staging note lets the next sweep finish the job
        return stored

    def _stage(self, staged: Path, ref: SnapshotRef) -> None:
        """A private staging tree, with a note of where it goes so a crash after the rename can be finished."""
        token_dir = staged.parents[2]
        _write_new(token_dir.with_name(token_dir.name + ".target"), str(ref).encode())
        for directory in (token_dir, *reversed(staged.parents[:2]), staged):
            directory.mkdir(mode=DIR_MODE)  # one by one: parents=True would ignore the mode

    def _write_snapshot(
        self, staged: Path, ref: SnapshotRef, files: Mapping[str, Path]
    ) -> dict[str, StoredFile]:
        stored: dict[str, StoredFile] = {}
        for name, source in sorted(files.items()):
            with source.open("rb", buffering=_IO_BUFFER) as plain:
                stored[name] = self._encrypt(plain, staged, ref, name)
        index = {
            "format": CHECKSUMS_FORMAT,
            "snapshot": str(ref),
            "files": {n: f.to_json() for n, f in stored.items()},
        }
        self._encrypt(io.BytesIO(_json_bytes(index)), staged, ref, CHECKSUMS)
        for directory in (staged, staged.parent, staged.parent.parent):
            fsync_dir(directory)
        return stored

    def _encrypt(self, plain: BinaryIO, directory: Path, ref: SnapshotRef, name: str) -> StoredFile:
        """Encrypt one stream to a fresh identity (its DEK) and store the DEK wrapped beside it."""
        identity = pyrage.x25519.Identity.generate()
        target = directory / (name + CIPHER_SUFFIX)
        reader = _Tap(plain)
        with _create_file(target) as out:
            writer = _Tap(out)
            try:
                pyrage.encrypt_io(reader, writer, [identity.to_public()])
            except pyrage.EncryptError as e:
                raise (writer.error or reader.error or VaultError("暗号化に失敗しました", str(e))) from e
            out.flush()
            os.fsync(out.fileno())
        wrapped = self._kek.wrap(str(identity).encode(), _dek_aad(ref, name))
        _write_new(directory / (name + CIPHER_SUFFIX + KEY_SUFFIX), _key_file_bytes(ref, name, wrapped))
        return StoredFile(
            name, reader.sha256.hexdigest(), reader.size, writer.sha256.hexdigest(), writer.size
        )

    def _publish(self, staged: Path, ref: SnapshotRef) -> None:
        """Rename the highest missing level into place: one atomic step, so a crash shows all or nothing."""
        staging_root = staged.parents[2]
        for depth in (1, 2, 3):
            relative = Path(*ref.parts[:depth])
            if depth < 3 and (self.root / relative).is_dir():
                continue
            try:
                (staging_root / relative).rename(self.root / relative)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                if depth == 3:
                    raise _exists(self._dir(ref)) from None
                continue  # another writer created this level meanwhile: publish one level deeper
            return

    def _finish(self, staged: Path, ref: SnapshotRef) -> None:
        """Make the rename durable and the snapshot read-only, then drop the staging leftovers and the note."""
        for directory in self._dir(ref).parents[:3]:
            fsync_dir(directory)  # the parent of whichever level was renamed into place
        _seal_dir(self._dir(ref))
        self._discard(staged)

    def _discard(self, staged: Path) -> None:
        token_dir = staged.parents[2]
        shutil.rmtree(token_dir, ignore_errors=True)
        (token_dir.parent / f"{token_dir.name}.target").unlink(missing_ok=True)

    # -- staging and locks --------------------------------------------------------------------------------

    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """Shared by writers. A writer that finds no other writer first sweeps leftovers of dead ones."""
        fd = self._lock_fd()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._sweep_locked()
            except BlockingIOError:
                pass  # other writers are active; their staging dirs are live
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def _exclusive_lock(self, blocking: bool = True) -> Iterator[bool]:
        """Alone in the vault (no writer active); yields False if not blocking and the vault is busy."""
        with exclusive_flock(self._lock_fd(), blocking=blocking) as alone:
            yield alone

    def _lock_fd(self) -> int:
        _make_dirs(self.root)
        return os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def sweep_staging(self) -> int:
        """Remove what crashed writers left in staging (waits for active writers); returns entries removed."""
        if not (self.root / STAGING).is_dir():
            return 0
        with self._exclusive_lock():
            return self._sweep_locked()

    def _sweep_locked(self) -> int:
        staging = self.root / STAGING
        entries = sorted(staging.iterdir())
        for note in (entry for entry in entries if entry.suffix == ".target"):
            self._complete_interrupted(note)
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
        return len(entries)

    def _complete_interrupted(self, note: Path) -> None:
        """A writer killed after its rename left the snapshot writable: make it read-only as it would have."""
        ref = _parse_ref(note.read_text(encoding="utf-8", errors="replace").strip())
        if ref is not None and self.exists(ref):
            _seal_dir(self._dir(ref))

    # -- reading ------------------------------------------------------------------------------------------

    @contextmanager
    def open_plain(self, ref: SnapshotRef, name: str) -> Iterator[BinaryIO]:
        """Stream one stored file's plaintext; reading to the end raises if the file fails authentication."""
        path, identity = self._open_parts(ref, name)
        stream = _DecryptingStream(path, identity)
        with io.BufferedReader(stream, buffer_size=_IO_BUFFER) as reader:
            yield reader

    def decrypt_to_memfd(self, ref: SnapshotRef, name: str) -> int:
        """Decrypt one stored file into a sealed memfd; returns a read-only fd the caller must close."""
        return self.decrypt_to_memfds([(ref, name)])[0]

    def decrypt_to_memfds(
        self, files: Sequence[tuple[SnapshotRef, str]], *, processes: int | None = None
    ) -> list[int]:
        """Decrypt stored files into sealed memfds, several at once; read-only fds, in order, for the caller to close.

        Every DEK is unwrapped first, so a wrong KEK or a bad key file fails before any plaintext exists. The
        files are then decrypted by child processes (:data:`_DECRYPTOR`; ``processes``, default one per core),
        because pyrage holds the GIL: threads would neither decrypt side by side nor let the hub's other
        threads run meanwhile. The seals (no write, shrink or grow, no further seals) hold against every writer,
        root included, so a sandboxed DuckDB reading ``/proc/self/fd/N`` cannot alter a file; the plaintext
        vanishes with the last fd.
        """
        parts = [(*self._open_parts(ref, name), f"renkei:{ref}/{name}") for ref, name in files]
        memfds: list[int] = []
        readonly: list[int] = []
        try:
            for _, _, label in parts:
                memfds.append(os.memfd_create(label, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING))
            jobs = [(path, identity, fd) for (path, identity, _), fd in zip(parts, memfds, strict=True)]
            _decrypt_in_children(jobs, processes or os.cpu_count() or 1)
            for fd in memfds:
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, MEMFD_SEALS)
                readonly.append(os.open(memfd_path(fd), os.O_RDONLY | os.O_CLOEXEC))
        except BaseException:
            for fd in readonly:
                os.close(fd)
            raise
        finally:
            for fd in memfds:
                os.close(fd)
        return readonly

    def stamp(self, ref: SnapshotRef, name: str) -> tuple[int, ...]:
        """What identifies one stored file now — device, inode, size and change time of its ciphertext and of
        its key file — without decrypting or unwrapping anything. Raises as decrypting would for an unknown
        snapshot or file and for a key file wrapped by another KEK. A rotation replaces the key files, so the
        stamp changes: a cache of plaintext (renkei.hub.workspace.gate.SnapshotCache) compares stamps so that
        it never hands out what it decrypted before a rotation."""
        path = self._cipher_path(ref, name)
        key_path = path.with_name(path.name + KEY_SUFFIX)
        check_kek_id(self._kek, _read_key_file(key_path, _file_id(ref, name)))
        stamps: list[int] = []
        for file in (path, key_path):
            info = file.stat()
            stamps += [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
        return tuple(stamps)

    def _open_parts(self, ref: SnapshotRef, name: str) -> tuple[Path, Any]:
        """The ciphertext path and its identity; raises before any plaintext is produced."""
        path = self._cipher_path(ref, name)
        return path, self._identity(path, ref, name)

    def _cipher_path(self, ref: SnapshotRef, name: str) -> Path:
        directory = self._existing_dir(ref)
        path = directory / (name + CIPHER_SUFFIX)
        if name == CHECKSUMS or not _FILE_NAME.match(name) or not path.is_file():
            raise SnapshotNotFoundError(
                f"スナップショット {ref} にファイル {name} はありません（あるもの: {', '.join(self.files(ref))}）",
                f"snapshot {ref} has no file {name!r} (it has: {', '.join(self.files(ref))})",
                Location(path),
            )
        return path

    def _identity(self, cipher_path: Path, ref: SnapshotRef, name: str) -> Any:
        key_path = cipher_path.with_name(cipher_path.name + KEY_SUFFIX)
        wrapped = _read_key_file(key_path, _file_id(ref, name))
        try:
            check_kek_id(self._kek, wrapped)
            dek = self._kek.unwrap(wrapped, _dek_aad(ref, name))
        except WrongKekError as e:
            raise WrongKekError(e.ja, e.en, Location(key_path)) from None
        try:
            return pyrage.x25519.Identity.from_str(dek.decode("ascii"))
        except (pyrage.IdentityError, UnicodeDecodeError):
            raise _corrupted(key_path) from None

    def _existing_dir(self, ref: SnapshotRef) -> Path:
        directory = self._dir(ref)
        if directory.is_dir():
            return directory
        if not (self.root / ref.dataset).is_dir():
            raise _unknown_dataset(self.root / ref.dataset)
        raise SnapshotNotFoundError(
            f"スナップショット {ref} は保管されていません",
            f"snapshot {ref} is not in the vault",
            Location(directory),
        )

    def _dir(self, ref: SnapshotRef) -> Path:
        return self.root.joinpath(*ref.parts)

    # -- verifying ----------------------------------------------------------------------------------------

    def verify(self, catalog: CatalogView | None = None, *, pending_kek_id: str = "") -> list[VerifyProblem]:
        """Check every snapshot (decrypts, checksums, file set, modes), stray entries and staging leftovers.

        With ``catalog``, also both ways: every snapshot the catalog records is here with its files and their
        recorded contents, and every snapshot here has a catalog row. ``pending_kek_id`` names the next KEK of
        an interrupted rotation, so that key files already under it are reported as such, not as tampered.
        """
        problems: list[VerifyProblem] = []
        stored: list[SnapshotRef] = []
        if self.root.is_dir():
            problems = self._staging_leftovers() + self._stray_entries()
            stored = self.snapshots()
        for ref in stored:
            recorded = catalog.get(ref) if catalog is not None else None
            problems += self.verify_snapshot(ref, recorded, pending_kek_id=pending_kek_id)
        if catalog is not None:
            problems += self._catalog_differences(catalog, set(stored))
        return problems

    def verify_snapshot(
        self,
        ref: SnapshotRef,
        recorded: Mapping[str, CatalogRecord | None] | None = None,
        *,
        pending_kek_id: str = "",
    ) -> list[VerifyProblem]:
        """One snapshot; with ``recorded`` (its files as the catalog has them), compared with that too."""
        directory = self._existing_dir(ref)
        problems = _mode_problems(directory)
        index, index_problems = self._read_index(ref, pending_kek_id)
        problems += index_problems
        names = set(index) if index is not None else _stored_names(directory)
        expected = {entry for name in {*names, CHECKSUMS} for entry in _entries_of(name)}
        present = set(_names(directory))
        problems += [
            _problem(directory / e, "unexpected", "想定外のファイル", "unexpected file")
            for e in sorted(present - expected)
        ]
        problems += [
            _problem(directory / e, "missing", "ファイルがありません", "file is missing")
            for e in sorted(expected - present)
        ]
        digests: dict[str, StoredFile] = {}
        for name in sorted(names):
            if _entries_of(name) <= present:
                found, digest = self._check_file(
                    ref, name, index.get(name) if index is not None else None, pending_kek_id
                )
                problems += found
                if digest is not None:
                    digests[name] = digest
        if recorded is not None:
            problems += _catalog_problems(directory, recorded, names, digests)
        return problems

    def _catalog_differences(self, catalog: CatalogView, stored: set[SnapshotRef]) -> list[VerifyProblem]:
        problems = []
        for ref in sorted(set(catalog) - stored):
            levels = (*reversed(self._dir(ref).parents[:2]), self._dir(ref))
            gone = next((p for p in levels if not p.is_dir()), self._dir(ref))
            problems.append(
                _problem(
                    self._dir(ref),
                    "missing",
                    f"カタログにあるスナップショットが保管庫にありません（{gone.name} がありません）",
                    f"snapshot {ref} is in the catalog but not in the vault ({gone} is gone)",
                )
            )
        for ref in sorted(stored - set(catalog)):
            problems.append(
                _problem(
                    self._dir(ref),
                    "uncatalogued",
                    "カタログに記録のないスナップショットです（受入が途中で止まった可能性があります）",
                    f"snapshot {ref} has no catalog row (an import may have stopped after storing it)",
                )
            )
        return problems

    def _read_index(
        self, ref: SnapshotRef, pending_kek_id: str
    ) -> tuple[dict[str, dict[str, Any]] | None, list[VerifyProblem]]:
        path = self._dir(ref) / (CHECKSUMS + CIPHER_SUFFIX)
        if (key_problem := self._key_problem(ref, CHECKSUMS, pending_kek_id)) is not None:
            return None, [key_problem]
        buffer = io.BytesIO()
        try:
            _decrypt(path, self._identity(path, ref, CHECKSUMS), buffer)
            index = json.loads(buffer.getvalue())
            if index.get("format") != CHECKSUMS_FORMAT or index.get("snapshot") != str(ref):
                raise ValueError("checksums belong to another snapshot or format")
            return dict(index["files"]), []
        except (RenkeiError, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            return None, [
                _problem(
                    _where(e, path),
                    "unreadable",
                    "チェックサム一覧を読めません",
                    f"cannot read the checksums: {_brief(e)}",
                )
            ]

    def _check_file(
        self, ref: SnapshotRef, name: str, expected: Mapping[str, Any] | None, pending_kek_id: str
    ) -> tuple[list[VerifyProblem], StoredFile | None]:
        """Problems of one stored file (named by the file that is wrong), and its digest if it decrypts."""
        path = self._dir(ref) / (name + CIPHER_SUFFIX)
        if (key_problem := self._key_problem(ref, name, pending_kek_id)) is not None:
            return [key_problem], None
        try:
            actual = _digest(path, self._identity(path, ref, name), name)
        except (RenkeiError, OSError) as e:
            return [_problem(_where(e, path), "unreadable", "復号できません", _brief(e))], None
        if expected is not None and actual.to_json() != dict(expected):
            problem = _problem(
                path, "checksum", "チェックサムが記録と違います", "checksum differs from the recorded one"
            )
            return [problem], actual
        return [], actual

    def _key_problem(self, ref: SnapshotRef, name: str, pending_kek_id: str) -> VerifyProblem | None:
        """A key file that names another KEK than the loaded one: an unfinished rotation's, or a stranger."""
        key_path = self._dir(ref) / (name + CIPHER_SUFFIX + KEY_SUFFIX)
        try:
            kek_id = _read_key_file(key_path, _file_id(ref, name)).kek_id
        except RenkeiError:
            return None  # unreadable for another reason: the decryption reports it, naming the key file
        if kek_id == self._kek.key_id:
            return None
        if pending_kek_id and kek_id == pending_kek_id:
            return _problem(
                key_path,
                "rotation",
                "鍵の交換が中断しています（この鍵ファイルは次の鍵暗号化鍵で包み直し済み）。rotate-key をもう一度実行してください",
                f"an interrupted key rotation already moved this key file to the next KEK {kek_id}; run rotate-key again",
            )
        return _problem(
            key_path,
            "unreadable",
            f"鍵ファイルの kek_id（{kek_id}）が読み込んだ鍵暗号化鍵（{self._kek.key_id}）とも交換中の鍵とも違います。"
            "書き換えられたか、別の基盤の鍵ファイルです",
            f"the key file names KEK {kek_id!r}, neither the loaded KEK {self._kek.key_id} nor a rotation's next "
            "key: it was edited, or belongs to another hub (or the wrong KEK is loaded)",
        )

    def _staging_leftovers(self) -> list[VerifyProblem]:
        """Entries in staging while no writer is active were left by a crash (``sweep_staging`` removes them)."""
        staging = self.root / STAGING
        if not staging.is_dir():
            return []
        with self._exclusive_lock(blocking=False) as alone:
            leftovers = sorted(staging.iterdir()) if alone else []
        return [
            _problem(
                p, "staging", "書き込み途中の残骸があります", "staging leftover from an interrupted write"
            )
            for p in leftovers
        ]

    def _stray_entries(self) -> list[VerifyProblem]:
        stray: list[Path] = []
        for dataset in _names(self.root):
            if dataset in (STAGING, LOCK):
                continue
            if not _DATASET.match(dataset) or not (self.root / dataset).is_dir():
                stray.append(self.root / dataset)
                continue
            for period in _names(self.root / dataset):
                period_dir = self.root / dataset / period
                if _parse_period(period) is None or not period_dir.is_dir():
                    stray.append(period_dir)
                    continue
                stray += [
                    period_dir / v
                    for v in _names(period_dir)
                    if not _version_of(v) or not (period_dir / v).is_dir()
                ]
        return [_problem(p, "unexpected", "想定外の項目", "unexpected entry in the vault") for p in stray]

    # -- key rotation -------------------------------------------------------------------------------------

    def rotate_kek(self, new: KeyEncryptionKey) -> int:
        """Rewrap every DEK from the current KEK to ``new``; returns how many. Data files are not touched.

        Each ``.key.json`` is replaced atomically, so an interrupted rotation leaves every file readable with
        the old or the new KEK; run it again (same old and new KEK) and it resumes, skipping rewrapped ones.
        """
        with self._exclusive_lock():
            if (self.root / STAGING).is_dir():
                self._sweep_locked()
            count = sum(self._rewrap(ref, new) for ref in self.snapshots())
        self._kek = new
        return count

    def _rewrap(self, ref: SnapshotRef, new: KeyEncryptionKey) -> int:
        directory = self._dir(ref)
        pending: list[tuple[Path, bytes]] = []
        for name in sorted({*_stored_names(directory), CHECKSUMS}):
            key_path = directory / (name + CIPHER_SUFFIX + KEY_SUFFIX)
            if _read_key_file(key_path, _file_id(ref, name)).kek_id == new.key_id:
                continue  # done by an earlier, interrupted rotation
            dek = str(self._identity(directory / (name + CIPHER_SUFFIX), ref, name)).encode()
            wrapped = new.wrap(dek, _dek_aad(ref, name))
            pending.append((key_path, _key_file_bytes(ref, name, wrapped)))
        if pending:
            directory.chmod(DIR_MODE)  # a replace needs a writable directory, for this moment only
            try:
                for key_path, content in pending:
                    self._replace_key_file(key_path, content)
            finally:
                _seal_dir(directory)
        elif stat.S_IMODE(directory.stat().st_mode) != SNAPSHOT_MODE:
            _seal_dir(directory)  # an earlier rotation was interrupted before it could restore the mode
        return len(pending)

    def _replace_key_file(self, key_path: Path, content: bytes) -> None:
        temporary = self.root / STAGING / f"rotate-{secrets.token_hex(8)}{KEY_SUFFIX}"
        _make_dirs(temporary.parent)
        _write_new(temporary, content)
        temporary.replace(key_path)


# -- streaming helpers ------------------------------------------------------------------------------------


class _Tap:
    """Sits between pyrage and a file: hashes and counts the bytes, and keeps the OSError (e.g. ENOSPC) that
    pyrage would otherwise flatten into a message."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            chunk = self._file.read(size)
        except OSError as e:
            self.error = e
            raise
        self._count(chunk)
        return chunk

    def write(self, data: bytes) -> int:
        try:
            self._file.write(data)
        except OSError as e:
            self.error = e
            raise
        self._count(data)
        return len(data)

    def flush(self) -> None:
        self._file.flush()

    def _count(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)


class _Sink:
    """A writer that only hashes (verification reads whole files without keeping them)."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def _decrypt(path: Path, identity: Any, out: Any) -> None:
    with path.open("rb") as cipher:
        _decrypt_stream(cipher, identity, out, path)
    out.flush()


# A decrypting child: reads one JSON line of [ciphertext path, identity, memfd] jobs on stdin (the identities
# never go into argv, which other users can read in /proc), decrypts each with pyrage's native file-to-file
# path (about 1.5× faster than ``decrypt_io``, docs/vault.md) into the inherited memfd, and answers one JSON
# line per job. pyrage's errors carry no errno, so only age's message tells an authentication failure from an
# I/O failure. It imports only json and pyrage, from the directory given in argv.
_DECRYPTOR = (
    "import json, sys\n"
    "sys.path[:0] = [sys.argv[1]]\n"
    "import pyrage\n"
    "for path, identity, fd in json.loads(sys.stdin.readline()):\n"
    "    try:\n"
    "        pyrage.decrypt_file(path, f'/proc/self/fd/{fd}', [pyrage.x25519.Identity.from_str(identity)])\n"
    "        answer = {'ok': True}\n"
    "    except pyrage.DecryptError as e:\n"
    "        answer = {'ok': False, 'corrupted': True, 'message': str(e)}\n"
    "    except OSError as e:\n"
    f"        answer = {{'ok': False, 'corrupted': str(e) == {AGE_AUTH_FAILURE!r}, 'message': str(e)}}\n"
    "    print(json.dumps(answer), flush=True)\n"
)
MAX_DECRYPTORS = 8


def _decrypt_in_children(jobs: Sequence[tuple[Path, Any, int]], processes: int) -> None:
    """Decrypt each (ciphertext, identity, memfd) job, the jobs shared among up to ``processes`` children by
    size (largest first, to the least loaded), the children running side by side; raises on the first failure."""
    count = max(1, min(len(jobs), processes, MAX_DECRYPTORS))
    shares: list[list[tuple[Path, Any, int]]] = [[] for _ in range(count)]
    loads = [0] * count
    for job in sorted(jobs, key=lambda j: j[0].stat().st_size, reverse=True):
        least = loads.index(min(loads))
        shares[least].append(job)
        loads[least] += job[0].stat().st_size
    children = [_start_decryptor(share) for share in shares if share]
    failure: BaseException | None = None
    for child, share in children:
        try:
            _finish_decryptor(child, share)
        except BaseException as e:  # keep waiting for the others: no child may outlive the call
            failure = failure or e
    if failure is not None:
        raise failure


def _start_decryptor(share: list[tuple[Path, Any, int]]) -> tuple[subprocess.Popen[bytes], list[Path]]:
    child = subprocess.Popen(  # noqa: S603 (our interpreter and program; no shell)
        [sys.executable, "-I", "-S", "-c", _DECRYPTOR, str(Path(pyrage.__file__).resolve().parent.parent)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        pass_fds=[fd for _, _, fd in share], env={}, cwd="/",
    )  # fmt: skip
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps([[str(p), str(i), fd] for p, i, fd in share]).encode() + b"\n")
        child.stdin.close()
    except OSError:
        pass  # the child died at once; its exit status says why
    return child, [path for path, _, _ in share]


def _finish_decryptor(child: subprocess.Popen[bytes], paths: list[Path]) -> None:
    assert child.stdout is not None and child.stderr is not None
    answers = [json.loads(line) for line in child.stdout.read().splitlines()]
    error = child.stderr.read()[-500:].decode(errors="replace").strip()
    child.stdout.close()
    child.stderr.close()
    status = child.wait()
    for path, answer in zip(paths, answers, strict=False):
        if answer.get("ok"):
            continue
        if answer.get("corrupted"):
            raise _corrupted(path)
        raise VaultError(
            "保管ファイルを読めません",
            f"cannot read the stored file: {answer.get('message')}",
            Location(path),
        )
    if status != 0 or len(answers) != len(paths):
        raise VaultError(
            "保管ファイルを復号する子プロセスが異常終了しました",
            f"the decrypting child process failed (exit {status}): {error or 'no message'}",
            Location(paths[len(answers)] if len(answers) < len(paths) else paths[-1]),
        )


def _decrypt_stream(cipher: Any, identity: Any, out: Any, path: Path) -> None:
    """Decrypt into ``out``; authentication failure → CorruptedFileError naming the file.

    pyrage passes the Python I/O errors of ``cipher`` and ``out`` through unchanged (they carry an errno); its
    own failures, a wrong identity or a chunk that does not authenticate ("decryption error"), carry none.
    """
    try:
        pyrage.decrypt_io(cipher, out, [identity])
    except pyrage.DecryptError as e:
        raise _corrupted(path) from e
    except OSError as e:
        if e.errno is not None:
            raise
        raise _corrupted(path) from e


def _digest(path: Path, identity: Any, name: str) -> StoredFile:
    """Sizes and hashes of a stored file, of its ciphertext and of the plaintext it authenticates to."""
    plain = _Sink()
    with path.open("rb") as file:
        cipher = _Tap(file)
        _decrypt_stream(cipher, identity, plain, path)
    return StoredFile(name, plain.sha256.hexdigest(), plain.size, cipher.sha256.hexdigest(), cipher.size)


class _DecryptingStream(io.RawIOBase):
    """Plaintext of one file through a pipe fed by a decrypting thread, so memory stays flat.

    age releases a chunk only after authenticating it; the end-of-stream check happens when the reader hits
    EOF, which raises instead of returning a silently truncated file.
    """

    def __init__(self, path: Path, identity: Any) -> None:
        super().__init__()
        self._path = path
        self._read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # a bigger pipe only saves context switches
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _IO_BUFFER)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, args=(identity, write_fd), daemon=True)
        self._thread.start()

    def _pump(self, identity: Any, write_fd: int) -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=_IO_BUFFER) as pipe:
                _decrypt(self._path, identity, pipe)
        except BaseException as e:  # handed to the reading thread at EOF
            self._error = e

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.read(self._read_fd, len(buffer))
        if not data:
            self._thread.join()
            if self._error is not None:
                raise self._error
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._read_fd)  # an unfinished writer gets EPIPE and stops
            self._thread.join()
        super().close()


# -- small helpers ----------------------------------------------------------------------------------------


def memfd_path(fd: int) -> str:
    """The path DuckDB opens to read a file descriptor of this process."""
    return f"/proc/self/fd/{fd}"


def _create_file(path: Path) -> BinaryIO:
    """A new file (never an existing one), already read-only for later opens."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    return os.fdopen(fd, "wb", buffering=_IO_BUFFER)


def _write_new(path: Path, content: bytes) -> None:
    with _create_file(path) as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())


def _make_dirs(path: Path) -> None:
    """Create missing directories (0700), fsyncing each parent so they survive a crash."""
    if path.is_dir():
        return
    _make_dirs(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        return
    fsync_dir(path.parent)


def _seal_dir(directory: Path) -> None:
    directory.chmod(SNAPSHOT_MODE)
    fsync_dir(directory)


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def _key_file_bytes(ref: SnapshotRef, name: str, wrapped: WrappedKey) -> bytes:
    return _json_bytes({"format": KEY_FORMAT, "file_id": _file_id(ref, name), **wrapped.to_json()})


def _read_key_file(path: Path, file_id: str) -> WrappedKey:
    try:
        data = json.loads(path.read_bytes())
        if data.get("format") != KEY_FORMAT:
            raise ValueError(f"unknown key file format {data.get('format')!r}")
        wrapped = WrappedKey.from_json(data)
    except FileNotFoundError:
        raise VaultError("鍵ファイルがありません", "key file is missing", Location(path)) from None
    except (ValueError, AttributeError):
        raise _corrupted(path) from None
    if data.get("file_id") != file_id:
        raise CorruptedFileError(
            "鍵ファイルが別のファイルのものです（取り違え）",
            f"key file belongs to {data.get('file_id')!r}, not to {file_id!r}",
            Location(path),
        )
    return wrapped


def _file_id(ref: SnapshotRef, name: str) -> str:
    return f"{ref}/{name}"


def _dek_aad(ref: SnapshotRef, name: str) -> bytes:
    """Associated data binding a wrapped DEK to one file: moved or swapped key files fail to unwrap."""
    return DEK_AAD_PREFIX + _file_id(ref, name).encode()


def _names(directory: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _entries_of(name: str) -> set[str]:
    return {name + CIPHER_SUFFIX, name + CIPHER_SUFFIX + KEY_SUFFIX}


def _stored_names(directory: Path) -> set[str]:
    """File names of a snapshot, read from its ciphertexts (without the checksums index)."""
    entries = _names(directory)
    names = {e.removesuffix(CIPHER_SUFFIX) for e in entries if e.endswith(CIPHER_SUFFIX)}
    return names - {CHECKSUMS}


def _mode_problems(directory: Path) -> list[VerifyProblem]:
    problems: list[VerifyProblem] = []
    if stat.S_IMODE(directory.stat().st_mode) != SNAPSHOT_MODE:
        problems.append(
            _problem(
                directory, "mode", "フォルダが読み取り専用ではありません", "snapshot directory is not 0500"
            )
        )
    for name in _names(directory):
        mode = (directory / name).lstat().st_mode
        if not stat.S_ISREG(mode) or stat.S_IMODE(mode) != FILE_MODE:
            problems.append(
                _problem(
                    directory / name,
                    "mode",
                    "読み取り専用のファイルではありません",
                    "not a 0400 regular file",
                )
            )
    return problems


def _version_of(name: str) -> int:
    match = _VERSION.match(name)
    return int(match.group(1)) if match else 0


def _parse_period(name: str) -> dt.date | None:
    try:
        period = dt.date.fromisoformat(name)
    except ValueError:
        return None
    return period if period.isoformat() == name else None


def _parse_ref(text: str) -> SnapshotRef | None:
    parts = text.split("/")
    if len(parts) != 3:
        return None
    period, version = _parse_period(parts[1]), _version_of(parts[2])
    if not _DATASET.match(parts[0]) or period is None or not version:
        return None
    return SnapshotRef(parts[0], period, version)


def _check_dataset(name: object) -> None:
    if not isinstance(name, str) or not _DATASET.match(name):
        raise VaultError(
            "データセット名は英小文字・数字・_・- で 64 文字までです",
            f"dataset name must be lower-case letters, digits, _ or -, at most 64 characters: {name!r}",
        )


def _check_inputs(files: Mapping[str, Path]) -> None:
    if not files:
        raise VaultError("保管するファイルがありません", "no files to store")
    for name, path in files.items():
        if name == CHECKSUMS or not _FILE_NAME.match(name):
            raise VaultError(
                f"ファイル名 {name} は使えません", f"file name {name!r} is reserved or not a plain file name"
            )
        if not path.is_file():
            raise VaultError("入力ファイルがありません", f"input for {name!r} is not a file", Location(path))


def _problem(path: Path, kind: str, ja: str, en: str) -> VerifyProblem:
    return VerifyProblem(path, kind, ja, en)


def _where(error: BaseException, default: Path) -> Path:
    """The file an error names (a key file, say), else ``default``."""
    where = getattr(error, "where", None)
    return Path(where.file) if isinstance(where, Location) and where.file is not None else default


def _catalog_problems(
    directory: Path,
    recorded: Mapping[str, CatalogRecord | None],
    names: set[str],
    digests: Mapping[str, StoredFile],
) -> list[VerifyProblem]:
    """How a snapshot differs from the catalog's record of it: files missing or extra, contents not the same."""
    problems = [
        _problem(
            directory / (name + CIPHER_SUFFIX),
            "missing",
            "カタログに記録されたファイルがありません",
            "file recorded in the catalog is missing",
        )
        for name in sorted(set(recorded) - names)
    ]
    problems += [
        _problem(
            directory / (name + CIPHER_SUFFIX),
            "unexpected",
            "カタログに記録のないファイルです",
            "file not recorded in the catalog",
        )
        for name in sorted(names - set(recorded))
    ]
    for name, record in sorted(recorded.items()):
        actual = digests.get(name)
        if record is None or actual is None:
            continue
        if (actual.plain_sha256, actual.plain_bytes) != (record.plain_sha256, record.plain_bytes):
            problems.append(
                _problem(
                    directory / (name + CIPHER_SUFFIX),
                    "catalog",
                    "保管されている内容がカタログの記録と違います",
                    f"content differs from the catalog's record (SHA-256 {actual.plain_sha256[:16]}…, "
                    f"{actual.plain_bytes} bytes; the catalog has {record.plain_sha256[:16]}…, "
                    f"{record.plain_bytes} bytes)",
                )
            )
    return problems


def _brief(error: BaseException) -> str:
    if isinstance(error, RenkeiError):
        return error.en
    return f"{type(error).__name__}: {error}"


def _exists(directory: Path) -> SnapshotExistsError:
    return SnapshotExistsError(
        "このスナップショットは既に保管されています。訂正は次の版として保管してください",
        "snapshot already exists; the vault never replaces one — store a correction as the next version",
        Location(directory),
    )


def _unknown_dataset(directory: Path) -> SnapshotNotFoundError:
    return SnapshotNotFoundError(
        f"データセット {directory.name} は保管庫にありません",
        f"unknown dataset {directory.name!r}: nothing stored",
        Location(directory),
    )


def _corrupted(path: Path) -> CorruptedFileError:
    return CorruptedFileError(
        "保管ファイルが壊れているか改ざんされています（認証に失敗）",
        "stored file is corrupted or was tampered with (authentication failed)",
        Location(path),
    )


def _disk_full(root: Path, error: OSError) -> VaultFullError:
    return VaultFullError(
        "ディスクの空きが足りないため保管を中止しました（何も保存されていません）",
        f"disk full while storing; nothing was stored ({error.strerror})",
        Location(root),
    )
