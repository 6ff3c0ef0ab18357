"""Key-encryption keys (KEK) of the vault: the city's key that wraps every data file's own key (DEK).

Each vault file has its own data key (an age X25519 identity, see ``renkei.hub.vault``). That key is stored
beside the file only in wrapped form: AES-256-GCM under the KEK, with associated data naming the file, so a
wrapped key opens nothing but its own file. The KEK never touches data files, so replacing it (``rotate-key``)
rewrites only the small ``.key.json`` files.

Where the KEK comes from (:func:`load_kek`, first match wins; nothing found → error, never a default key):

1. the setting ``keys.kms`` (``RENKEI_KMS=package.module:factory``, or ``[keys] kms`` in hub.toml) — a plug-in
   for an external key service (HSM, cloud KMS).
   Contract: ``factory(home: Path)`` returns an object with
   - ``key_id: str`` — a stable, non-secret name of the key (shown in errors and stored in key files);
   - ``wrap(dek: bytes, aad: bytes) -> WrappedKey`` — authenticated encryption of ``dek`` bound to ``aad``,
     returning ``WrappedKey(kek_id=key_id, ...)``; ``nonce`` may be empty if the service keeps its own;
   - ``unwrap(wrapped: WrappedKey, aad: bytes) -> bytes`` — the inverse; it must fail (preferably with
     :class:`WrongKekError`) when the key, the ciphertext or ``aad`` differ. Never return unauthenticated bytes.
   The factory raises if the service is unreachable; the vault fails closed.
2. ``RENKEI_KEK`` — the 32-byte key in base64 (e.g. injected by a secrets manager).
3. ``<home>/kek.key`` — 32 random bytes, mode 0600, created once by ``renkei hub init``.

Losing the KEK makes every snapshot unreadable: back it up apart from the vault (see docs/vault.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
import os
import secrets
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from renkei.errors import KeyFileError, Location, RenkeiError
from renkei.files import fsync_dir, read_private, write_private
from renkei.hub.settings import load_settings

KEK_FILE = "kek.key"
PENDING_KEK_FILE = "kek.key.new"  # a rotation in progress: the next KEK, not yet in force
KEK_ENV = "RENKEI_KEK"
KMS_ENV = "RENKEI_KMS"  # the variable of the setting keys.kms
KEK_BYTES = 32
NONCE_BYTES = 12
_KEY_ID_LABEL = b"renkei/kek-id/v1"


class KekError(RenkeiError):
    """The KEK cannot be obtained: not configured, malformed, or its plug-in failed."""


class WrongKekError(RenkeiError):
    """A wrapped data key does not open with this KEK (other key, altered or swapped key file)."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under a KEK. ``kek_id`` names the KEK; it is a fingerprint, never the key."""

    kek_id: str
    nonce: bytes
    ciphertext: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "kek_id": self.kek_id,
            "nonce": base64.b64encode(self.nonce).decode("ascii"),
            "wrapped": base64.b64encode(self.ciphertext).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> WrappedKey:
        """Parse :meth:`to_json` output; raises ``ValueError`` on any missing or malformed field."""
        fields = {name: data.get(name) for name in ("kek_id", "nonce", "wrapped")}
        if not all(isinstance(value, str) for value in fields.values()):
            raise ValueError("wrapped key needs string fields kek_id, nonce, wrapped")
        try:
            nonce = base64.b64decode(str(fields["nonce"]), validate=True)
            ciphertext = base64.b64decode(str(fields["wrapped"]), validate=True)
        except binascii.Error as e:
            raise ValueError(f"wrapped key is not valid base64: {e}") from None
        return cls(str(fields["kek_id"]), nonce, ciphertext)


@runtime_checkable
class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys. Implementations: :class:`FileKek`, :class:`EnvKek`, KMS plug-ins."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, dek: bytes, aad: bytes) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes: ...


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key: HMAC under the key of a fixed label, so it reveals nothing about it."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def check_kek_id(kek: KeyEncryptionKey, wrapped: WrappedKey) -> None:
    """Fail with a clear message when a key file names another KEK (e.g. an unfinished rotation)."""
    if wrapped.kek_id != kek.key_id:
        raise WrongKekError(
            f"鍵暗号化鍵が違います（鍵ファイルは {wrapped.kek_id}、読み込んだ鍵は {kek.key_id}）。"
            "鍵の交換が中断した場合は、もう一度 rotate-key を実行してください",
            f"wrong key-encryption key: the key file was wrapped by {wrapped.kek_id}, the loaded KEK is "
            f"{kek.key_id} (if a key rotation was interrupted, run rotate-key again)",
        )


