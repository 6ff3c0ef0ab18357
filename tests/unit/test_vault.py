from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import pytest

from renkei.hub import vault as vault_module
from renkei.hub.keys import AesGcmKek, WrongKekError
from renkei.hub.vault import (
    CatalogRecord,
    CorruptedFileError,
    SnapshotExistsError,
    SnapshotNotFoundError,
    SnapshotRef,
    Vault,
    VaultError,
    VaultFullError,
)

CANARY = b"CANARY-7f3a9c-\xe5\xb1\xb1\xe7\x94\xb0"  # 山田 in UTF-8
REF = SnapshotRef("juki", dt.date(2024, 1, 1), 1)


@pytest.fixture
def kek() -> AesGcmKek:
    return AesGcmKek(bytes(range(32)), "test")


@pytest.fixture
def vault(tmp_path: Path, kek: AesGcmKek) -> Vault:
    return Vault(tmp_path / "vault", kek)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "in" / "data.parquet"
    data.parent.mkdir()
    data.write_bytes(os.urandom(150_000) + CANARY * 1000 + os.urandom(150_000))
    manifest = tmp_path / "in" / "manifest.json"
    manifest.write_text(json.dumps({"rows": 42, "note": CANARY.decode()}), encoding="utf-8")
    return {"data.parquet": data, "manifest.json": manifest}


def _all_files(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file())


def _flip_byte(path: Path, offset: int) -> None:
    mode = path.stat().st_mode
    path.chmod(0o600)
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    path.chmod(stat.S_IMODE(mode))


def _writable(directory: Path) -> None:
    directory.chmod(0o700)


def _staging_entries(vault: Vault) -> list[Path]:
    staging = vault.root / ".staging"
    return list(staging.iterdir()) if staging.exists() else []


def _read_all(vault: Vault, ref: SnapshotRef, name: str) -> bytes:
    with vault.open_plain(ref, name) as plain:
        return plain.read()


# -- round trip ------------------------------------------------------------------------------------------


def test_round_trip_reports_plain_and_cipher_hashes(vault: Vault, inputs: dict[str, Path]) -> None:
    stored = vault.store(REF, inputs)
    assert stored.path == vault.root / "juki" / "2024-01-01" / "v1"
    for name, source in inputs.items():
        plain = source.read_bytes()
        entry = stored.files[name]
        assert (entry.plain_sha256, entry.plain_bytes) == (hashlib.sha256(plain).hexdigest(), len(plain))
        cipher = (stored.path / f"{name}.age").read_bytes()
        assert (entry.cipher_sha256, entry.cipher_bytes) == (hashlib.sha256(cipher).hexdigest(), len(cipher))
        assert _read_all(vault, REF, name) == plain
    assert vault.files(REF) == ["data.parquet", "manifest.json"]
    assert vault.verify() == []


def test_memfd_holds_the_plaintext_sealed_and_read_only(vault: Vault, inputs: dict[str, Path]) -> None:
    vault.store(REF, inputs)
    fd = vault.decrypt_to_memfd(REF, "data.parquet")
    try:
        link = Path(f"/proc/self/fd/{fd}").readlink()
        assert str(link).startswith("/memfd:renkei:juki/2024-01-01/v1/data.parquet")
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals == vault_module.MEMFD_SEALS
        with open(f"/proc/self/fd/{fd}", "rb") as plain:  # noqa: PTH123 — the path DuckDB uses
            assert plain.read() == inputs["data.parquet"].read_bytes()
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.write(fd, b"x")  # the fd itself is read-only
        writable = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
        try:
            with pytest.raises(PermissionError):
                os.write(writable, b"x")  # and the seals stop any other writer, root included
            with pytest.raises(PermissionError):
                os.ftruncate(writable, 0)
        finally:
            os.close(writable)
        assert os.get_inheritable(fd) is False
    finally:
        os.close(fd)


