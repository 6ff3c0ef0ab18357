"""Record keys: AES-256 of the ID's 16 bytes, first 32 bits; stable, secret-keyed, strict about IDs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from renkei.errors import RenkeiError
from renkei.hub.disclosure.record_keys import (
    RecordKeyError,
    create_record_key,
    load_record_key,
    record_keys,
    write_record_keys,
)

KEY = bytes(range(32))


def _reference(key: bytes, pid: str) -> int:
    block = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(bytes.fromhex(pid))
    return int.from_bytes(block[:4], "big")


def test_keys_match_the_aes_reference_and_keep_nulls() -> None:
    pids = [os.urandom(16).hex() for _ in range(50)]
    got = record_keys(KEY, pa.chunked_array([pa.array(pids[:20]), pa.array([None, *pids[20:]])]))
    assert got.to_pylist() == [_reference(KEY, p) for p in pids[:20]] + [None] + [
        _reference(KEY, p) for p in pids[20:]
    ]


def test_keys_depend_on_the_hub_key() -> None:
    pids = pa.array([os.urandom(16).hex() for _ in range(100)])
    assert record_keys(KEY, pids).to_pylist() != record_keys(bytes(32), pids).to_pylist()


@pytest.mark.parametrize("bad", ["0" * 31, "0" * 33, "A" * 32, "g" * 32, "`" * 32, ":" * 32, "/" * 32])
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(RecordKeyError):
        record_keys(KEY, pa.array(["0" * 32, bad]))


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = create_record_key(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_record_key(tmp_path)) == 32
    with pytest.raises(RenkeiError):
        create_record_key(tmp_path)
    path.chmod(0o644)
    with pytest.raises(RenkeiError):
        load_record_key(tmp_path)


def test_a_snapshots_stored_keys_are_each_person_and_household_once(tmp_path: Path) -> None:
    people = [os.urandom(16).hex() for _ in range(30)]
    households = [os.urandom(16).hex() for _ in range(5)]
    rows = pa.table(
        {
            "pid": pa.array([*people, *people[:10], None]),  # a person may appear twice (two rows)
            "household_id": pa.array([households[i % 5] for i in range(40)] + [None]),
            "age": pa.array(range(41)),
        }
    )
    pq.write_table(rows, tmp_path / "data.parquet")
    target = write_record_keys(KEY, tmp_path / "data.parquet", tmp_path / "keys.parquet")
    stored = pq.read_table(target)
    assert stored.schema.names == ["pid", "rkey"] and stored.schema.field("rkey").type == pa.uint32()
    assert sorted(stored.column("pid").to_pylist()) == sorted(people + households)
    assert dict(zip(*(stored.column(c).to_pylist() for c in ("pid", "rkey")), strict=True)) == {
        i: _reference(KEY, i) for i in people + households
    }
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):  # never over an existing file
        write_record_keys(KEY, tmp_path / "data.parquet", target)


def test_a_snapshot_without_ids_stores_an_empty_key_table(tmp_path: Path) -> None:
    pq.write_table(pa.table({"age": pa.array([1, 2])}), tmp_path / "data.parquet")
    stored = pq.read_table(write_record_keys(KEY, tmp_path / "data.parquet", tmp_path / "keys.parquet"))
    assert stored.num_rows == 0 and stored.schema.names == ["pid", "rkey"]
