"""Record keys for the cell key method: a secret, stable number per person (and per household).

A record key is the first 32 bits of AES-256 applied to the 16 bytes of the pseudonymous ID, under a key held
only by the hub (``record_key.key``, 0600). AES on one block is a pseudorandom permutation, so keys are
uniform and independent of anything a user can see; the same person gets the same key in every table and
every period, which is what makes the noise of a cell consistent.

Keys are computed once per snapshot, at import (:func:`write_record_keys`), and stored in the vault beside
the snapshot's data as ``record_keys.parquet`` (encrypted like it, in its checksums, expected by ``vault
verify``). A workspace reads them through its gate under the decision that opened the snapshot and hands them
to the sandbox only as a control table no user query can read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from renkei.errors import RenkeiError
from renkei.files import read_private, write_private

RECORD_KEY_FILE = "record_key.key"
RECORD_KEYS_FILE = "record_keys.parquet"  # a snapshot's stored keys, beside its data.parquet in the vault
KEY_BYTES = 32
ID_HEX = 32  # the city's pseudonymous IDs are 128 bits as 32 hex characters
ID_COLUMNS = ("pid", "household_id")  # pseudonymous IDs that get a record key (persons, households)
KEYS_SCHEMA = pa.schema([("pid", pa.string()), ("rkey", pa.uint32())])


class RecordKeyError(RenkeiError):
    """Record keys cannot be made: the key file is malformed, or the values to key are not pseudonymous IDs."""


def create_record_key(home: Path) -> Path:
    """Create ``<home>/record_key.key``; never overwrite one (every published perturbation depends on it)."""
    return write_private(
        home / RECORD_KEY_FILE,
        os.urandom(KEY_BYTES),
        ja="レコードキー用の鍵は既に存在します。上書きすると公表済みの表と撹乱が一致しなくなるため中止しました",
        en="record key file exists; refusing to overwrite it (published tables would no longer agree)",
    )


def load_record_key(home: Path) -> bytes:
    key = read_private(
        home / RECORD_KEY_FILE,
        "レコードキー用の鍵",
        "record key file",
        create_ja="`renkei hub init` で作成してください",
        create_en="run `renkei hub init`",
    )
    if len(key) != KEY_BYTES:
        raise RecordKeyError(
            "レコードキー用の鍵の長さが不正です", f"record key file must hold {KEY_BYTES} bytes", None
        )
    return key


def record_keys(key: bytes, ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The uint32 record key of each pseudonymous ID (nulls stay null)."""
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    valid = ids.drop_null().cast(pa.string())
    raw = _unhex(valid)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 (a PRF on single blocks)
    blocks = np.frombuffer(encryptor.update(raw) + encryptor.finalize(), dtype=">u4").reshape(-1, 4)
    keys = pa.array(blocks[:, 0].astype(np.uint32), type=pa.uint32())
    if ids.null_count == 0:
        return keys
    positions = pc.cumulative_sum(pc.cast(pc.is_valid(ids), pa.int64())).to_numpy() - 1
    return pc.if_else(pc.is_valid(ids), pc.take(keys, pa.array(np.maximum(positions, 0))), None)


def write_record_keys(key: bytes, data: Path, target: Path) -> Path:
    """Write ``target``: (pid, rkey) once for every distinct person and household ID of the Parquet file
    ``data`` (a snapshot being imported); returns ``target``. The file is new and private (0600)."""
    columns = [c for c in ID_COLUMNS if c in pq.read_schema(data).names]
    table = pq.read_table(data, columns=columns)
    ids = [table.column(c).cast(pa.string()) for c in columns]
    unique = pc.unique(pa.chunked_array([c for i in ids for c in i.chunks], pa.string())).drop_null()
    keys = pa.table([unique, record_keys(key, unique)], schema=KEYS_SCHEMA)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        # Random IDs do not compress into a dictionary; zstd still halves their hex digits.
        pq.write_table(keys, out, compression="zstd", use_dictionary=False)
    return target


def _unhex(ids: pa.Array) -> bytes:
    """The IDs' bytes, decoded from the string buffer in one vectorized pass (15M IDs in well under 1 s)."""
    if not len(ids):
        return b""
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + len(ids) + 1]
    chars = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    digits = chars - np.uint8(ord("0"))  # uint8 arithmetic: anything below '0' wraps above 15
    letters = digits > 9
    digits -= letters.view(np.uint8) * np.uint8(ord("a") - ord("0") - 10)
    hex_digits = (digits < 16) & (letters <= (digits > 9))  # a letter must land on 10..15 ('a'..'f')
    if not (np.all(np.diff(offsets) == ID_HEX) and np.all(hex_digits)):
        raise RecordKeyError(
            "仮名IDの形式が不正です（32桁の16進数）",
            "pseudonymous IDs must be 32 lower-case hex digits",
            None,
        )
    pairs = digits.reshape(-1, 2)
    return ((pairs[:, 0] << 4) | pairs[:, 1]).astype(np.uint8).tobytes()