def _open_fds() -> set[str]:
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}


def _snapshots(vault: Vault, inputs: dict[str, Path], count: int) -> list[tuple[SnapshotRef, str]]:
    refs = [SnapshotRef("juki", dt.date(2024, 1, 1), v) for v in range(1, count + 1)]
    for ref in refs:
        vault.store(ref, inputs)
    return [(ref, name) for ref in refs for name in ("data.parquet", "manifest.json")]


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_many_files_decrypt_side_by_side_each_into_its_own_sealed_memfd(
    vault: Vault, inputs: dict[str, Path], processes: int
) -> None:
    files = _snapshots(vault, inputs, 3)
    fds = vault.decrypt_to_memfds(files, processes=processes)
    try:
        assert len(fds) == len(files)
        for (ref, name), fd in zip(files, fds, strict=True):
            assert str(Path(f"/proc/self/fd/{fd}").readlink()).startswith(f"/memfd:renkei:{ref}/{name}")
            assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) == vault_module.MEMFD_SEALS
            assert os.pread(fd, 1 << 20, 0) == inputs[name].read_bytes()  # in the order asked for
    finally:
        for fd in fds:
            os.close(fd)


def test_one_tampered_file_among_many_fails_the_call_naming_it_and_leaves_nothing_open(
    vault: Vault, inputs: dict[str, Path]
) -> None:
    files = _snapshots(vault, inputs, 3)
    target = vault.root / "juki" / "2024-01-01" / "v2" / "data.parquet.age"
    _flip_byte(target, 200_000)
    before = _open_fds()
    with pytest.raises(CorruptedFileError) as info:
        vault.decrypt_to_memfds(files, processes=2)
    assert str(target) in str(info.value)
    assert _open_fds() == before  # every memfd closed, every decrypting child's pipe too


def test_a_wrong_kek_fails_before_any_child_decrypts(vault: Vault, inputs: dict[str, Path]) -> None:
    files = _snapshots(vault, inputs, 2)
    stranger = Vault(vault.root, AesGcmKek(bytes(32), "other"))
    before = _open_fds()
    with pytest.raises(WrongKekError):
        stranger.decrypt_to_memfds(files)
    assert _open_fds() == before


def test_no_plaintext_or_data_key_anywhere_in_the_vault(vault: Vault, inputs: dict[str, Path]) -> None:
    vault.store(REF, inputs)
    manifest = inputs["manifest.json"].read_bytes()
    for path in _all_files(vault.root):
        content = path.read_bytes()
        assert CANARY not in content, path
        assert manifest not in content, path
        assert b"AGE-SECRET-KEY" not in content, path  # data keys are stored only wrapped
        assert bytes(range(32)) not in content, path


def test_files_and_snapshot_dir_are_read_only(vault: Vault, inputs: dict[str, Path]) -> None:
    stored = vault.store(REF, inputs)
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o500
    names = sorted(p.name for p in stored.path.iterdir())
    assert names == sorted(
        [
            f"{n}.age{suffix}"
            for n in ("data.parquet", "manifest.json", "checksums.json")
            for suffix in ("", ".key.json")
        ]
    )
    assert {stat.S_IMODE(p.stat().st_mode) for p in stored.path.iterdir()} == {0o400}
    for directory in (vault.root, vault.root / "juki", vault.root / "juki" / "2024-01-01"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert _staging_entries(vault) == []


def test_open_plain_streams_and_stops_cleanly_when_closed_early(vault: Vault, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 << 20))
    vault.store(REF, {"data.parquet": big})
    with vault.open_plain(REF, "data.parquet") as plain:
        assert plain.read(1000) == big.read_bytes()[:1000]
    # closing with most of the file unread must not hang or leak the decrypting thread
    with vault.open_plain(REF, "data.parquet") as plain:
        digest = hashlib.sha256()
        while chunk := plain.read(1 << 16):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()


