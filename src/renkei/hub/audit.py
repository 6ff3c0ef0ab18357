"""The hub's tamper-evident audit log (監査ログ): an append-only RFC 9162 Merkle tree in the catalog database.

Every file operation and access decision on the hub is one entry. An entry's leaf hash is
``SHA-256(0x00 || canonical JSON of all its fields)``; the log is the Merkle tree over those leaves
(:mod:`renkei.hub.merkle`). Checkpoints ``(size, root, time)`` are signed with the hub's Ed25519 audit key and
can be kept outside the system, so truncation or a rewrite of history is detected even by someone who
rewrote the database. The design, what :meth:`AuditLog.verify` detects and what it cannot are described in
docs/audit-log.md.

Rules for callers:
- pass metadata only (dataset, period, version, row counts, hashes): :meth:`AuditLog.append` refuses
  ``details`` keys named like secrets (``password``, ``token``, ``secret``, ``key`` … but not identifiers
  such as ``key_id``), strings over 512 characters and PEM blocks;
- use :meth:`AuditLog.append_in` to commit the entry atomically with the caller's own change; use
  :meth:`AuditLog.append` when the entry stands alone (it is durable when the call returns).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import json
import logging
import math
import os
import random
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Engine, RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator

from renkei.display import display_text
from renkei.errors import KeyFileError, Location, RenkeiError
from renkei.files import read_private, write_private
from renkei.hub import merkle
from renkei.hub.audit_actions import AUDIT_ACTIONS, AuditAction
from renkei.hub.db import Base, consistent_read, is_disconnect, sqlite_rollback, write_turn
from renkei.hub.settings import DEFAULTS

T = TypeVar("T")

AUDIT_KEY_FILE = "audit_signing.key"
# Append-only JSON lines, one signed checkpoint a line, outside the database: a rewrite that also deletes the
# stored checkpoints still contradicts them.
CHECKPOINT_COPY_FILE = "audit_checkpoints.jsonl"
# Policy: entries older than this must be covered by a signed checkpoint (signed at each import, by
# `renkei audit checkpoint` on a schedule, and every `checkpoint_every` appends).
MAX_UNSIGNED_AGE = DEFAULTS.audit.max_unsigned_age  # the setting audit.max_unsigned_hours, by default
CHECKPOINT_FORMAT = "renkei-audit-checkpoint/v1"
RESULTS = frozenset({"ok", "allowed", "denied", "rejected", "error"})
HASHED_FIELDS = (
    "seq",
    "at",
    "actor",
    "terminal",
    "client_addr",
    "action",
    "resource",
    "result",
    "reason",
    "details",
)

# Column sizes; longer values are refused rather than cut, so an entry always says exactly what happened.
MAX_ACTOR = 128
MAX_TERMINAL = 128
MAX_CLIENT_ADDR = 64
MAX_ACTION = 64
MAX_RESOURCE = 512
MAX_REASON = 1024
MAX_DETAIL_STRING = 512
MAX_DETAIL_KEY = 64
MAX_DETAILS_BYTES = 8192
MAX_DETAILS_DEPTH = 4

ACTION_FORMAT = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")  # every AuditAction has this form
_DETAIL_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# fmt: off
_SECRET_WORDS = frozenset({
    "password", "passwords", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "tokens",
    "key", "keys", "apikey", "privkey", "credential", "credentials", "cookie", "authorization",
    "kek", "dek", "pin", "otp",
})
# fmt: on
# A secret word is fine when the name ends in one of these: it names or counts the secret, it is not it.
_IDENTIFIER_WORDS = frozenset({"id", "ids", "fingerprint", "fingerprints", "version", "count", "name"})
# Characters that JSON leaves raw but that terminals or editors may show as a line break or hide.
_CANONICAL_ESCAPES = {c: f"\\u{c:04x}" for c in [0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]}
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL text cannot hold it), lone surrogates

_RETRY_ATTEMPTS = 8
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_RECONNECTS = 1  # a lost connection is tried once more, on a new one (the pool checks it first)
logger = logging.getLogger("renkei.audit")
FULL_VERIFY_EVERY = dt.timedelta(minutes=10)  # verify_recent: the longest an incremental base is trusted
_SCAN_BATCH = 2000
_MISMATCH_MEMORY = 10_000  # rows kept to tell a swap or a renumbering from a plain modification
_CLASSIFY_WINDOW = 64


class AuditError(RenkeiError):
    """The audit log refuses an entry, a checkpoint file is malformed, or the log's head is inconsistent."""


# --- tables -------------------------------------------------------------------------------------------------


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class AuditEntry(Base):
    """One audited event. ``seq`` is 0-based and gap-free; ``leaf_hash`` commits to every other field."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(MAX_ACTOR), index=True)
    terminal: Mapped[str] = mapped_column(String(MAX_TERMINAL))
    client_addr: Mapped[str] = mapped_column(String(MAX_CLIENT_ADDR))
    action: Mapped[str] = mapped_column(String(MAX_ACTION))
    resource: Mapped[str] = mapped_column(String(MAX_RESOURCE), index=True)
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(MAX_REASON))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    leaf_hash: Mapped[str] = mapped_column(String(64))

    def fields(self) -> dict[str, Any]:
        """The hashed fields, as :func:`canonical_json` takes them."""
        return {name: getattr(self, name) for name in HASHED_FIELDS}


class AuditHead(Base):
    """The single row appenders lock: the tree size and its compact range, so appends cost O(log n)."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[str] = mapped_column(Text)  # hex of merkle.Frontier hashes, largest subtree first


class AuditCheckpointRow(Base):
    """A signed checkpoint, as stored in the database (copies belong outside it too)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hex: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


_entries = cast(Table, AuditEntry.__table__)
_head = cast(Table, AuditHead.__table__)
_checkpoints = cast(Table, AuditCheckpointRow.__table__)

# Built once, so SQLAlchemy compiles each statement once and an append only binds new parameters.
_INSERT_ENTRY = insert(_entries)
_INSERT_CHECKPOINT = insert(_checkpoints)


@functools.cache
def _create_head(dialect: str) -> Executable:
    """INSERT … ON CONFLICT DO NOTHING of the head row; each dialect's module is loaded only where it is used."""
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite  # noqa: PLC0415

        return sqlite.insert(_head).values(id=1, size=0, frontier="").on_conflict_do_nothing()
    from sqlalchemy.dialects import postgresql  # noqa: PLC0415

    return postgresql.insert(_head).values(id=1, size=0, frontier="").on_conflict_do_nothing()


