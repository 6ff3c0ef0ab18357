from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from renkei.errors import SpecError
from renkei.spec import DatasetSpec, Role, bundled_specs, load_spec

GOOD = """\
dataset: juki
title: 住民基本台帳
owner: 市民課
encoding: cp932
columns:
  宛名番号: {role: person_key}
  世帯番号: {role: link_key, kind: household}
  氏名: {role: name}
  住所: {role: address}
  方書: {role: drop}
  生年月日: {role: birth_date}
  個人番号: {role: identifier, kind: my_number}
  性別: {role: keep}
  異動日: {role: date, coarsen: month}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_of_the_issue_loads(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.columns["世帯番号"].role is Role.LINK_KEY
    assert spec.output_schema.names == [
        "pid",
        "household_id",
        "住所",
        "住所_ward",
        "住所_town",
        "住所_chome",
        "age",
        "school_age",
        "性別",
        "異動日",
    ]
    assert spec.output_schema.field("異動日").type == pa.date32()


@pytest.mark.parametrize("path", bundled_specs().values(), ids=lambda p: p.stem)
def test_every_bundled_spec_is_valid(path: Path) -> None:
    spec = load_spec(path)
    assert spec.dataset == path.stem
    deleted = {n for n, c in spec.columns.items() if c.role in {Role.NAME, Role.IDENTIFIER, Role.BIRTH_DATE}}
    assert not deleted & set(spec.output_schema.names)


def test_spec_hash_ignores_comments_and_key_order(tmp_path: Path) -> None:
    a = load_spec(write(tmp_path, GOOD))
    reordered = GOOD.replace(
        "title: 住民基本台帳\nowner: 市民課", "owner: 市民課  # 所管課\ntitle: 住民基本台帳"
    )
    b = load_spec(write(tmp_path, reordered))
    c = load_spec(write(tmp_path, GOOD.replace("coarsen: month", "coarsen: year")))
    assert a.spec_hash == b.spec_hash != c.spec_hash


@pytest.mark.parametrize(
    ("old", "new", "line", "key"),
    [
        ("{role: drop}", "{role: dorp}", 10, "columns.方書.role"),
        (
            "{role: identifier, kind: my_number}",
            "{role: identifier, kind: shoe_size}",
            12,
            "columns.個人番号",
        ),
        ("{role: link_key, kind: household}", "{role: link_key}", 7, "columns.世帯番号"),
        ("{role: keep}", "{role: keep, coarsen: month}", 13, "columns.性別"),
        ("owner: 市民課\n", "", None, "owner"),
        ("encoding: cp932", "encoding: euc-jp", 4, "encoding"),
        ("dataset: juki", "dataset: Juki Data", 1, "dataset"),
        ("title: 住民基本台帳\n", "title: 住民基本台帳\ncolour: blue\n", 3, "colour"),
    ],
)
def test_invalid_specs_name_the_key_and_line(
    tmp_path: Path, old: str, new: str, line: int | None, key: str
) -> None:
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    where = info.value.where
    assert where is not None and where.file == path
    assert where.key is not None and where.key.startswith(key)
    if line is not None:
        assert where.line == line
    assert "spec.yaml" in str(info.value)


def test_clashing_output_names_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace("  性別: {role: keep}", "  pid: {role: keep}")
    with pytest.raises(SpecError, match="clashes"):
        load_spec(write(tmp_path, text))


def test_two_birth_dates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="birth_date"):
        load_spec(write(tmp_path, GOOD + "  受給者生年月日: {role: birth_date}\n"))


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, GOOD.replace("性別: {role: keep}", "性別: {role: keep")))
    assert info.value.where is not None and info.value.where.line is not None


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_second_person_key_links_in_the_person_domain() -> None:
    spec = DatasetSpec.model_validate(
        {
            "dataset": "x",
            "title": "x",
            "owner": "x",
            "encoding": "utf-8",
            "columns": {"a": {"role": "person_key"}, "b": {"role": "person_key", "output": "guardian_pid"}},
        }
    )
    assert [c.key_domain for c in spec.columns.values()] == ["person", "person"]
    assert spec.output_schema.names == ["pid", "guardian_pid"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        # Found by tests/fuzz. An alias bomb took minutes and all its memory to expand; aliases are refused.
        ("a: &a [x, x, x]\nb: &b [*a, *a, *a]\ndataset: juki\n", "aliases"),
        ("dataset: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),  # was a RecursionError
        ("dataset: " + "9" * 5000 + "\n", "invalid YAML value"),  # was a ValueError (int()'s digit limit)
    ],
)
def test_hostile_yaml_is_a_spec_error(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path)
    assert info.value.where is not None and info.value.where.file == path