# -- append-only -----------------------------------------------------------------------------------------


def test_store_never_overwrites(vault: Vault, inputs: dict[str, Path], tmp_path: Path) -> None:
    stored = vault.store(REF, inputs)
    before = {p: p.read_bytes() for p in _all_files(stored.path)}
    other = tmp_path / "other.parquet"
    other.write_bytes(b"a correction")
    with pytest.raises(SnapshotExistsError, match="next version"):
        vault.store(REF, {"data.parquet": other})
    assert {p: p.read_bytes() for p in _all_files(stored.path)} == before
    assert _staging_entries(vault) == []


def test_next_version_counts_per_dataset_and_period(vault: Vault, inputs: dict[str, Path]) -> None:
    period = REF.period
    assert vault.next_version("juki", period) == 1
    vault.store(REF, inputs)
    assert vault.next_version("juki", period) == 2
    vault.store(SnapshotRef("juki", period, 2), inputs)
    assert vault.next_version("juki", period) == 3
    assert vault.next_version("juki", dt.date(2025, 1, 1)) == 1
    assert vault.next_version("kokuho", period) == 1
    assert vault.snapshots() == [REF, SnapshotRef("juki", period, 2)]
    assert vault.snapshots("juki") == vault.snapshots()


def test_unknown_dataset_snapshot_and_file_are_named(vault: Vault, inputs: dict[str, Path]) -> None:
    with pytest.raises(SnapshotNotFoundError, match="unknown dataset 'juki'"):
        vault.snapshots("juki")
    vault.store(REF, inputs)
    with pytest.raises(SnapshotNotFoundError, match="unknown dataset 'kaigo'"):
        _read_all(vault, SnapshotRef("kaigo", REF.period, 1), "data.parquet")
    with pytest.raises(SnapshotNotFoundError, match="juki/2024-01-01/v2 is not in the vault"):
        vault.decrypt_to_memfd(SnapshotRef("juki", REF.period, 2), "data.parquet")
    with pytest.raises(
        SnapshotNotFoundError, match=r"has no file 'data\.csv'.*data\.parquet, manifest\.json"
    ):
        _read_all(vault, REF, "data.csv")
    with pytest.raises(SnapshotNotFoundError, match=r"has no file 'checksums\.json'"):
        _read_all(vault, REF, "checksums.json")


@pytest.mark.parametrize(
    ("dataset", "period", "version"),
    [
        ("../etc", dt.date(2024, 1, 1), 1),
        ("Juki", dt.date(2024, 1, 1), 1),
        (".staging", dt.date(2024, 1, 1), 1),
        ("juki", dt.datetime(2024, 1, 1, 12, 0), 1),
        ("juki", "2024-01-01", 1),
        ("juki", dt.date(2024, 1, 1), 0),
        ("juki", dt.date(2024, 1, 1), True),
    ],
)
def test_invalid_refs_are_refused(dataset: str, period: Any, version: Any) -> None:
    with pytest.raises(VaultError):
        SnapshotRef(dataset, period, version)


@pytest.mark.parametrize("name", ["../data.parquet", "sub/data.parquet", ".hidden", "checksums.json", ""])
def test_invalid_file_names_are_refused(vault: Vault, inputs: dict[str, Path], name: str) -> None:
    with pytest.raises(VaultError):
        vault.store(REF, {name: inputs["data.parquet"]})
    assert not vault.exists(REF)


# -- tampering -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [20, 5000, 200_000, -3], ids=["header", "first-chunk", "middle", "tag"])
def test_flipped_byte_is_reported_by_verify_and_fails_reads(
    vault: Vault, inputs: dict[str, Path], offset: int
) -> None:
    stored = vault.store(REF, inputs)
    target = stored.path / "data.parquet.age"
    _flip_byte(target, offset % target.stat().st_size)
    problems = vault.verify()
    assert [(p.path, p.kind) for p in problems] == [(target, "unreadable")]
    assert "tampered" in problems[0].en
    with pytest.raises(CorruptedFileError, match="tampered") as info:
        _read_all(vault, REF, "data.parquet")
    assert str(target) in str(info.value)
    with pytest.raises(CorruptedFileError):
        vault.decrypt_to_memfd(REF, "data.parquet")
    assert _read_all(vault, REF, "manifest.json") == inputs["manifest.json"].read_bytes()


