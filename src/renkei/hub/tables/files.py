"""Released tables as files city staff open in Excel: CSV (UTF-8 with BOM) and XLSX with a rules sheet.

Only what disclosure control released is written: the display values, with suppressed cells as their mark.
Every text cell that a spreadsheet would read as a formula (``= + - @``, tab, carriage return) is neutralized
with a leading apostrophe (OWASP CSV injection).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import xlsxwriter

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"

Cell = str | int | float | None


def as_cell(value: object) -> Cell:
    """A DuckDB value as a cell of a shown table: dates as ISO text (``2024-04-01``), decimals as numbers."""
    if value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def neutralize(value: Cell) -> Cell:
    """A text cell that cannot run as a formula; numbers pass unchanged (a negative number is not text)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Cell]], notes: Sequence[str] = ()) -> bytes:
    """CSV in UTF-8 with a BOM (so Excel reads Japanese), CRLF line ends, notes as trailing comment rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralize(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else neutralize(v) for v in row])
    for note in notes:
        writer.writerow([neutralize("# " + note)])
    return (BOM + out.getvalue()).encode("utf-8")


def to_xlsx(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    record: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> bytes:
    """A workbook: sheet 集計表 (the table) and sheet 規則 (the rules it passed, and the release record)."""
    buffer = io.BytesIO()
    # strings_to_formulas=False: xlsxwriter would otherwise turn "=…" strings into live formulas.
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    with xlsxwriter.Workbook(buffer, options) as book:
        bold = book.add_format({"bold": True})
        table = book.add_worksheet("集計表")
        table.write_row(0, 0, [neutralize(h) for h in header], bold)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                _write(table, r, c, neutralize(value))
        table.freeze_panes(1, 0)
        rules = book.add_worksheet("規則")
        rules.write_row(0, 0, ["項目 (item)", "内容 (value)"], bold)
        line = 1
        for note in notes:
            rules.write_string(line, 0, "注記 (note)")
            rules.write_string(line, 1, str(neutralize(note)))
            line += 1
        for key, value in record.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
            rules.write_string(line, 0, str(neutralize(key)))
            rules.write_string(line, 1, str(neutralize(text)))
            line += 1
    return buffer.getvalue()


def _write(sheet: Any, row: int, col: int, value: Cell) -> None:
    if value is None:
        sheet.write_blank(row, col, None)
    elif isinstance(value, bool | str):
        sheet.write_string(row, col, str(value))
    else:
        sheet.write_number(row, col, value)
