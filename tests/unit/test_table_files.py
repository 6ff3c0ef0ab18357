"""Export files: Excel-readable CSV and XLSX, with formula cells neutralized."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import uuid
import zipfile

import pytest

from renkei.hub.tables.files import as_cell, neutralize, to_csv, to_xlsx

HOSTILE = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_formula_cells_are_neutralized_and_numbers_kept() -> None:
    for text in HOSTILE:
        assert str(neutralize(text)).startswith("'")
    assert neutralize(-5) == -5
    assert neutralize("中央区") == "中央区"


def test_csv_is_utf8_with_bom_and_escapes_formulas() -> None:
    data = to_csv(["区", "人数"], [["中央区", 12], ["=cmd", None]], notes=["X は秘匿"])
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["区", "人数"]
    assert rows[1] == ["中央区", "12"]
    assert rows[2] == ["'=cmd", ""]
    assert rows[3] == ["# X は秘匿"]


def test_xlsx_has_table_and_rules_sheets_and_no_live_formula() -> None:
    data = to_xlsx(["区", "人数"], [["=1+1", 3]], {"method": "perturbation", "threshold": 10}, notes=["注"])
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        names = book.namelist()
        sheets = [n for n in names if n.startswith("xl/worksheets/sheet")]
        assert len(sheets) == 2
        shared = book.read("xl/sharedStrings.xml").decode()
        first = book.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in first  # no formula element anywhere in the table
    assert "&apos;=1+1" in shared or "'=1+1" in shared
    assert "規則" in book_names(data) and "集計表" in book_names(data)
    assert "perturbation" in shared


def book_names(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return book.read("xl/workbook.xml").decode()


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, None),
        (7, 7),
        ("港区", "港区"),
        (dt.date(2024, 4, 1), "2024-04-01"),
        (dt.datetime(2024, 4, 1, 9, 30), "2024-04-01T09:30:00"),
        (decimal.Decimal("12.00"), 12),
        (decimal.Decimal("1.5"), 1.5),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ],
)
def test_duckdb_values_become_cells(value: object, cell: object) -> None:
    assert as_cell(value) == cell and type(as_cell(value)) is type(cell)