def test_truncated_file_raises_at_the_end_of_the_stream(vault: Vault, inputs: dict[str, Path]) -> None:
    stored = vault.store(REF, inputs)
    target = stored.path / "data.parquet.age"
    target.chmod(0o600)
    os.truncate(target, 70_000)  # cut after the first 64 KiB chunk: a prefix still authenticates
    with pytest.raises(CorruptedFileError), vault.open_plain(REF, "data.parquet") as plain:
        plain.read()


def _swap(a: Path, b: Path) -> None:
    _writable(a.parent)
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    for path, content in ((a, b_bytes), (b, a_bytes)):
        path.chmod(0o600)
        path.write_bytes(content)


def test_swapped_key_files_fail_even_with_edited_file_ids(vault: Vault, inputs: dict[str, Path]) -> None:
    stored = vault.store(REF, inputs)
    data_key, manifest_key = (
        stored.path / "data.parquet.age.key.json",
        stored.path / "manifest.json.age.key.json",
    )
    _swap(data_key, manifest_key)
    with pytest.raises(CorruptedFileError, match="key file belongs to"):
        _read_all(vault, REF, "data.parquet")
    # an attacker who also fixes the recorded file id is stopped by the AEAD binding (associated data)
    for path, name in ((data_key, "data.parquet"), (manifest_key, "manifest.json")):
        entry = json.loads(path.read_text())
        path.write_text(json.dumps({**entry, "file_id": f"{REF}/{name}"}))
    with pytest.raises(WrongKekError, match="belongs to another file"):
        _read_all(vault, REF, "data.parquet")
    assert {p.path.name for p in vault.verify()} >= {data_key.name, manifest_key.name}  # the wrong files


def test_key_file_copied_from_another_snapshot_fails(vault: Vault, inputs: dict[str, Path]) -> None:
    first = vault.store(REF, inputs)
    second = vault.store(SnapshotRef("juki", REF.period, 2), inputs)
    for name in ("data.parquet.age", "data.parquet.age.key.json"):
        _writable(second.path)
        (second.path / name).chmod(0o600)
        (second.path / name).write_bytes((first.path / name).read_bytes())
    entry = json.loads((second.path / "data.parquet.age.key.json").read_text())
    (second.path / "data.parquet.age.key.json").write_text(
        json.dumps({**entry, "file_id": f"{second.ref}/data.parquet"})
    )
    with pytest.raises(WrongKekError):
        _read_all(vault, second.ref, "data.parquet")


def test_swapped_ciphertexts_fail(vault: Vault, inputs: dict[str, Path]) -> None:
    stored = vault.store(REF, inputs)
    _swap(stored.path / "data.parquet.age", stored.path / "manifest.json.age")
    with pytest.raises(CorruptedFileError):
        _read_all(vault, REF, "manifest.json")


def test_wrong_kek_is_a_clear_error_naming_the_key_file(vault: Vault, inputs: dict[str, Path]) -> None:
    stored = vault.store(REF, inputs)
    stranger = Vault(vault.root, AesGcmKek(bytes(32), "other"))
    with pytest.raises(WrongKekError, match="wrong key-encryption key") as info:
        stranger.decrypt_to_memfd(REF, "data.parquet")
    assert info.value.where is not None and info.value.where.file == stored.path / "data.parquet.age.key.json"
    assert all(p.kind == "unreadable" for p in stranger.verify())