class AesGcmKek:
    """A 32-byte KEK used with AES-256-GCM, a fresh random 96-bit nonce per wrap."""

    def __init__(self, key: bytes, source: str) -> None:
        if len(key) != KEK_BYTES:
            raise KekError(
                f"鍵暗号化鍵は {KEK_BYTES} バイトでなければなりません（{source}）",
                f"key-encryption key must be {KEK_BYTES} bytes ({source})",
            )
        self._aead = AESGCM(key)
        self._key_id = key_fingerprint(key)
        self.source = source

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, dek: bytes, aad: bytes) -> WrappedKey:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return WrappedKey(self._key_id, nonce, self._aead.encrypt(nonce, dek, aad))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        check_kek_id(self, wrapped)
        try:
            return self._aead.decrypt(wrapped.nonce, wrapped.ciphertext, aad)
        except (InvalidTag, ValueError):
            raise WrongKekError(
                "データ鍵を復号できません: 鍵暗号化鍵が違うか、鍵ファイルが改ざん・取り違えられています",
                "wrong key-encryption key, or the key file was altered or belongs to another file",
            ) from None

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(key_id={self._key_id!r}, source={self.source!r})"


class FileKek(AesGcmKek):
    """The KEK kept in ``<home>/kek.key`` (0600)."""

    @classmethod
    def load(cls, path: Path) -> FileKek:
        """Read a KEK file; refuse a missing, malformed or group/world-accessible one."""
        key = read_private(
            path,
            "鍵暗号化鍵",
            "key-encryption key",
            create_ja="`renkei hub init` で作成するか、RENKEI_KEK / RENKEI_KMS を設定してください",
            create_en="run `renkei hub init` or set RENKEI_KEK / RENKEI_KMS",
        )
        if len(key) != KEK_BYTES:
            raise KeyFileError(
                "鍵暗号化鍵の形式が正しくありません",
                "key-encryption key has the wrong length",
                Location(path),
            )
        return cls(key, str(path))


class EnvKek(AesGcmKek):
    """The KEK given in ``RENKEI_KEK`` as base64 (its value never appears in errors)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> EnvKek:
        try:
            key = base64.b64decode(environ[KEK_ENV].strip(), validate=True)
        except KeyError:
            raise KekError(f"{KEK_ENV} が設定されていません", f"{KEK_ENV} is not set") from None
        except binascii.Error:
            raise KekError(f"{KEK_ENV} が base64 ではありません", f"{KEK_ENV} is not valid base64") from None
        return cls(key, KEK_ENV)


def create_kek_file(home: Path) -> Path:
    """Create ``<home>/kek.key`` with 32 random bytes (0600); never overwrite an existing KEK."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = write_private(
        home / KEK_FILE,
        secrets.token_bytes(KEK_BYTES),
        ja="鍵暗号化鍵は既に存在します。上書きすると保管庫を復号できなくなるため、作成を中止しました",
        en="key-encryption key already exists; refusing to overwrite it (the vault would become unreadable)",
    )
    fsync_dir(home)
    return path


def load_kms_plugin(spec: str, home: Path) -> KeyEncryptionKey:
    """Import ``package.module:factory`` and call ``factory(home)``; the result must be a KEK."""
    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise KekError(
            f"{KMS_ENV} は「パッケージ.モジュール:関数」の形で指定してください",
            f"{KMS_ENV} must look like package.module:factory, got {spec!r}",
        )
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as e:
        raise KekError(
            f"鍵管理プラグイン {spec} を読み込めません", f"cannot load the KMS plug-in {spec!r}: {e}"
        ) from None
    kek = factory(home)
    if not isinstance(kek, KeyEncryptionKey):
        raise KekError(
            f"鍵管理プラグイン {spec} が鍵暗号化鍵を返しませんでした",
            f"KMS plug-in {spec!r} returned {type(kek).__name__}, not a KeyEncryptionKey",
        )
    return kek


