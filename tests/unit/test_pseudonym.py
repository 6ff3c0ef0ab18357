from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.errors import KeyFileError
from renkei.sending.pseudonym import KEY_FILE, Pseudonymizer, create_key, load_key, normalize, normalize_one

KEY = bytes(range(32))


def test_create_key_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = create_key(tmp_path / "home")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_key(tmp_path / "home")) == 32
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        create_key(tmp_path / "home")
    assert path.read_bytes() == before


def test_missing_and_permissive_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="sender init"):
        load_key(tmp_path)
    path = create_key(tmp_path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(tmp_path)


def test_ids_are_keyed_stable_and_domain_separated() -> None:
    p = Pseudonymizer(KEY)
    values = pa.array(["0000000001", " 0000000001 ", "０００００００００１", "0000000002", "", None])
    person = p.ids(values, "person").ids.to_pylist()
    assert person[0] == person[1] == person[2] != person[3]
    assert person[4] is None and person[5] is None
    assert p.ids(values, "person").blank == 2
    household = p.ids(values, "link:household").ids.to_pylist()
    assert household[0] != person[0]
    other_key = Pseudonymizer(bytes(32)).ids(values, "person").ids.to_pylist()
    assert other_key[0] != person[0]
    assert len(person[0]) == 32 and int(person[0], 16) >= 0
    # never the unkeyed hash of the input
    assert person[0] not in hashlib.sha256(b"0000000001").hexdigest()


def test_id_is_hmac_sha256_of_the_domain_subkey() -> None:
    p = Pseudonymizer(KEY)
    expected = hmac.new(p.subkey("person"), b"0000000001", hashlib.sha256).hexdigest()[:32]
    assert p.ids(pa.array(["0000000001"]), "person").ids[0].as_py() == expected


@given(st.lists(st.text(max_size=20), min_size=1, max_size=30))
def test_vectorized_ids_equal_the_hmac_module(values: list[str]) -> None:
    p = Pseudonymizer(KEY)
    got = p.ids(pa.array(values), "person").ids.to_pylist()
    want = [p.reference_id("person", v) if normalize_one(v) else None for v in values]
    assert got == want


@given(st.text(max_size=30))
def test_vectorized_and_scalar_normalization_agree(value: str) -> None:
    scalar = normalize_one(value)
    assert normalize(pa.array([value])).to_pylist() == [scalar or None]


def test_key_file_name() -> None:
    assert KEY_FILE == "pseudonym.key"


@given(
    st.lists(st.sampled_from(["0001", " 0001", "０００１", "0002", "", "  ", "山田"]) | st.text(max_size=8))
)
def test_repeated_keys_get_the_reference_id_on_every_row(values: list[str]) -> None:
    p = Pseudonymizer(KEY)
    result = p.ids(pa.array(values, pa.string()), "link:household")
    want = [p.reference_id("link:household", v) if normalize_one(v) else None for v in values]
    assert result.ids.to_pylist() == want
    assert result.blank == want.count(None)
