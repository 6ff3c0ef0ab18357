"""The city's own pseudonymous IDs (本市独自の識別記号): keyed HMAC-SHA-256 of a normalized key.

This module is the only place that handles the pseudonymization key. The key exists only on the sending side
(共通基盤), in ``<home>/pseudonym.key`` (32 random bytes, mode 0600), created once by ``renkei sender init``.

Rules (documented in docs/rules/pseudonyms.md):
- input normalization: Unicode NFKC, then leading/trailing whitespace trimmed; blank → null (counted).
  Leading zeros are significant: ``0001`` and ``1`` are different keys.
- one subkey per domain, derived with HKDF-SHA-256 from the master key: every person key (宛名番号,
  受給者宛名番号) shares the ``person`` domain so that pids link across datasets and years; each link key kind (household,
  case …) has its own domain, so a 世帯番号 equal to some 宛名番号 does not give the same ID.
- ID = first 128 bits of HMAC-SHA-256(subkey, UTF-8 bytes), as 32 lower-case hex characters.

HMAC is RFC 2104 over SHA-256. Python's ``hmac`` module is the reference; for whole columns the same
construction runs vectorized in DuckDB (its ``sha256``), roughly 3–6× faster than a per-row Python loop
(docs/benchmarks.md), once per distinct key of a column (then mapped back to the rows; row by row for a
domain whose keys proved nearly all distinct, such as 宛名番号). Every column computed
this way is cross-checked against ``hmac`` on sample values, and the run stops if they ever differ (fail
closed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from renkei.config import PSEUDONYM_KEY_FILE, SENDER, check_home, claim_home
from renkei.errors import KeyFileError, Location
from renkei.files import read_private, write_private

KEY_FILE = PSEUDONYM_KEY_FILE
KEY_BYTES = 32
ID_HEX_CHARS = 32
_BLOCK = 64  # SHA-256 block size, for the RFC 2104 pads
# A batch with more distinct keys than this share of its rows (宛名番号) makes the next batches of the domain
# be keyed row by row, without the dictionary (same IDs; the dictionary would not pay).
_UNIQUE_SHARE = 0.9
_HMAC_SQL = "SELECT left(sha256($opad || unhex(sha256($ipad || encode(v)))), 32) AS id FROM values_in"


def create_key(home: Path) -> Path:
    """Create the sending side's key file; never overwrite an existing one, never in a hub's home."""
    claim_home(home, SENDER)
    return write_private(
        home / KEY_FILE,
        secrets.token_bytes(KEY_BYTES),
        ja="仮名化鍵は既に存在します。上書きすると過去の pid と連結できなくなるため、作成を中止しました",
        en="pseudonym key already exists; refusing to overwrite it (pids would no longer link)",
    )


def load_key(home: Path) -> bytes:
    """Read the key; refuse a missing, malformed or group/world-readable key file, or a hub's home."""
    path = check_home(home, SENDER) / KEY_FILE
    key = read_private(
        path,
        "仮名化鍵",
        "pseudonym key",
        create_ja="`renkei sender init` で作成してください",
        create_en="run `renkei sender init`",
    )
    if len(key) != KEY_BYTES:
        raise KeyFileError(
            "仮名化鍵の形式が正しくありません", "pseudonym key has the wrong length", Location(path)
        )
    return key


@dataclass(frozen=True, slots=True)
class PseudonymResult:
    ids: pa.Array  # string, null where the key was blank
    blank: int


class Pseudonymizer:
    """Computes domain-separated pseudonymous IDs for whole columns."""

    def __init__(self, key: bytes) -> None:
        self._master = key
        self._subkeys: dict[str, bytes] = {}
        self._unique: dict[str, bool] = {}  # per domain: were the last batch's keys nearly all distinct?
        self._con = duckdb.connect(config={"threads": 2})

    def subkey(self, domain: str) -> bytes:
        if domain not in self._subkeys:
            hkdf = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=f"renkei/pseudonym/v1/{domain}".encode()
            )
            self._subkeys[domain] = hkdf.derive(self._master)
        return self._subkeys[domain]

    def reference_id(self, domain: str, value: str) -> str:
        """One ID by Python's hmac module: the reference the vectorized path is checked against."""
        digest = hmac.new(self.subkey(domain), normalize_one(value).encode(), hashlib.sha256).hexdigest()
        return digest[:ID_HEX_CHARS]

    def ids(self, values: pa.Array | pa.ChunkedArray, domain: str) -> PseudonymResult:
        """Each distinct key is normalized and keyed once (a household's people share a 世帯番号), then the
        IDs are mapped back to the rows; the distinct keys are cross-checked against ``hmac``."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        values = values.cast(pa.string())
        if self._unique.get(domain, False):
            # the last batch of this domain had (almost) no repeated key (宛名番号): encoding would not pay
            distinct = normalize(values)
            ids = self._hmac_column(distinct, self.subkey(domain))
            self._cross_check(distinct, ids, domain)
            return PseudonymResult(ids, ids.null_count)
        codes = pc.dictionary_encode(values)
        self._unique[domain] = len(codes.dictionary) > _UNIQUE_SHARE * len(values)
        distinct = normalize(codes.dictionary)
        distinct_ids = self._hmac_column(distinct, self.subkey(domain))
        self._cross_check(distinct, distinct_ids, domain)
        ids = pc.take(distinct_ids, codes.indices)
        return PseudonymResult(ids, ids.null_count)

    def _hmac_column(self, normalized: pa.Array, subkey: bytes) -> pa.Array:
        padded = subkey.ljust(_BLOCK, b"\0")
        ipad = bytes(b ^ 0x36 for b in padded)
        opad = bytes(b ^ 0x5C for b in padded)
        self._con.register("values_in", pa.table({"v": normalized}))
        try:
            result = self._con.sql(_HMAC_SQL, params={"ipad": ipad, "opad": opad}).to_arrow_table()
        finally:
            self._con.unregister("values_in")
        return result.column("id").combine_chunks()

    def _cross_check(self, normalized: pa.Array, ids: pa.Array, domain: str) -> None:
        if len(ids) != len(normalized):
            raise RuntimeError("pseudonym column length mismatch")
        for i in _sample_positions(len(normalized)):
            value = normalized[i].as_py()
            expected = None if value is None else self.reference_id(domain, value)
            if ids[i].as_py() != expected:
                raise RuntimeError("vectorized HMAC disagrees with the hmac module; refusing to continue")


def normalize_one(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def normalize(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC, trimmed; blank → null. Vectorized twin of :func:`normalize_one`."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    # ASCII text is its own NFKC form (every ASCII character is NFKC-stable), and keys are mostly ASCII digits
    ascii_only = pc.all(pc.string_is_ascii(values)).as_py() is not False
    trimmed = pc.utf8_trim_whitespace(values if ascii_only else pc.utf8_normalize(values, "NFKC"))
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _sample_positions(n: int) -> list[int]:
    return sorted({0, n // 2, n - 1}) if n else []