def load_kek(home: Path, kms: str | None = None) -> KeyEncryptionKey:
    """The KEK in force: the ``keys.kms`` plug-in (``kms``, else loaded from ``home``'s settings), else
    ``RENKEI_KEK``, else ``<home>/kek.key``."""
    spec = load_settings(home).keys.kms if kms is None else kms
    if spec:
        return load_kms_plugin(spec, home)
    if os.environ.get(KEK_ENV):
        return EnvKek.from_env()
    return FileKek.load(home / KEK_FILE)


# A hub's database engine → how to load that hub's KEK (see :func:`bind_kek`).
_BOUND_KEKS: weakref.WeakKeyDictionary[object, Callable[[], KeyEncryptionKey]] = weakref.WeakKeyDictionary()


def bind_kek(owner: object, load: Callable[[], KeyEncryptionKey]) -> None:
    """Let a service handed only ``owner`` (a hub's database engine) find that hub's KEK, loaded on first use.

    :class:`renkei.hub.home.Hub` binds its engine, so a login service built from ``hub.engine`` alone can open
    the TOTP secrets the KEK wraps without every caller passing the key along.
    """
    _BOUND_KEKS[owner] = load


def bound_kek(owner: object) -> KeyEncryptionKey:
    """The KEK bound to ``owner``; without one, an error (never a default key)."""
    load = _BOUND_KEKS.get(owner)
    if load is None:
        raise KekError(
            "鍵暗号化鍵が指定されていません（TOTP の秘密情報を開くのに必要です）",
            "no key-encryption key was given; it is needed to open the TOTP secrets",
        )
    return load()


def _pending_kek_file(home: Path) -> FileKek:
    """The next KEK for a rotation, in ``<home>/kek.key.new``; reused if an earlier rotation was interrupted."""
    path = home / PENDING_KEK_FILE
    if path.exists() and path.stat().st_size != KEK_BYTES:
        path.unlink()  # cut short by a crash while it was written, so nothing was ever wrapped with it
    if not path.exists():
        write_private(path, secrets.token_bytes(KEK_BYTES))
        fsync_dir(home)
    return FileKek.load(path)


def pending_kek_id(home: Path) -> str:
    """The id of the next KEK of an interrupted rotation (``kek.key.new``), or "" when there is none."""
    path = home / PENDING_KEK_FILE
    try:
        return FileKek.load(path).key_id if path.is_file() else ""
    except KeyFileError:
        return ""  # cut short while written, or too open: nothing was wrapped with it


def rotate_kek_file(home: Path, rewrap: Callable[[KeyEncryptionKey], int]) -> int:
    """Rotate the file KEK crash-safely; returns the number of rewrapped data keys.

    Order: the new key is made durable first (``kek.key.new``), then ``rewrap`` (``Vault.rotate_kek``) moves
    every key file to it, and only then does it replace ``kek.key``. A crash at any point loses no key: run
    the rotation again and it resumes with the same new key. The old key is gone afterwards; key files in
    older backups of the vault need it, so archive it first if such backups exist.
    """
    new = prepare_kek_rotation(home)
    count = rewrap(new)
    finish_kek_rotation(home)
    return count


def prepare_kek_rotation(home: Path) -> FileKek:
    """The first step of a rotation: the next KEK, durable in ``kek.key.new`` (reused after a crash)."""
    source = (
        f"keys.kms ({KMS_ENV})"
        if load_settings(home).keys.kms
        else KEK_ENV
        if os.environ.get(KEK_ENV)
        else ""
    )
    if source:
        raise KekError(
            f"{source} が設定されているため、鍵ファイルの交換はできません",
            f"{source} is set, so the KEK does not come from {KEK_FILE}; rotate it where it is kept",
        )
    return _pending_kek_file(home)


def finish_kek_rotation(home: Path) -> None:
    """The last step, once everything is rewrapped: the next KEK replaces ``kek.key`` (durably)."""
    (home / PENDING_KEK_FILE).replace(home / KEK_FILE)
    fsync_dir(home)
