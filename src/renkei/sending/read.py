"""CSV readers for core-system exports: CP932 or UTF-8 (BOM accepted), every column as text, streamed.

CP932 here is Microsoft's code page (Python's ``cp932``), not strict Shift_JIS: NEC and IBM extensions
such as ①, ㈱ and 髙 must survive. Every column is read as a string so that leading zeros of 宛名番号 survive; typing
happens in the rules. The file is read in blocks, so peak memory depends on the block size, not the file size.

The fast path is pyarrow's streaming reader. Its errors do not say where the problem is, so when it fails the
file is scanned again in Python to find the line and column (slow, but only on bad input). Error messages never
include cell values: they may be personal data.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from renkei.errors import InputError, Location
from renkei.sending.cp932 import utf8_stream

# 32 MB: the extract holds about five blocks at once (read ahead, transformed, written), and 64 MB blocks
# took the 1.5M-row juki past 1 GB of RSS for no gain in time (docs/benchmarks.md).
BLOCK_SIZE = 32 << 20
ENCODINGS = {"cp932": "cp932", "utf-8": "utf-8-sig"}
_OTHER = {"cp932": "utf-8", "utf-8": "cp932"}


@dataclass(frozen=True, slots=True)
class CsvHeader:
    columns: tuple[str, ...]


def read_header(path: Path, encoding: str) -> CsvHeader:
    """Read and check the header row: decodable, no blank or duplicate names."""
    codec = ENCODINGS[encoding]
    try:
        with path.open("rb") as raw:
            first = raw.readline(1 << 20)
    except FileNotFoundError:
        raise InputError("入力ファイルが見つかりません", "input file not found", Location(path)) from None
    except IsADirectoryError:
        raise InputError("入力はファイルではありません", "input is a directory", Location(path)) from None
    if not first.strip(b"\r\n\t \xef\xbb\xbf"):
        raise InputError(
            "入力ファイルが空です（見出し行がありません）", "empty file: no header row", Location(path, 1)
        )
    try:
        text = first.decode(codec)
    except UnicodeDecodeError:
        raise _encoding_error(path, encoding, 1, first) from None
    where = Location(path, 1)
    columns = tuple(_fields(text.rstrip("\r\n"), where))
    for i, name in enumerate(columns, start=1):
        if not name.strip():
            raise InputError(f"見出し行の {i} 番目の列名が空です", f"header field {i} is blank", where)
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        names = "、".join(duplicates)
        raise InputError(
            f"見出し行に同じ列名が重複しています: {names}", f"duplicate header names: {duplicates}", where
        )
    return CsvHeader(columns)


def _encoding_error(
    path: Path, encoding: str, line: int, raw_line: bytes, column: str | None = None
) -> InputError:
    """Name the line, and say so when the bytes read fine in the other supported encoding."""
    other = _OTHER[encoding]
    hint_ja = hint_en = ""
    try:
        raw_line.decode(ENCODINGS[other])
        hint_ja, hint_en = f"（{other} で保存されている可能性があります）", f"; the file looks like {other}"
    except UnicodeDecodeError:
        pass
    return InputError(
        f"文字コードが {encoding} として読めません{hint_ja}",
        f"cannot decode as {encoding}{hint_en}",
        Location(path, line, column),
    )


def iter_batches(
    path: Path,
    encoding: str,
    header: CsvHeader,
    block_size: int = BLOCK_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
    columns: Collection[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the data rows as record batches of strings; errors name the line (and column when known).

    ``on_progress(bytes_read, bytes_total)`` is called after each batch. With ``columns``, only those columns
    are converted into the batches; every field of every row is still decoded and parsed, so an undecodable
    byte or a malformed row anywhere is an error as before.
    """
    bad_rows: list[int | None] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        bad_rows.append(row.number)
        return "error"

    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(header.columns, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        include_columns=[c for c in header.columns if columns is None or c in columns],
    )
    parse = pacsv.ParseOptions(invalid_row_handler=on_invalid_row, newlines_in_values=False)
    total = path.stat().st_size
    try:
        with path.open("rb") as raw:
            # CP932 through the C library's iconv when it decodes exactly as Python does (renkei.sending.cp932)
            utf8 = utf8_stream(raw) if encoding == "cp932" else None
            codec = "utf8" if utf8 is not None else ENCODINGS[encoding]
            read = pacsv.ReadOptions(encoding=codec, block_size=block_size, use_threads=True)
            source = raw if utf8 is None else utf8
            reader = pacsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
            for batch in reader:
                if on_progress is not None:
                    on_progress(raw.tell(), total)
                yield batch
    except (UnicodeDecodeError, pa.ArrowInvalid) as exc:
        raise locate_problem(path, encoding, header) or InputError(
            "CSV として読めません", f"cannot parse CSV: {type(exc).__name__}", Location(path)
        ) from None


def locate_problem(path: Path, encoding: str, header: CsvHeader) -> InputError | None:
    """Slow path after a failed fast read: find the first undecodable or malformed line."""
    decoder = codecs.getincrementaldecoder(ENCODINGS[encoding])()
    width = len(header.columns)
    with path.open("rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                text = decoder.decode(line)
            except UnicodeDecodeError as exc:
                column = _column_at(header, line, exc.start, encoding)
                return _encoding_error(path, encoding, number, line, column)
            if number == 1:
                continue
            stripped = text.rstrip("\r\n")
            if not stripped:
                continue
            fields = _fields(stripped, Location(path, number))
            if len(fields) != width:
                return InputError(
                    f"列の数が見出し行と違います（{width} 列のはずが {len(fields)} 列）",
                    f"malformed row: expected {width} fields, found {len(fields)}",
                    Location(path, number),
                )
    return None


def _fields(line: str, where: Location) -> list[str]:
    """One line's fields by Python's csv module; a line it refuses (a field beyond its limit) names the line."""
    try:
        return next(csv.reader(io.StringIO(line)), [])
    except csv.Error:
        raise InputError(
            "CSV の行として読めません（列が大きすぎるか、引用符が正しくありません）",
            "cannot parse the line as CSV: a field too large or a broken quote",
            where,
        ) from None


def _column_at(header: CsvHeader, line: bytes, offset: int, encoding: str) -> str | None:
    """The header name of the field containing byte ``offset`` of a data line, if it can be told."""
    prefix = line[:offset].decode(ENCODINGS[encoding], errors="replace")
    try:
        index = len(next(csv.reader([prefix]), [""])) - 1
    except csv.Error:
        return None
    return header.columns[index] if 0 <= index < len(header.columns) else None