def test_verify_reports_unexpected_missing_and_writable(vault: Vault, inputs: dict[str, Path]) -> None:
    stored = vault.store(REF, inputs)
    _writable(stored.path)
    (stored.path / "extra.txt").write_text("x")
    (stored.path / "manifest.json.age").unlink()
    (vault.root / "juki" / "notes").mkdir()
    found = {(p.path.name, p.kind) for p in vault.verify()}
    assert found == {
        ("extra.txt", "unexpected"),
        ("extra.txt", "mode"),
        ("manifest.json.age", "missing"),
        ("v1", "mode"),
        ("notes", "unexpected"),
    }


def test_verify_detects_a_checksum_mismatch(vault: Vault, inputs: dict[str, Path], kek: AesGcmKek) -> None:
    """A consistent re-encryption by someone holding the KEK still differs from the recorded plaintext hash."""
    stored = vault.store(REF, inputs)
    forged = inputs["manifest.json"].with_name("forged.json")
    forged.write_text("{}")
    other = Vault(vault.root.parent / "elsewhere", kek)
    other_stored = other.store(REF, {"manifest.json": forged})
    _writable(stored.path)
    for name in ("manifest.json.age", "manifest.json.age.key.json"):
        (stored.path / name).chmod(0o600)
        (stored.path / name).write_bytes((other_stored.path / name).read_bytes())
    assert [(p.path.name, p.kind) for p in vault.verify() if p.kind != "mode"] == [
        ("manifest.json.age", "checksum")
    ]


def _edit_key_file(path: Path, **fields: str) -> None:
    _writable(path.parent)
    path.chmod(0o600)
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    path.chmod(0o400)
    path.parent.chmod(0o500)


def test_an_edited_key_file_is_reported_as_the_key_file(vault: Vault, inputs: dict[str, Path]) -> None:
    """Issue 9, item 13: the finding names the file that is wrong, not the data file it opens."""
    stored = vault.store(REF, inputs)
    for name in ("data.parquet.age.key.json", "checksums.json.age.key.json"):
        entry = json.loads((stored.path / name).read_text())
        _edit_key_file(stored.path / name, wrapped=entry["wrapped"][::-1])
    assert sorted((p.path.name, p.kind) for p in vault.verify()) == [
        ("checksums.json.age.key.json", "unreadable"),
        ("data.parquet.age.key.json", "unreadable"),
    ]


def test_an_edited_kek_id_is_not_taken_for_an_interrupted_rotation(
    vault: Vault, inputs: dict[str, Path], kek: AesGcmKek
) -> None:
    stored = vault.store(REF, inputs)
    _edit_key_file(stored.path / "manifest.json.age.key.json", kek_id="0123456789abcdef")
    [problem] = vault.verify(pending_kek_id=AesGcmKek(os.urandom(32), "next").key_id)
    assert (problem.path.name, problem.kind) == ("manifest.json.age.key.json", "unreadable")
    assert "edited" in problem.en and "rotate-key" not in problem.en + problem.ja


