"""The spec's optional quasi-identifiers: output columns (or household_size), checked when the spec loads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from renkei.errors import SpecError
from renkei.spec import bundled_specs, load_spec
from tests.unit.test_spec import GOOD, write


def test_declared_quasi_identifiers_load(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD + "quasi_identifiers: [age, 性別, 住所_ward, household_size]\n"))
    assert spec.quasi_identifiers == ("age", "性別", "住所_ward", "household_size")


@pytest.mark.parametrize(
    ("listed", "why"),
    [
        ("[年収]", "not an output column"),
        ("[氏名]", "not an output column"),  # deleted on the sending side
        ("[pid]", "pseudonymous key"),
        ("[household_id]", "pseudonymous key"),
        ("[age, age]", "listed twice"),
    ],
)
def test_a_quasi_identifier_must_be_an_output_column_once(tmp_path: Path, listed: str, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        load_spec(write(tmp_path, GOOD + f"quasi_identifiers: {listed}\n"))


def test_household_size_needs_a_household_key(tmp_path: Path) -> None:
    text = GOOD.replace("  世帯番号: {role: link_key, kind: household}\n", "")
    with pytest.raises(SpecError, match="household_size needs"):
        load_spec(write(tmp_path, text + "quasi_identifiers: [household_size]\n"))


def test_a_spec_without_them_keeps_its_hash_and_declaring_them_changes_it(tmp_path: Path) -> None:
    plain = load_spec(write(tmp_path, GOOD))
    before = {k: v for k, v in plain.model_dump(mode="json").items() if k != "quasi_identifiers"}  # as it was
    canonical = json.dumps(before, ensure_ascii=False, sort_keys=True).encode()
    assert plain.spec_hash == hashlib.sha256(canonical).hexdigest()
    declared = load_spec(write(tmp_path, GOOD + "quasi_identifiers: [age]\n"))
    assert plain.spec_hash != declared.spec_hash
    assert plain.spec_hash == load_spec(write(tmp_path, GOOD + "quasi_identifiers: []\n")).spec_hash


@pytest.mark.parametrize("path", bundled_specs().values(), ids=lambda p: p.stem)
def test_every_bundled_spec_declares_age_and_ward(path: Path) -> None:
    qis = load_spec(path).quasi_identifiers
    assert {"age", "住所_ward", "住所_town"} <= set(qis)
