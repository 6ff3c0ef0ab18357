from __future__ import annotations

import base64
import datetime as dt
import os
import stat
import sys
import types
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from renkei.errors import KeyFileError
from renkei.hub.keys import (
    KEK_ENV,
    KEK_FILE,
    KMS_ENV,
    PENDING_KEK_FILE,
    AesGcmKek,
    EnvKek,
    FileKek,
    KekError,
    KeyEncryptionKey,
    WrappedKey,
    WrongKekError,
    create_kek_file,
    key_fingerprint,
    load_kek,
    prepare_kek_rotation,
    rotate_kek_file,
)
from renkei.hub.settings import SETTINGS_FILE
from renkei.hub.vault import SnapshotRef, Vault

KEY = bytes(range(32))
AAD = b"renkei/dek/v1|juki/2024-01-01/v1/data.parquet"


@pytest.fixture(autouse=True)
def _no_kek_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEK_ENV, raising=False)
    monkeypatch.delenv(KMS_ENV, raising=False)


class FakeKms:
    """Stands in for an external key service: the key stays inside; only wrap/unwrap calls come out."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._remote = AESGCM(bytes(32))
        self.calls: list[str] = []

    @property
    def key_id(self) -> str:
        return "fake-kms-key-1"

    def wrap(self, dek: bytes, aad: bytes) -> WrappedKey:
        self.calls.append("wrap")
        nonce = os.urandom(12)
        return WrappedKey(self.key_id, nonce, self._remote.encrypt(nonce, dek, aad))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        self.calls.append("unwrap")
        try:
            return self._remote.decrypt(wrapped.nonce, wrapped.ciphertext, aad)
        except InvalidTag:
            raise WrongKekError("鍵サービスで復号できません", "the KMS refused to unwrap") from None


@pytest.fixture
def fake_kms_module(monkeypatch: pytest.MonkeyPatch) -> str:
    """Installs the fake KMS as an importable plug-in module and returns its RENKEI_KMS value."""
    module = types.ModuleType("fake_kms_plugin")
    module.make_kms = FakeKms  # type: ignore[attr-defined]
    module.not_a_kek = lambda home: object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_kms_plugin", module)
    return "fake_kms_plugin:make_kms"


def test_create_kek_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = create_kek_file(tmp_path / "hub")
    assert path.name == KEK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        create_kek_file(tmp_path / "hub")
    assert path.read_bytes() == before


def test_missing_or_permissive_kek_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="RENKEI_KEK / RENKEI_KMS"):
        load_kek(tmp_path)
    path = create_kek_file(tmp_path)
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_kek(tmp_path)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(KeyFileError, match="wrong length"):
        load_kek(tmp_path)


def test_wrap_unwrap_round_trip_with_fresh_nonces() -> None:
    kek = AesGcmKek(KEY, "test")
    first, second = kek.wrap(b"dek", AAD), kek.wrap(b"dek", AAD)
    assert first.nonce != second.nonce and len(first.nonce) == 12
    assert first.ciphertext != second.ciphertext
    assert kek.unwrap(first, AAD) == b"dek"
    assert WrappedKey.from_json(first.to_json()) == first


@pytest.mark.parametrize(
    "change",
    [
        lambda w: (w, AAD + b"x"),
        lambda w: (WrappedKey(w.kek_id, w.nonce, bytes([w.ciphertext[0] ^ 1]) + w.ciphertext[1:]), AAD),
        lambda w: (WrappedKey(w.kek_id, bytes(12), w.ciphertext), AAD),
    ],
    ids=["other-file", "flipped-byte", "other-nonce"],
)
def test_unwrap_fails_on_any_change(change: object) -> None:
    kek = AesGcmKek(KEY, "test")
    wrapped, aad = change(kek.wrap(b"dek", AAD))  # type: ignore[operator]
    with pytest.raises(WrongKekError, match="wrong key-encryption key"):
        kek.unwrap(wrapped, aad)


def test_other_kek_is_named_in_the_error() -> None:
    wrapped = AesGcmKek(KEY, "old").wrap(b"dek", AAD)
    other = AesGcmKek(bytes(32), "new")
    with pytest.raises(WrongKekError, match=f"wrapped by {wrapped.kek_id}.*loaded KEK is {other.key_id}"):
        other.unwrap(wrapped, AAD)


def test_key_id_is_a_stable_fingerprint_not_the_key(tmp_path: Path) -> None:
    kek = AesGcmKek(KEY, "test")
    assert kek.key_id == key_fingerprint(KEY) == AesGcmKek(KEY, "again").key_id
    assert len(kek.key_id) == 16 and int(kek.key_id, 16) >= 0
    assert kek.key_id not in KEY.hex() and KEY.hex() not in repr(kek)
    assert AesGcmKek(bytes(32), "test").key_id != kek.key_id


def test_wrapped_key_json_is_validated() -> None:
    good = AesGcmKek(KEY, "t").wrap(b"dek", AAD).to_json()
    for broken in ({**good, "nonce": "***"}, {**good, "wrapped": 5}, {"kek_id": "x"}):
        with pytest.raises(ValueError):
            WrappedKey.from_json(broken)


def test_env_kek_reads_base64_and_never_echoes_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(KEK_ENV, base64.b64encode(KEY).decode())
    kek = load_kek(tmp_path)
    assert isinstance(kek, EnvKek)
    assert kek.key_id == key_fingerprint(KEY)  # the same key in a file or the environment has one id
    monkeypatch.setenv(KEK_ENV, "not base64 at all!")
    with pytest.raises(KekError, match="not valid base64") as info:
        load_kek(tmp_path)
    assert "not base64 at all" not in str(info.value)
    monkeypatch.setenv(KEK_ENV, base64.b64encode(b"16 bytes only...").decode())
    with pytest.raises(KekError, match="must be 32 bytes"):
        load_kek(tmp_path)


def test_kms_plugin_wins_over_env_and_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_kms_module: str
) -> None:
    create_kek_file(tmp_path)
    monkeypatch.setenv(KEK_ENV, base64.b64encode(KEY).decode())
    monkeypatch.setenv(KMS_ENV, fake_kms_module)
    kek = load_kek(tmp_path)
    assert isinstance(kek, FakeKms) and isinstance(kek, KeyEncryptionKey)
    assert kek.home == tmp_path
    monkeypatch.delenv(KMS_ENV)
    assert isinstance(load_kek(tmp_path), EnvKek)
    monkeypatch.delenv(KEK_ENV)
    assert isinstance(load_kek(tmp_path), FileKek)


def test_the_kms_plugin_can_be_named_in_hub_toml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_kms_module: str
) -> None:
    """The setting keys.kms from the file: the plug-in is used, and the file KEK cannot be rotated."""
    create_kek_file(tmp_path)
    (tmp_path / SETTINGS_FILE).write_text(f'[keys]\nkms = "{fake_kms_module}"\n', encoding="utf-8")
    assert isinstance(load_kek(tmp_path), FakeKms)
    with pytest.raises(KekError, match=r"keys.kms \(RENKEI_KMS\) is set"):
        prepare_kek_rotation(tmp_path)
    assert isinstance(load_kek(tmp_path, kms=""), FileKek)  # what a hub passes when its setting is empty


def test_vault_works_through_a_kms_plugin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_kms_module: str
) -> None:
    monkeypatch.setenv(KMS_ENV, fake_kms_module)
    kek = load_kek(tmp_path)
    source = tmp_path / "data.parquet"
    source.write_bytes(b"payload " * 1000)
    vault = Vault(tmp_path / "vault", kek)
    ref = SnapshotRef("juki", dt.date(2024, 1, 1), 1)
    vault.store(ref, {"data.parquet": source})
    with Vault(tmp_path / "vault", load_kek(tmp_path)).open_plain(ref, "data.parquet") as plain:
        assert plain.read() == source.read_bytes()
    assert isinstance(kek, FakeKms) and kek.calls.count("wrap") == 2  # the file and its checksums


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon_here", "package.module:factory"),
        ("no_such_module_xyz:factory", "cannot load the KMS plug-in"),
        ("fake_kms_plugin:missing", "cannot load the KMS plug-in"),
        ("fake_kms_plugin:not_a_kek", "not a KeyEncryptionKey"),
    ],
)
def test_broken_kms_plugins_fail_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_kms_module: str, spec: str, message: str
) -> None:
    create_kek_file(tmp_path)  # a usable file KEK must not be used as a fallback
    monkeypatch.setenv(KMS_ENV, spec)
    with pytest.raises(KekError, match=message):
        load_kek(tmp_path)


def _store_one(home: Path) -> tuple[Vault, SnapshotRef, bytes]:
    data = home / "input.bin"
    data.write_bytes(os.urandom(4096))
    vault = Vault(home / "vault", load_kek(home))
    ref = SnapshotRef("kokuho", dt.date(2023, 4, 1), 1)
    vault.store(ref, {"data.parquet": data})
    return vault, ref, data.read_bytes()


def test_rotate_kek_file_replaces_the_key_after_rewrapping(tmp_path: Path) -> None:
    create_kek_file(tmp_path)
    vault, ref, data = _store_one(tmp_path)
    old_id = vault.kek_id
    assert rotate_kek_file(tmp_path, vault.rotate_kek) == 2
    assert not (tmp_path / PENDING_KEK_FILE).exists()
    new = load_kek(tmp_path)
    assert new.key_id != old_id and stat.S_IMODE((tmp_path / KEK_FILE).stat().st_mode) == 0o600
    with Vault(tmp_path / "vault", new).open_plain(ref, "data.parquet") as plain:
        assert plain.read() == data


def test_interrupted_kek_file_rotation_resumes_with_the_same_new_key(tmp_path: Path) -> None:
    create_kek_file(tmp_path)
    vault, ref, data = _store_one(tmp_path)

    def crash(new: KeyEncryptionKey) -> int:
        raise KeyboardInterrupt  # killed before anything was rewrapped

    with pytest.raises(KeyboardInterrupt):
        rotate_kek_file(tmp_path, crash)
    pending = (tmp_path / PENDING_KEK_FILE).read_bytes()
    assert len(pending) == 32 and stat.S_IMODE((tmp_path / PENDING_KEK_FILE).stat().st_mode) == 0o600
    assert load_kek(tmp_path).key_id == vault.kek_id  # the old key is still in force
    assert rotate_kek_file(tmp_path, Vault(tmp_path / "vault", load_kek(tmp_path)).rotate_kek) == 2
    assert (tmp_path / KEK_FILE).read_bytes() == pending
    with Vault(tmp_path / "vault", load_kek(tmp_path)).open_plain(ref, "data.parquet") as plain:
        assert plain.read() == data


def test_kek_file_rotation_refuses_when_the_kek_comes_from_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEK_ENV, base64.b64encode(KEY).decode())
    with pytest.raises(KekError, match="RENKEI_KEK is set"):
        rotate_kek_file(tmp_path, lambda new: 0)
    assert not (tmp_path / PENDING_KEK_FILE).exists()


def test_a_pending_kek_cut_short_by_a_crash_is_replaced(tmp_path: Path) -> None:
    create_kek_file(tmp_path)
    vault, ref, data = _store_one(tmp_path)
    (tmp_path / PENDING_KEK_FILE).write_bytes(b"partial")  # killed while writing it: never used to wrap
    (tmp_path / PENDING_KEK_FILE).chmod(0o600)
    assert rotate_kek_file(tmp_path, vault.rotate_kek) == 2
    with Vault(tmp_path / "vault", load_kek(tmp_path)).open_plain(ref, "data.parquet") as plain:
        assert plain.read() == data