def test_a_key_file_under_the_next_kek_is_an_interrupted_rotation(
    vault: Vault, inputs: dict[str, Path], kek: AesGcmKek, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault.store(REF, inputs)
    new = AesGcmKek(os.urandom(32), "next")
    real_replace = Vault._replace_key_file
    replaced: list[Path] = []

    def cut_after_the_first(self: Vault, key_path: Path, content: bytes) -> None:
        if replaced:
            raise KeyboardInterrupt
        real_replace(self, key_path, content)
        replaced.append(key_path)

    monkeypatch.setattr(Vault, "_replace_key_file", cut_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        vault.rotate_kek(new)
    monkeypatch.undo()
    before = Vault(vault.root, kek)
    [problem] = before.verify(pending_kek_id=new.key_id)
    assert (problem.path, problem.kind) == (replaced[0], "rotation") and "rotate-key" in problem.en
    assert [p.kind for p in before.verify()] == ["unreadable"]  # no rotation pending: a stranger's key file


def test_verify_compares_the_vault_with_the_catalog_both_ways(vault: Vault, inputs: dict[str, Path]) -> None:
    """Issue 9, item 13: catalog rows without their files, files without a row, contents not the same."""
    stored = vault.store(REF, inputs)
    data = stored.files["data.parquet"]
    right = {"data.parquet": CatalogRecord(data.plain_sha256, data.plain_bytes), "manifest.json": None}
    assert vault.verify({REF: right}) == []
    wrong = {**right, "data.parquet": CatalogRecord(hashlib.sha256(b"other").hexdigest(), data.plain_bytes)}
    assert [(p.path.name, p.kind) for p in vault.verify({REF: wrong})] == [("data.parquet.age", "catalog")]
    more = {**right, "seal.json": None}
    assert [(p.path.name, p.kind) for p in vault.verify({REF: more})] == [("seal.json.age", "missing")]
    never_stored = SnapshotRef("kaigo", REF.period, 1)
    second = vault.store(SnapshotRef("juki", REF.period, 2), inputs)
    found = vault.verify({REF: right, never_stored: right})
    assert [(p.path, p.kind) for p in found] == [
        (vault.root / "kaigo" / "2024-01-01" / "v1", "missing"),
        (second.path, "uncatalogued"),
    ]
    assert "kaigo is gone" in found[0].en


# -- key rotation ----------------------------------------------------------------------------------------


def _data_file_state(root: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in _all_files(root) if p.name.endswith(".age")}


def test_rotate_kek_rewraps_keys_only(vault: Vault, inputs: dict[str, Path], kek: AesGcmKek) -> None:
    vault.store(REF, inputs)
    vault.store(SnapshotRef("kokuho", dt.date(2023, 4, 1), 1), {"data.parquet": inputs["data.parquet"]})
    before = _data_file_state(vault.root)
    new = AesGcmKek(os.urandom(32), "new")
    assert vault.rotate_kek(new) == 3 + 2  # each stored file and each snapshot's checksums
    assert _data_file_state(vault.root) == before
    assert vault.verify() == []  # the same Vault object now uses the new KEK
    assert _read_all(Vault(vault.root, new), REF, "data.parquet") == inputs["data.parquet"].read_bytes()
    with pytest.raises(WrongKekError):
        _read_all(Vault(vault.root, kek), REF, "data.parquet")
    key_file = json.loads((vault.root / "juki/2024-01-01/v1/data.parquet.age.key.json").read_text())
    assert key_file["kek_id"] == new.key_id and key_file["file_id"] == "juki/2024-01-01/v1/data.parquet"


def test_interrupted_rotation_resumes(
    vault: Vault, inputs: dict[str, Path], kek: AesGcmKek, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault.store(REF, inputs)
    new = AesGcmKek(os.urandom(32), "new")
    real_replace = Vault._replace_key_file
    calls = []

    def crash_on_second(self: Vault, key_path: Path, content: bytes) -> None:
        calls.append(key_path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(self, key_path, content)

    monkeypatch.setattr(Vault, "_replace_key_file", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        vault.rotate_kek(new)
    monkeypatch.undo()
    assert stat.S_IMODE((vault.root / "juki/2024-01-01/v1").stat().st_mode) == 0o500
    assert Vault(vault.root, kek).rotate_kek(new) == 2  # one was already done
    assert Vault(vault.root, new).verify() == []


# -- failures while storing ------------------------------------------------------------------------------


class _FullDisk:
    """A file whose writes fail with ENOSPC once the shared budget is used up."""

    budget = 0

    def __init__(self, real: BinaryIO) -> None:
        self._real = real

    def write(self, data: bytes) -> int:
        if len(data) > _FullDisk.budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        _FullDisk.budget -= len(data)
        return self._real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()


@pytest.mark.parametrize("budget", [0, 100, 70_000, 300_000, 320_000])
def test_disk_full_leaves_nothing_and_keeps_earlier_snapshots(
    vault: Vault, inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    earlier = vault.store(SnapshotRef("juki", dt.date(2023, 1, 1), 1), inputs)
    real_create = vault_module._create_file
    monkeypatch.setattr(vault_module, "_create_file", lambda path: _FullDisk(real_create(path)))
    _FullDisk.budget = budget
    new_period = SnapshotRef("juki", dt.date(2024, 1, 1), 1)
    with pytest.raises(VaultFullError, match="disk full") as info:
        vault.store(new_period, inputs)
    assert "ディスク" in str(info.value)
    monkeypatch.undo()
    assert not (vault.root / "juki" / "2024-01-01").exists()
    assert _staging_entries(vault) == []
    assert vault.snapshots() == [earlier.ref]
    assert vault.verify() == []
    vault.store(new_period, inputs)  # with space again, the same write succeeds
    assert vault.verify() == []


def test_disk_full_in_fsync_is_also_reported(
    vault: Vault, inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(VaultFullError):
        vault.store(REF, inputs)
    monkeypatch.undo()
    assert not (vault.root / "juki").exists()
    assert _staging_entries(vault) == []


def test_missing_and_unreadable_inputs_leave_nothing(
    vault: Vault, inputs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(VaultError, match="not a file"):
        vault.store(REF, {**inputs, "extra.csv": tmp_path / "missing.csv"})

    def broken_read(self: Any, size: int = -1) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    real_open = Path.open

    def open_input(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        file = real_open(path, mode, *args, **kwargs)
        if path == inputs["manifest.json"]:
            return _BrokenReader(file)
        return file

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "open", open_input)
        with pytest.raises(OSError, match="Input/output error"):
            vault.store(REF, inputs)
    assert not vault.exists(REF)
    assert _staging_entries(vault) == []


class _BrokenReader:
    def __init__(self, real: IO[Any]) -> None:
        self._real = real

    def read(self, size: int = -1) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    def __enter__(self) -> _BrokenReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()


# -- staging and crash leftovers -------------------------------------------------------------------------


def test_staging_leftovers_are_reported_and_swept(vault: Vault, inputs: dict[str, Path]) -> None:
    vault.store(REF, inputs)
    leftover = vault.root / ".staging" / "deadbeef" / "juki" / "2025-01-01" / "v1"
    leftover.mkdir(parents=True)
    (leftover / "data.parquet.age").write_bytes(b"partial")
    (vault.root / ".staging" / "deadbeef.target").write_text("juki/2025-01-01/v1")
    assert {p.kind for p in vault.verify()} == {"staging"}
    assert vault.sweep_staging() == 2
    assert vault.verify() == []
    assert vault.snapshots() == [REF]


def test_sweep_finishes_a_snapshot_published_just_before_a_crash(
    vault: Vault, inputs: dict[str, Path]
) -> None:
    stored = vault.store(REF, inputs)
    stored.path.chmod(0o700)  # as if killed between the rename and the chmod
    (vault.root / ".staging" / "cafe.target").write_text(str(REF))
    assert {p.kind for p in vault.verify()} == {"staging", "mode"}
    vault.sweep_staging()
    assert vault.verify() == []


def test_store_sweeps_leftovers_of_dead_writers(vault: Vault, inputs: dict[str, Path]) -> None:
    (vault.root / ".staging" / "dead").mkdir(parents=True)
    vault.store(REF, inputs)
    assert _staging_entries(vault) == []


def test_live_writers_staging_is_not_reported(vault: Vault, inputs: dict[str, Path]) -> None:
    vault.store(REF, inputs)
    with vault._writer_lock():  # another writer is active: its staging dir is not a leftover
        (vault.root / ".staging" / "in-flight").mkdir()
        assert vault.verify() == []
        assert (vault.root / ".staging" / "in-flight").exists()