# Verification reads `at` and `details` without type conversion, so that a garbled value is reported as a
# modified entry instead of stopping the scan.
_SCAN_ENTRIES = select(
    *(type_coerce(c, Text).label(c.name) if c.name in ("at", "details") else c for c in _entries.c)
).order_by(_entries.c.seq)
_LOCK_HEAD = select(_head.c.size, _head.c.frontier).where(_head.c.id == 1).with_for_update()
_UPDATE_HEAD = (
    update(_head)
    .where(_head.c.id == 1)
    .values(size=bindparam("new_size"), frontier=bindparam("new_frontier"))
)


# --- canonical form and leaf hash ---------------------------------------------------------------------------


def format_time(at: dt.datetime) -> str:
    """The canonical timestamp: UTC, microseconds, ``Z`` (e.g. ``2024-01-01T09:00:00.000000Z``)."""
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8; every control or line-separator character escaped.

    JSON is injective, so two different entries never share a canonical form, and the escaping keeps an
    entry on one line whatever its text fields contain (ASVS 16.4.1).
    """
    values = {name: fields[name] for name in HASHED_FIELDS}
    values["at"] = format_time(values["at"])
    text = json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.translate(_CANONICAL_ESCAPES).encode("utf-8")


def entry_leaf_hash(fields: Mapping[str, Any]) -> bytes:
    return merkle.leaf_hash(canonical_json(fields))


# --- validation of what goes in -----------------------------------------------------------------------------


def _storable(text: str) -> str:
    """The text as stored: unchanged, except NUL and lone surrogates (which no database can hold) → U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def _text(value: str, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise AuditError(
            f"監査項目 {name} は文字列でなければなりません", f"audit field {name} must be a string"
        )
    if len(value) > limit:
        raise AuditError(
            f"監査項目 {name} が長すぎます（{limit} 文字まで）",
            f"audit field {name} exceeds {limit} characters",
        )
    return _storable(value)


def _name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_secret_name(name: str) -> bool:
    """True for detail keys that would hold a secret: ``password``, ``api_key``, ``sessionToken`` …

    Names that only identify or count a secret (``key_id``, ``kek_id``, ``token_count``) are allowed.
    """
    words = _name_words(name)
    if not words or words[-1] in _IDENTIFIER_WORDS:
        return False
    return any(w in _SECRET_WORDS for w in words)


def check_details(details: Mapping[str, object] | None) -> dict[str, Any]:
    """Validate ``details`` and return them as the database will give them back (plain JSON types)."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise AuditError("details は辞書でなければなりません", "details must be a mapping")
    clean = _check_value(details, "details", 0)
    size = len(json.dumps(clean, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_DETAILS_BYTES:
        raise AuditError(
            f"details が大きすぎます（{MAX_DETAILS_BYTES} バイトまで）",
            f"details too large ({size} > {MAX_DETAILS_BYTES} bytes); log hashes or counts, not contents",
        )
    assert isinstance(clean, dict)
    return clean


def _check_value(value: object, path: str, depth: int) -> Any:
    if depth > MAX_DETAILS_DEPTH:
        raise AuditError(f"details の入れ子が深すぎます: {path}", f"details nested too deeply at {path}")
    if isinstance(value, Mapping):
        return {_check_key(k, path): _check_value(v, f"{path}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_check_value(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AuditError(f"details に有限でない数値: {path}", f"non-finite number in details at {path}")
        return value
    if isinstance(value, str):
        return _check_detail_string(value, path)
    raise AuditError(
        f"details に記録できない型の値: {path}",
        f"details value at {path} has type {type(value).__name__}; use str, int, float, bool, list, dict",
    )


def _check_key(key: object, path: str) -> str:
    if not isinstance(key, str) or len(key) > MAX_DETAIL_KEY or not _DETAIL_KEY_RE.fullmatch(key):
        raise AuditError(
            f"details のキーが不正です: {path}.{key!r}", f"invalid details key {key!r} at {path}"
        )
    if is_secret_name(key):
        raise AuditError(
            f"details に秘密情報らしき項目「{key}」は記録できません（鍵・パスワード・トークンは書かない）",
            f"details key {key!r} looks like a secret; audit entries never hold keys, passwords or tokens",
        )
    return key


def _check_detail_string(value: str, path: str) -> str:
    if len(value) > MAX_DETAIL_STRING:
        raise AuditError(
            f"details の値が長すぎます（{MAX_DETAIL_STRING} 文字まで）: {path}",
            f"details value at {path} exceeds {MAX_DETAIL_STRING} characters; log a hash or a count instead",
        )
    if "-----BEGIN" in value:
        raise AuditError(f"details に鍵や証明書は記録できません: {path}", f"PEM block in details at {path}")
    return _storable(value)


@dataclass(frozen=True, slots=True)
class _Draft:
    """A validated entry that has no place in the log yet."""

    actor: str
    action: str
    resource: str
    result: str
    reason: str
    terminal: str
    client_addr: str
    details: dict[str, Any]

    @classmethod
    def build(
        cls,
        actor: str,
        action: AuditAction,
        resource: str,
        result: str,
        reason: str,
        terminal: str,
        client_addr: str,
        details: Mapping[str, object] | None,
    ) -> _Draft:
        if not actor:
            raise AuditError("監査ログの主体 (actor) が空です", "audit actor is empty")
        if not isinstance(action, str) or action not in AUDIT_ACTIONS:
            # One registry of actions (AuditAction): an unregistered name is a bug, and the write fails closed.
            raise AuditError(
                f"監査ログの操作名が AuditAction にありません: {action!r}",
                f"invalid audit action {action!r}: not an AuditAction (e.g. import)",
            )
        if result not in RESULTS:
            raise AuditError(
                f"監査ログの結果が不正です: {result!r}",
                f"invalid audit result {result!r}; one of {sorted(RESULTS)}",
            )
        return cls(
            actor=_text(actor, "actor", MAX_ACTOR),
            action=str(action),
            resource=_text(resource, "resource", MAX_RESOURCE),
            result=result,
            reason=_text(reason, "reason", MAX_REASON),
            terminal=_text(terminal, "terminal", MAX_TERMINAL),
            client_addr=_text(client_addr, "client_addr", MAX_CLIENT_ADDR),
            details=check_details(details),
        )

    def values(self, seq: int, at: dt.datetime) -> dict[str, Any]:
        return {
            "seq": seq,
            "at": at,
            "actor": self.actor,
            "terminal": self.terminal,
            "client_addr": self.client_addr,
            "action": self.action,
            "resource": self.resource,
            "result": self.result,
            "reason": self.reason,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class _Verified:
    """A full verification's base for :meth:`AuditLog.verify_recent`, and how far it has been extended."""

    full_size: int  # entries 0..full_size-1 verified in full
    full_at: dt.datetime
    frontier: merkle.Frontier  # the tree rebuilt from the entries' fields, up to report.size
    report: VerifyReport


@dataclass(slots=True)
class _Waiting:
    """An entry handed to :meth:`AuditLog.append`, until its group's transaction has committed or failed."""

    draft: _Draft
    done: bool = False
    entry: AuditEntry | None = None
    error: BaseException | None = None

    def outcome(self) -> AuditEntry:
        if self.error is not None:
            raise self.error
        assert self.entry is not None
        return self.entry


# --- the signing key ----------------------------------------------------------------------------------------


def create_audit_key(home: Path) -> Path:
    """Create ``<home>/audit_signing.key`` (Ed25519, PKCS#8 PEM, mode 0600); never overwrite one."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return write_private(
        home / AUDIT_KEY_FILE,
        pem,
        ja="監査署名鍵は既に存在します。上書きすると過去のチェックポイントを検証できなくなるため、作成を中止しました",
        en="audit signing key exists; refusing to overwrite it (old checkpoints would no longer verify)",
    )


def load_audit_key(home: Path) -> Ed25519PrivateKey:
    """Read the audit key; refuse a missing, group/world-accessible or malformed file."""
    path = home / AUDIT_KEY_FILE
    pem = read_private(
        path,
        "監査署名鍵",
        "audit signing key",
        create_ja="`renkei hub init` で作成してください",
        create_en="run `renkei hub init`",
    )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            "監査署名鍵の形式が正しくありません",
            "audit signing key is not an Ed25519 PEM key",
            Location(path),
        )
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public half, to hand to whoever keeps checkpoints outside the system."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError("Ed25519 公開鍵（PEM）ではありません", "not an Ed25519 public key in PEM form")
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, non-secret name of the key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# --- checkpoints --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the log had ``size`` entries with Merkle root ``root_hex`` at ``at``"."""

    size: int
    root_hex: str
    at: dt.datetime
    key_id: str
    signature: str  # hex of the Ed25519 signature over signed_message()

    @staticmethod
    def message(size: int, root_hex: str, at: dt.datetime, key: str) -> bytes:
        return (
            f"{CHECKPOINT_FORMAT}\nsize {size}\nroot {root_hex}\nat {format_time(at)}\nkey {key}\n".encode()
        )

    @classmethod
    def sign(cls, size: int, root: bytes, at: dt.datetime, signing_key: Ed25519PrivateKey) -> Checkpoint:
        kid = key_id(signing_key.public_key())
        signature = signing_key.sign(cls.message(size, root.hex(), at, kid))
        return cls(size, root.hex(), at.astimezone(dt.UTC), kid, signature.hex())

    def signed_message(self) -> bytes:
        return self.message(self.size, self.root_hex, self.at, self.key_id)

    def verify_signature(self, public_key: Ed25519PublicKey) -> bool:
        if key_id(public_key) != self.key_id:
            return False
        try:
            public_key.verify(bytes.fromhex(self.signature), self.signed_message())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> str:
        doc = {
            "format": CHECKPOINT_FORMAT,
            "size": self.size,
            "root": self.root_hex,
            "at": format_time(self.at),
            "key_id": self.key_id,
            "signature": self.signature,
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("not a renkei audit checkpoint")
            size, root_hex, at, kid, signature = (
                doc[k] for k in ("size", "root", "at", "key_id", "signature")
            )
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError("size must be a non-negative integer")
            if not _is_hex(root_hex, 64) or not _is_hex(signature, 128) or not _is_hex(kid, 16):
                raise ValueError("root, signature or key_id malformed")
            when = dt.datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(
                "チェックポイントの形式が正しくありません", f"malformed audit checkpoint: {exc}"
            ) from None
        return cls(size, root_hex, when, kid, signature)

    def to_line(self) -> str:
        """The same document on one line, for the append-only copy file."""
        return json.dumps(json.loads(self.to_json()), separators=(",", ":")) + "\n"

    def save(self, path: Path) -> Path:
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        return cls.from_json(path.read_text(encoding="utf-8"))


def append_checkpoint_copy(path: Path, cp: Checkpoint) -> None:
    """Append one line and make it durable; the file is only ever appended to (O_APPEND, 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, cp.to_line().encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class CheckpointCopies:
    checkpoints: tuple[Checkpoint, ...]
    bad_lines: tuple[int, ...]  # 1-based numbers of lines that are not a checkpoint
    torn_last_line: bool  # the last line has no newline: a write cut short, not a finding


def read_checkpoint_copies(path: Path) -> CheckpointCopies:
    """The checkpoints in a copy file; a missing file holds none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return CheckpointCopies((), (), False)
    lines = text.split("\n")
    torn = lines[-1] != ""
    good: list[Checkpoint] = []
    bad: list[int] = []
    for number, line in enumerate(lines[:-1] if not torn else lines, start=1):
        if not line.strip():
            continue
        try:
            good.append(Checkpoint.from_json(line))
        except AuditError:
            if not (torn and number == len(lines)):
                bad.append(number)
    return CheckpointCopies(tuple(good), tuple(bad), torn)


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and re.fullmatch("[0-9a-f]+", value) is not None


# --- verification report ------------------------------------------------------------------------------------


class Problem(enum.StrEnum):
    MODIFIED = "modified"
    DELETED = "deleted"
    REORDERED = "reordered"
    INSERTED = "inserted"
    TRUNCATED = "truncated"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem. ``seq``: the first entry that may be bad; ``last_seq``: set when only a range is known."""

    problem: Problem
    seq: int | None
    message_ja: str
    message_en: str
    last_seq: int | None = None

    @property
    def upper_bound(self) -> float:
        """The latest position the first bad entry can be at, to pick the most telling finding."""
        bound = self.last_seq if self.last_seq is not None else self.seq
        return math.inf if bound is None else bound


@dataclass(frozen=True, slots=True)
class VerifyReport:
    size: int
    root_hex: str
    findings: tuple[Finding, ...] = ()
    checkpoints_checked: int = 0
    warnings: tuple[str, ...] = ()
    covered: int = 0  # entries 0..covered-1 are covered by a signed checkpoint whose root matched
    uncovered_since: dt.datetime | None = None  # time of the first entry not covered, if any
    # Set by AuditLog.verify_recent when only the entries from seq full_size on were verified now: entries
    # 0..full_size-1 were verified in full at full_at (a change to them since shows at the next full one).
    full_size: int | None = None
    full_at: dt.datetime | None = None

    @property
    def incremental(self) -> bool:
        return self.full_size is not None

    @property
    def ok(self) -> bool:
        return not self.findings

    def unsigned_too_long(self, max_age: dt.timedelta, now: dt.datetime) -> bool:
        """True when some entry has gone uncovered by a signed checkpoint for longer than ``max_age``."""
        return self.uncovered_since is not None and now - self.uncovered_since > max_age

    @property
    def first(self) -> Finding | None:
        if not self.findings:
            return None
        return min(self.findings, key=lambda f: (f.upper_bound, f.last_seq is not None))

    @property
    def first_bad_seq(self) -> int | None:
        return self.first.seq if self.first else None

    @property
    def problem(self) -> Problem | None:
        return self.first.problem if self.first else None

    @property
    def message_ja(self) -> str:
        return self.first.message_ja if self.first else f"監査ログは正常です（{self.size} 件）"

    @property
    def message_en(self) -> str:
        return self.first.message_en if self.first else f"audit log verifies ({self.size} entries)"


# --- the log ------------------------------------------------------------------------------------------------


class AuditLog:
    """Append, checkpoint, verify and read the audit log stored through ``engine``.

    ``signing_key`` signs checkpoints (one every ``checkpoint_every`` appends and on demand); verification
    trusts its public key plus ``trusted_keys`` (e.g. an auditor who holds only public keys).
    """

    def __init__(
        self,
        engine: Engine,
        signing_key: Ed25519PrivateKey | None = None,
        checkpoint_every: int = DEFAULTS.audit.checkpoint_every,
        *,
        trusted_keys: Iterable[Ed25519PublicKey] = (),
        checkpoint_copy: Path | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise AuditError(
                f"監査ログは {engine.dialect.name} に対応していません",
                "audit log supports SQLite and PostgreSQL only",
            )
        self._engine = engine
        self._group = threading.Condition()  # group commit of append(): the queue and who is committing
        self._queue: list[_Waiting] = []
        self._committing = False
        self._verify_lock = threading.Lock()  # one verification at a time; the others then use its result
        self._verified: _Verified | None = None  # what the last full verification (and its extensions) found
        self._key = signing_key
        self._every = checkpoint_every
        self._copy = checkpoint_copy
        keys = [*trusted_keys, *([signing_key.public_key()] if signing_key else [])]
        self._trusted = {key_id(k): k for k in keys}

    # -- writing

    def append(
        self,
        *,
        actor: str,
        action: AuditAction,
        resource: str = "",
        result: str = "ok",
        reason: str = "",
        terminal: str = "",
        client_addr: str = "",
        details: Mapping[str, object] | None = None,
    ) -> AuditEntry:
        """Append one entry in its own transaction; it is committed (durable) when this returns.

        Group commit (SQLite): the entries that threads of this process append while another thread's
        transaction is committing wait for it, then the first of them commits all of them in one transaction (one fsync, one
        turn of the database's write lock), in the order they came; each call returns when its own entry is
        committed, or raises what that transaction raised.
        """
        waiting = _Waiting(
            _Draft.build(actor, action, resource, result, reason, terminal, client_addr, details)
        )
        if self._engine.dialect.name != "sqlite":
            # PostgreSQL: each append in its own transaction, as before. The group's committer takes a
            # connection while the waiters hold theirs; with PostgreSQL's bounded pool (5 + 10) that could
            # wait for a free one until the pool's timeout. SQLite's pool is sized for it (renkei.hub.db).
            self._commit_batch([waiting])
            return waiting.outcome()
        with self._group:
            self._queue.append(waiting)
            while not waiting.done and self._committing:
                self._group.wait()
            if waiting.done:
                return waiting.outcome()
            self._committing = True
            batch, self._queue = self._queue, []
        try:
            self._commit_batch(batch)
        finally:
            with self._group:
                self._committing = False
                self._group.notify_all()
        return waiting.outcome()

    def _commit_batch(self, batch: list[_Waiting]) -> None:
        committing = False

        def attempt() -> list[AuditEntry]:
            nonlocal committing
            committing = False
            with _write_transaction(self._engine) as conn:
                entries = [self._append_locked(conn, w.draft) for w in batch]
                committing = True
            return entries

        try:
            # A connection lost before the commit rolled the entries back: safe to append again. One lost
            # during the commit may have committed them: appending again could log them twice, so that is
            # reported instead.
            entries = _retrying(attempt, may_reconnect=lambda: not committing)
        except BaseException as exc:
            for w in batch:
                w.error, w.done = exc, True
            raise
        for w, entry in zip(batch, entries, strict=True):
            w.entry, w.done = entry, True

    def append_in(
        self,
        session: Session,
        *,
        actor: str,
        action: AuditAction,
        resource: str = "",
        result: str = "ok",
        reason: str = "",
        terminal: str = "",
        client_addr: str = "",
        details: Mapping[str, object] | None = None,
    ) -> AuditEntry:
        """Append one entry inside ``session``'s transaction: it commits or rolls back with the caller's work.

        The entry locks the log's head until that transaction ends, so commit soon. On SQLite, call this after
        the caller's first write (or before any read) of the transaction; a "database is locked" error means
        the whole transaction must be retried.
        """
        draft = _Draft.build(actor, action, resource, result, reason, terminal, client_addr, details)
        return self._append_locked(session.connection(), draft)

    def _append_locked(self, conn: Connection, draft: _Draft) -> AuditEntry:
        frontier = _lock_head(conn)
        values = draft.values(frontier.size, _now())
        leaf = entry_leaf_hash(values)
        try:
            conn.execute(_INSERT_ENTRY, {**values, "leaf_hash": leaf.hex()})
        except IntegrityError:
            raise AuditError(
                f"監査ログの先頭情報と記録が一致しません（seq {frontier.size} が既に存在）。"
                "`renkei audit verify` で検査してください",
                f"audit log head is inconsistent (seq {frontier.size} exists); run `renkei audit verify`",
            ) from None
        frontier.append(leaf)
        conn.execute(_UPDATE_HEAD, {"new_size": frontier.size, "new_frontier": frontier.to_hex()})
        if self._key is not None and frontier.size % self._every == 0:
            _store_checkpoint(conn, Checkpoint.sign(frontier.size, frontier.root(), values["at"], self._key))
        return AuditEntry(**values, leaf_hash=leaf.hex())

    @property
    def can_sign(self) -> bool:
        return self._key is not None

    def checkpoint(self) -> Checkpoint:
        """Sign and store the current tree head, in the database and (once committed) in the copy file.

        Also write ``to_json()`` somewhere this system cannot change.
        """
        signing_key = self._key
        if signing_key is None:
            raise AuditError("監査署名鍵が読み込まれていません", "no audit signing key loaded; cannot sign")

        def attempt() -> Checkpoint:
            with _write_transaction(self._engine) as conn:
                frontier = _lock_head(conn)
                cp = Checkpoint.sign(frontier.size, frontier.root(), _now(), signing_key)
                _store_checkpoint(conn, cp)
                return cp

        cp = _retrying(attempt)
        if self._copy is not None:  # only after the commit: a copy never names a tree that was rolled back
            append_checkpoint_copy(self._copy, cp)
        return cp

    # -- reading

    def tail(self, n: int = 20) -> list[AuditEntry]:
        """The last ``n`` entries, oldest first."""
        with Session(self._engine) as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(n)).all()
        return list(reversed(rows))

    def size(self) -> int:
        with self._engine.connect() as conn:
            return conn.scalar(select(_head.c.size).where(_head.c.id == 1)) or 0

    def leaf_hashes(self, size: int) -> list[bytes]:
        """The stored leaf hashes of entries 0..size-1, for proofs handed to an outside auditor."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_entries.c.leaf_hash).where(_entries.c.seq < size).order_by(_entries.c.seq)
            )
            leaves = [bytes.fromhex(h) for (h,) in rows]
        if len(leaves) != size:
            raise AuditError(f"監査ログに {size} 件ありません", f"the audit log does not hold {size} entries")
        return leaves

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(self.leaf_hashes(size), index)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return merkle.consistency_proof(self.leaf_hashes(size2), size1)

    # -- verification

    def verify(self, checkpoint: Checkpoint | None = None) -> VerifyReport:
        """Recompute every leaf and root; check seq, the head, and the stored, copied and external checkpoints.

        O(n) time, O(log n) memory plus the rows kept to classify a problem.
        """
        return self._verify(checkpoint)[0]

    def verify_recent(self, max_age: dt.timedelta = FULL_VERIFY_EVERY) -> VerifyReport:
        """Verify the entries appended since the last full verification, if that is at most ``max_age`` old.

        For pages that show the log's state on every view (``/admin``, ``/audit/inspection``): a full
        :meth:`verify` is O(n) per view. This one remembers the tree the last full verification rebuilt and
        extends it by the new entries: each is recomputed from its fields, the stored head must equal the
        extended tree, and the new signed checkpoints must match it. Anything that does not fit, an expired or
        missing base, or a log that did not verify: a full verification, whose findings are reported. A
        change to an entry verified before (an edit in place, a deletion) is found only by the next full
        verification (at most ``max_age`` later, or ``renkei audit verify`` at once); the report says so
        (``full_size``, ``full_at``). The checkpoint copy file is checked only by the full verification.
        """
        with self._verify_lock:
            now = _now()
            base = self._verified
            if base is None or not dt.timedelta(0) <= now - base.full_at <= max_age:
                return self._verify_and_remember(now)
            extended = self._extend(base)
            if extended is None:
                return self._verify_and_remember(now)
            self._verified = extended
            return extended.report

    def _verify_and_remember(self, now: dt.datetime) -> VerifyReport:
        report, frontier = self._verify()
        self._verified = _Verified(report.size, now, frontier, report) if report.ok else None
        return report

    def refresh_verification(self) -> VerifyReport:
        """A full verification that becomes :meth:`verify_recent`'s new base, run without holding it up: the
        pages meanwhile extend the previous base (for :meth:`keep_verified`'s thread, so that no page view
        pays for the full pass). A log that does not verify leaves no base: the next page verifies in full
        and shows the findings."""
        now = _now()
        report, frontier = self._verify()
        with self._verify_lock:
            base = self._verified
            if base is None or base.full_at <= now:  # never replace a base that is newer than this pass
                self._verified = _Verified(report.size, now, frontier, report) if report.ok else None
        return report

    @contextmanager
    def keep_verified(self, every: dt.timedelta = FULL_VERIFY_EVERY / 2) -> Iterator[None]:
        """For the block, a daemon thread verifies the log in full at once and then ``every`` (half the age
        :meth:`verify_recent` trusts, so a page always finds a base). A pass that fails to read the log is
        logged and tried again at the next turn; it never stops the block."""
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                try:
                    self.refresh_verification()
                except Exception:  # a database outage: the pages' own verification reports it
                    logger.exception("background audit verification failed")
                stop.wait(every.total_seconds())

        thread = threading.Thread(target=run, name="audit-verify", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def _extend(self, base: _Verified) -> _Verified | None:
        """``base`` extended by the entries appended since; None when they do not verify (or cannot tell)."""

        def read() -> tuple[_Head, list[Checkpoint], _Scan]:
            with consistent_read(self._engine) as conn:
                head = _read_head(conn)
                rows = conn.execute(
                    select(_checkpoints)
                    .where(_checkpoints.c.size > base.frontier.size)
                    .order_by(_checkpoints.c.size)
                ).mappings()
                new = [
                    Checkpoint(r["size"], r["root_hex"], r["at"], r["key_id"], r["signature"]) for r in rows
                ]
                wanted = {cp.size for cp in new}
                return (
                    head,
                    new,
                    _scan(conn, head.size if head.frontier is not None else None, wanted, base.frontier),
                )

        head, new, scan = _retrying(read, may_reconnect=lambda: True)
        if head.frontier is None or scan.mismatched or scan.gap is not None or scan.size != head.size:
            return None
        if scan.head_frontier is None or scan.head_frontier.hashes != head.frontier.hashes:
            return None
        if new and not self._trusted:
            return None
        good = [base.report.covered]
        for cp in new:
            public = self._trusted.get(cp.key_id)
            if public is None or not cp.verify_signature(public) or cp.size not in scan.roots:
                return None
            if scan.roots[cp.size].hex() != cp.root_hex:
                return None
            good.append(cp.size)
        covered = max(good)
        since = base.report.uncovered_since if covered == base.report.covered else scan.time_at(covered)
        warnings = [w for w in base.report.warnings if _UNCOVERED not in w]
        if scan.size > covered:
            warnings.append(_uncovered_warning(covered, scan.size))
        report = VerifyReport(
            size=scan.size,
            root_hex=scan.frontier.root().hex(),
            checkpoints_checked=base.report.checkpoints_checked + len(new),
            warnings=tuple(warnings),
            covered=covered,
            uncovered_since=since if scan.size > covered else None,
            full_size=base.full_size,
            full_at=base.full_at,
        )
        return _Verified(base.full_size, base.full_at, scan.frontier, report)

    def _verify(self, checkpoint: Checkpoint | None = None) -> tuple[VerifyReport, merkle.Frontier]:
        copies = read_checkpoint_copies(self._copy) if self._copy is not None else None
        sizes = {
            cp.size for cp in [*(copies.checkpoints if copies else ()), *([checkpoint] if checkpoint else [])]
        }

        def read() -> tuple[_Head, list[Checkpoint], _Scan]:
            with consistent_read(self._engine) as conn:
                head = _read_head(conn)
                stored = _read_checkpoints(conn)
                wanted = sizes | {cp.size for cp in stored}
                return head, stored, _scan(conn, head.size if head.frontier is not None else None, wanted)

        head, stored, scan = _retrying(read, may_reconnect=lambda: True)  # a read: always safe to repeat
        checks = _Checks(scan, head)
        warnings: list[str] = []
        self._check_all(checks, stored, "stored", warnings)
        if copies is not None:
            self._check_copies(checks, copies, warnings)
        if checkpoint is not None:
            self._check_all(checks, [checkpoint], "external", warnings)
        checks.finish()
        covered = checks.covered
        if scan.size > covered:
            warnings.append(_uncovered_warning(covered, scan.size))
        report = VerifyReport(
            size=scan.size,
            root_hex=scan.frontier.root().hex(),
            findings=tuple(checks.findings),
            checkpoints_checked=checks.checked,
            warnings=tuple(warnings),
            covered=covered,
            uncovered_since=scan.time_at(covered) if scan.size > covered else None,
        )
        return report, scan.frontier

    def _check_all(
        self, checks: _Checks, cps: Sequence[Checkpoint], source: str, warnings: list[str]
    ) -> None:
        """Check ``cps`` against the trusted keys; without keys only an external checkpoint is used (unsigned)."""
        if cps and not self._trusted:
            what_ja, what_en = _SOURCES[source]
            warnings.append(
                f"信頼する公開鍵がないため、{what_ja}の署名を検証していません"
                f" (no trusted public key: the {what_en} signatures were not checked)"
            )
            if source != "external":
                return
        for cp in cps:
            checks.checkpoint(cp, self._trusted or None, source=source)

    def _check_copies(self, checks: _Checks, copies: CheckpointCopies, warnings: list[str]) -> None:
        assert self._copy is not None
        self._check_all(checks, copies.checkpoints, "copy", warnings)
        if copies.bad_lines:
            checks.bad_copy_lines(self._copy, copies.bad_lines)
        if copies.torn_last_line:
            warnings.append(
                f"{self._copy} の最終行が途中で切れています（書き込み中の停止）"
                f" (the last line of {self._copy} is cut short: an interrupted write)"
            )


_SOURCES = {
    "stored": ("保存済みチェックポイント", "stored checkpoint"),
    "copy": ("ホームのチェックポイント控え", "checkpoint copy in the hub home"),
    "external": ("外部チェックポイント", "external checkpoint"),
}


# --- transactions -------------------------------------------------------------------------------------------


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement (SQLite: BEGIN IMMEDIATE)."""
    with write_turn(engine), engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        # pysqlite would begin lazily and deferred; in driver autocommit mode we issue BEGIN ourselves.
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            sqlite_rollback(conn)
            raise
        conn.exec_driver_sql("COMMIT")


_UNCOVERED = "not yet covered by a signed checkpoint"


def _uncovered_warning(covered: int, size: int) -> str:
    """The warning for entries ``covered``..``size - 1``, appended after the last signed checkpoint."""
    return (
        f"seq {covered}〜{size - 1} は署名済みチェックポイントで保護されていません"
        f" (entries {covered}..{size - 1} are {_UNCOVERED})"
    )


def _retrying(operation: Callable[[], T], *, may_reconnect: Callable[[], bool] = lambda: False) -> T:
    """Run ``operation``; on lock contention (SQLite busy, PostgreSQL serialization or deadlock) try again, and
    on a lost connection once more if ``may_reconnect()`` says repeating it is safe."""
    reconnects = 0
    for attempt in range(_RETRY_ATTEMPTS):
        try:
            return operation()
        except DBAPIError as exc:
            if is_disconnect(exc) and may_reconnect() and reconnects < _RECONNECTS:
                reconnects += 1
                continue
            if attempt == _RETRY_ATTEMPTS - 1 or not _is_contention(exc):
                raise
        time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 (jitter, not security)
    raise AssertionError("unreachable")


def _is_contention(exc: DBAPIError) -> bool:
    if isinstance(exc.orig, sqlite3.OperationalError):
        message = str(exc.orig).lower()
        return "locked" in message or "busy" in message
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lock_head(conn: Connection) -> merkle.Frontier:
    """Lock the head row (creating it for an empty log) and return the tree it describes."""
    if conn.dialect.name == "sqlite":
        conn.execute(_create_head("sqlite"))  # also takes the database write lock before anything is read
    row = conn.execute(_LOCK_HEAD).one_or_none()
    if row is None:  # PostgreSQL, first append ever; ON CONFLICT makes a concurrent first append wait
        conn.execute(_create_head("postgresql"))
        row = conn.execute(_LOCK_HEAD).one()
    try:
        return merkle.Frontier.from_hex(row.size, row.frontier)
    except ValueError:
        raise AuditError(
            "監査ログの先頭情報が壊れています。`renkei audit verify` で検査してください",
            "audit log head is corrupt; run `renkei audit verify`",
        ) from None


def _store_checkpoint(conn: Connection, cp: Checkpoint) -> None:
    values = {
        "size": cp.size,
        "root_hex": cp.root_hex,
        "at": cp.at,
        "key_id": cp.key_id,
        "signature": cp.signature,
    }
    conn.execute(_INSERT_CHECKPOINT, values)


# --- verification internals ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Head:
    size: int
    frontier: merkle.Frontier | None  # None: no head row, or one that does not parse


def _read_head(conn: Connection) -> _Head:
    row = conn.execute(select(_head.c.size, _head.c.frontier).where(_head.c.id == 1)).one_or_none()
    if row is None:
        return _Head(0, None)
    try:
        return _Head(row.size, merkle.Frontier.from_hex(row.size, row.frontier))
    except ValueError:
        return _Head(row.size, None)


def _read_checkpoints(conn: Connection) -> list[Checkpoint]:
    rows = conn.execute(select(_checkpoints).order_by(_checkpoints.c.size, _checkpoints.c.id)).mappings()
    return [Checkpoint(r["size"], r["root_hex"], r["at"], r["key_id"], r["signature"]) for r in rows]


@dataclass
class _Scan:
    """What one pass over the entries found."""

    frontier: merkle.Frontier = field(default_factory=merkle.Frontier)
    roots: dict[int, bytes] = field(default_factory=dict)  # root of the first n leaves, for wanted sizes n
    head_frontier: merkle.Frontier | None = None  # the tree as it was at the head's size
    mismatched: dict[int, RowMapping] = field(default_factory=dict)  # position → row whose hash is wrong
    gap: tuple[int, int] | None = None  # (position, seq found there)
    times: dict[int, object] = field(default_factory=dict)  # position → raw `at`, at wanted sizes

    def time_at(self, position: int) -> dt.datetime | None:
        """When the entry at ``position`` was appended, if it was read and its time is readable."""
        try:
            return _raw_time(self.times[position])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def size(self) -> int:
        """Entries in the gap-free prefix."""
        return self.frontier.size


def _scan(
    conn: Connection, head_size: int | None, wanted: set[int], start: merkle.Frontier | None = None
) -> _Scan:
    """One pass over the entries (from ``start``'s size on, extending a copy of it, if given)."""
    scan = _Scan(merkle.Frontier(start.size, start.hashes)) if start is not None else _Scan()
    _remember(scan, head_size, wanted)
    query = _SCAN_ENTRIES.where(_entries.c.seq >= start.size) if start is not None else _SCAN_ENTRIES
    result = conn.execution_options(yield_per=_SCAN_BATCH).execute(query)
    with result:  # closes the server-side cursor (PostgreSQL) even when a gap ends the scan early
        for row in result.mappings():
            position = scan.size
            if row["seq"] != position:
                scan.gap = (position, row["seq"])
                break
            if position in wanted or position == 0:
                scan.times[position] = row["at"]
            computed = _row_leaf_hash(row)
            wrong = computed is None or computed.hex() != row["leaf_hash"]
            if wrong and len(scan.mismatched) < _MISMATCH_MEMORY:
                scan.mismatched[position] = row
            # The tree is rebuilt from what the fields say now, never from the stored hashes.
            scan.frontier.append(computed or hashlib.sha256(b"unreadable entry").digest())
            _remember(scan, head_size, wanted)
    return scan


def _remember(scan: _Scan, head_size: int | None, wanted: set[int]) -> None:
    if scan.size in wanted:
        scan.roots[scan.size] = scan.frontier.root()
    if scan.size == head_size:
        scan.head_frontier = merkle.Frontier(scan.size, scan.frontier.hashes)


def _row_leaf_hash(row: Mapping[Any, Any], seq: int | None = None) -> bytes | None:
    """The leaf hash the row's fields give (optionally as if it had ``seq``); None if they cannot be read."""
    fields = {name: row[name] for name in HASHED_FIELDS}
    if seq is not None:
        fields["seq"] = seq
    try:
        fields["at"] = _raw_time(fields["at"])
        if isinstance(fields["details"], str):  # SQLite: JSON text; psycopg has already parsed it
            fields["details"] = json.loads(fields["details"])
        return entry_leaf_hash(fields)
    except (TypeError, ValueError, AttributeError):
        return None


def _raw_time(value: object) -> dt.datetime:
    if isinstance(value, str):  # SQLite's stored text, UTC
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError("not a timestamp")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _stored_matches(row: Mapping[Any, Any], seq: int) -> bool:
    computed = _row_leaf_hash(row, seq)
    return computed is not None and computed.hex() == row["leaf_hash"]


class _Checks:
    """Collects findings: exact ones (a given seq) and a range from roots that do not match."""

    def __init__(self, scan: _Scan, head: _Head) -> None:
        self.scan = scan
        self.findings: list[Finding] = []
        self.checked = 0
        self._good_sizes = {0}  # prefixes whose root matched a signed checkpoint
        self._bad_sizes: set[int] = set()  # prefixes whose root did not
        # Rows beyond the head were never appended through the log; the head check names them.
        self._limit: float = head.size if head.frontier is not None else math.inf
        self._entry_findings()
        self._head(head)

    def _entry_findings(self) -> None:
        scan = self.scan
        positions = [p for p in scan.mismatched if p < self._limit]
        if positions:
            self.findings.append(_classify(min(positions), scan.mismatched))
        elif scan.gap is not None and scan.gap[0] < self._limit:
            position, seq = scan.gap
            self.findings.append(
                Finding(
                    Problem.DELETED if seq > position else Problem.MODIFIED,
                    position,
                    f"seq {position} の記録がありません（次は seq {seq}）。削除されています",
                    f"entry seq {position} is missing (next is seq {seq}): deleted",
                )
            )

    def _head(self, head: _Head) -> None:
        scan = self.scan
        if head.frontier is None:
            if head.size or scan.size or scan.gap:
                self._add(
                    Problem.MODIFIED,
                    None,
                    "監査ログの先頭情報がないか壊れています",
                    "audit log head missing or corrupt",
                )
            return
        if scan.gap is not None and scan.gap[0] < head.size:
            return  # already reported as deleted
        if scan.size < head.size:
            self._truncated(head.size, "先頭情報")
            return
        if scan.size > head.size or scan.gap is not None:
            self._add(
                Problem.INSERTED,
                head.size,
                f"seq {head.size} 以降の記録は正規の追記ではありません（挿入）",
                f"entries from seq {head.size} on were not appended through the log (inserted)",
            )
        assert scan.head_frontier is not None
        # The head is not signed, so it is its own reference: its ranges never mix with the checkpoints'.
        for (start, end), stored, computed in zip(
            head.frontier.ranges(), head.frontier.hashes, scan.head_frontier.hashes, strict=True
        ):
            if stored != computed:
                self.findings.append(
                    Finding(
                        Problem.MODIFIED,
                        start,
                        f"seq {start}〜{end - 1} のいずれかが、監査ログの先頭情報と一致しません（書き換え）",
                        f"an entry between seq {start} and {end - 1} does not match the log head (rewritten)",
                        last_seq=end - 1,
                    )
                )
                return

    @property
    def covered(self) -> int:
        """The largest prefix a signed checkpoint vouches for, below the first prefix one contradicts."""
        bad = min(self._bad_sizes, default=math.inf)
        return max(g for g in self._good_sizes if g < bad)

    def bad_copy_lines(self, path: Path, numbers: Sequence[int]) -> None:
        shown = ", ".join(str(n) for n in numbers[:10])
        self._add(
            Problem.BAD_SIGNATURE,
            None,
            f"{path} の {shown} 行目はチェックポイントとして読めません（書き換えの疑い）",
            f"line(s) {shown} of {path} are not a checkpoint (the copy was edited)",
        )

    def checkpoint(
        self, cp: Checkpoint, trusted: Mapping[str, Ed25519PublicKey] | None, *, source: str
    ) -> None:
        where, where_en = _SOURCES[source]
        if trusted is not None:
            self.checked += 1
            public = trusted.get(cp.key_id)
            if public is None or not cp.verify_signature(public):
                self._add(
                    Problem.BAD_SIGNATURE,
                    None,
                    f"{where}（size {cp.size}）の署名が正しくありません",
                    f"{where_en} (size {cp.size}) has a bad signature or an unknown key {cp.key_id!r}",
                )
                return
        scan = self.scan
        if cp.size > scan.size:
            if scan.gap is None:
                self._truncated(cp.size, where)
            return
        if cp.size not in scan.roots:
            return
        (self._good_sizes if scan.roots[cp.size].hex() == cp.root_hex else self._bad_sizes).add(cp.size)

    def finish(self) -> None:
        """Mismatching checkpoint roots → one range: the first bad entry is in [last good, first bad)."""
        if not self._bad_sizes:
            return
        bad = min(self._bad_sizes)
        good = max(g for g in self._good_sizes if g < bad)
        self.findings.append(
            Finding(
                Problem.MODIFIED,
                good,
                f"seq {good}〜{bad - 1} のいずれかが書き換えられています（署名済みの木と一致しません）",
                f"an entry between seq {good} and {bad - 1} was rewritten (differs from the signed tree)",
                last_seq=bad - 1,
            )
        )

    def _truncated(self, expected: int, where: str) -> None:
        size = self.scan.size
        self._add(
            Problem.TRUNCATED,
            size,
            f"{where}では {expected} 件ですが {size} 件しかありません。seq {size} 以降が削除されています",
            f"the log holds {size} entries but was committed at {expected}: entries from seq {size} removed",
        )

    def _add(self, problem: Problem, seq: int | None, ja: str, en: str) -> None:
        self.findings.append(Finding(problem, seq, ja, en))


def _classify(position: int, mismatched: Mapping[int, RowMapping]) -> Finding:
    """Name what happened at the first entry whose stored hash does not match its fields."""
    row = mismatched[position]
    near = range(max(0, position - _CLASSIFY_WINDOW), position + _CLASSIFY_WINDOW + 1)
    for seq in sorted(set(near) | set(mismatched)):
        if seq == position or not _stored_matches(row, seq):
            continue
        # The row is intact but was written as seq `seq`: it has moved.
        partner = mismatched.get(seq)
        if seq > position and partner is not None and _stored_matches(partner, position):
            return Finding(
                Problem.REORDERED,
                position,
                f"seq {position} と seq {seq} の記録が入れ替えられています",
                f"entries seq {position} and seq {seq} were swapped (reordered)",
            )
        if seq > position:
            return Finding(
                Problem.DELETED,
                position,
                f"seq {position}〜{seq - 1} が削除され、後の記録の番号が詰められています",
                f"entries seq {position}..{seq - 1} were deleted and later entries renumbered",
            )
        return Finding(
            Problem.INSERTED,
            seq,
            f"seq {seq} の位置に {position - seq} 件の記録が挿入されています",
            f"{position - seq} forged entries were inserted at seq {seq}",
        )
    following = mismatched.get(position + 1)
    if following is not None and _stored_matches(following, position):
        return Finding(
            Problem.INSERTED,
            position,
            f"seq {position} の位置に記録が挿入されています",
            f"a forged entry was inserted at seq {position}",
        )
    return Finding(
        Problem.MODIFIED,
        position,
        f"seq {position} の記録が書き換えられています",
        f"entry seq {position} was modified (its fields no longer match its hash)",
    )


# --- display ------------------------------------------------------------------------------------------------

TAIL_HEADERS = (
    "seq",
    "日時 (UTC)",
    "主体 (actor)",
    "操作 (action)",
    "対象 (resource)",
    "結果",
    "理由 (reason)",
    "details",
)


def tail_rows(entries: Sequence[AuditEntry]) -> list[tuple[str, ...]]:
    """One row of display-safe strings per entry, in the order of TAIL_HEADERS (for a rich Table)."""
    return [
        (
            str(e.seq),
            e.at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            display_text(e.actor),
            display_text(e.action),
            display_text(e.resource),
            e.result,
            display_text(e.reason),
            display_text(json.dumps(e.details, ensure_ascii=False, sort_keys=True, separators=(",", ":"))),
        )
        for e in entries
    ]


def render_tail(entries: Sequence[AuditEntry], max_width: int = 40) -> str:
    """A plain-text table: one line per entry, columns padded by display width, long cells cut with '…'."""
    rows = [TAIL_HEADERS, *tail_rows(entries)]
    cells = [[_clip(cell, max_width) for cell in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(TAIL_HEADERS))]
    lines = ["  ".join(_pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _clip(text: str, limit: int) -> str:
    if _width(text) <= limit:
        return text
    out = ""
    for ch in text:
        if _width(out + ch) > limit - 1:
            break
        out += ch
    return out + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
