"""The risk report and the link rate, against hand-computed answers on a 12-row fixture and against plain
DuckDB group-bys written here, independently of renkei.hub.risk."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from renkei import manifest
from renkei.hub import assessment
from renkei.hub.risk import RiskThresholds, combinations, link_counts, risk_report

# (pid, household_id, age, sex, ward): classes on (age, sex, ward) are 30M北 ×3, 30F北 ×2, 40M南 ×2 and five
# uniques (40F南, 50F北, 50F南, 60M北, 30M南).
ROWS = [
    ("p1", "h1", 30, "M", "北区"),
    ("p2", "h1", 30, "M", "北区"),
    ("p3", "h1", 30, "M", "北区"),
    ("p4", "h2", 30, "F", "北区"),
    ("p5", "h2", 30, "F", "北区"),
    ("p6", "h3", 40, "M", "南区"),
    ("p7", "h4", 40, "M", "南区"),
    ("p8", "h5", 40, "F", "南区"),
    ("p9", "h6", 50, "F", "北区"),
    ("p10", "h7", 50, "F", "南区"),
    ("p11", "h8", 60, "M", "北区"),
    ("p12", None, 30, "M", "南区"),
]
QIS = ("age", "性別", "住所_ward")
THRESHOLDS = RiskThresholds(k=3, max_records_at_risk=0.5, max_average_risk=0.5, max_combination_size=2)


def write(path: Path, rows: list[tuple[object, ...]]) -> Path:
    names = ["pid", "household_id", "age", "性別", "住所_ward"]
    columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture
def fixture(tmp_path: Path) -> Path:
    return write(tmp_path / "data.parquet", ROWS)


def by_columns(report: dict[str, object], *columns: str) -> dict[str, object]:
    found = [c for c in report["combinations"] if tuple(c["columns"]) == columns]  # type: ignore[attr-defined, index]
    assert len(found) == 1
    return found[0]  # type: ignore[no-any-return]


def test_the_full_set_by_hand(fixture: Path) -> None:
    report = risk_report(fixture, QIS, THRESHOLDS)
    overall = report["overall"]
    assert report["records"] == 12
    assert overall["columns"] == list(QIS)
    assert overall["classes"] == 8
    assert overall["sizes"] == {"1": 5, "2": 2, ">=3": 1}
    assert overall["sample_uniques"] == 5
    assert overall["sample_unique_share"] == pytest.approx(5 / 12)
    assert overall["highest_risk"] == 1.0
    assert overall["average_risk"] == pytest.approx(8 / 12)
    assert overall["expected_reidentifications"] == 8
    assert overall["records_at_risk"] == pytest.approx(9 / 12)  # 5 uniques and the two classes of 2
    assert report["flagged"] is True


def test_each_combination_by_hand_and_the_one_that_contributes_most(fixture: Path) -> None:
    report = risk_report(fixture, QIS, THRESHOLDS)
    expected = {  # columns: (classes, sample uniques, minimal sample uniques)
        ("age",): (4, 1, 1),  # 60 alone
        ("性別",): (2, 0, 0),
        ("住所_ward",): (2, 0, 0),
        ("age", "性別"): (6, 2, 1),  # 40F (60M is unique on age already)
        ("age", "住所_ward"): (6, 4, 3),  # 30南, 50北, 50南 (and 60北, unique on age)
        ("性別", "住所_ward"): (4, 0, 0),
        ("age", "性別", "住所_ward"): (8, 5, 0),  # each of its uniques is unique on a pair already
    }
    got = {
        tuple(c["columns"]): (c["classes"], c["sample_uniques"], c["minimal_uniques"])
        for c in report["combinations"]
    }
    assert got == expected
    assert report["top_combination"] == ["age", "住所_ward"]


def independent(path: Path, columns: tuple[str, ...], k: int) -> dict[str, object]:
    """The same figures with nothing but DuckDB group-bys, written here."""
    keys = ", ".join(f'"{c}"' for c in columns)
    sizes = [
        r[0] for r in duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}') GROUP BY {keys}").fetchall()
    ]
    records = sum(sizes)
    return {
        "classes": len(sizes),
        "sample_uniques": sizes.count(1),
        "highest_risk": 1 / min(sizes),
        "average_risk": len(sizes) / records,
        "records_at_risk": sum(s for s in sizes if s < k) / records,
        "sizes": {**{str(j): sizes.count(j) for j in range(1, k)}, f">={k}": sum(s >= k for s in sizes)},
    }


def test_every_combination_agrees_with_plain_group_bys(fixture: Path) -> None:
    thresholds = RiskThresholds(k=4, max_combination_size=3)
    report = risk_report(fixture, QIS, thresholds)
    assert len(report["combinations"]) == 7
    for entry in report["combinations"]:
        want = independent(fixture, tuple(entry["columns"]), 4)
        assert {key: entry[key] for key in want} == want  # the same divisions, so exactly equal


def test_household_size_is_derived_from_household_id(fixture: Path) -> None:
    report = risk_report(fixture, ("household_size",), THRESHOLDS)
    overall = report["overall"]
    # sizes 3 (h1: 3 rows), 2 (h2: 2 rows), 1 (h3…h8: 6 rows), and a null household (1 row)
    assert (overall["classes"], overall["sample_uniques"]) == (4, 1)
    assert overall["sizes"] == {"1": 1, "2": 1, ">=3": 2}


def test_combinations_stop_at_the_bound_and_end_with_the_full_set() -> None:
    assert combinations(("a", "b", "c"), 1) == [("a",), ("b",), ("c",), ("a", "b", "c")]
    assert combinations(("a", "b"), 3) == [("a",), ("b",), ("a", "b")]
    qis = tuple("abcdef")
    assert len(combinations(qis, 3)) == sum(len(list(itertools.combinations(qis, n))) for n in (1, 2, 3)) + 1


def test_a_snapshot_below_the_thresholds_is_not_flagged(tmp_path: Path) -> None:
    rows = [(f"p{i}", None, 30 + i % 2, "M", "北区") for i in range(20)]  # two classes of ten
    report = risk_report(write(tmp_path / "safe.parquet", rows), QIS, THRESHOLDS)
    assert report["overall"]["records_at_risk"] == 0.0
    assert report["overall"]["average_risk"] == pytest.approx(2 / 20)
    assert report["flagged"] is False
    assert report["top_combination"] == []


def test_the_link_rate_counts_rows_whose_pid_is_in_the_register(tmp_path: Path) -> None:
    register = write(tmp_path / "juki.parquet", [(f"p{i}", None, 1, "M", "x") for i in range(1, 11)])
    rows = [(pid, None, 1, "M", "x") for pid in ("p1", "p2", "p3", "p3", "p99", None)]
    assert link_counts(write(tmp_path / "x.parquet", rows), register) == (6, 4)  # p3 twice, p99 and null not


def test_the_catalog_reads_the_figures_without_loading_duckdb_or_pyarrow() -> None:
    """The pages (and a dataset's detail) import renkei.hub.assessment; only an import computes, lazily."""
    code = (
        "import sys, renkei.hub.services.catalog, renkei.hub.access.applications\n"
        "print(sorted({'duckdb', 'pyarrow'} & set(sys.modules)))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
    assert assessment.DATA_FILE == manifest.DATA_FILE
