"""CP932 CSV files the way core systems export them: header row, CRLF, quotes only where needed.

Each column is transcoded by its distinct values: ASCII-only columns (numbers, ISO dates) are already CP932
bytes; the others are dictionary-encoded and each distinct value is quoted if needed and encoded once. The lines
are then joined as binary with pyarrow.compute, and a chunk's bytes are the data buffer of that array. A file is
written under a temporary name and renamed into place, so a crash never leaves a half file under the final name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth.vec import Array, flat

ENCODING: Final = "cp932"
NEWLINE: Final = "\r\n"
CHUNK_ROWS: Final = 200_000

Progress = Callable[[str, int, int], None]


def write_csv(table: pa.Table, path: Path, *, stage: str = "", progress: Progress | None = None) -> None:
    """Write ``table`` (string columns, header = column names) to ``path`` atomically."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    total = table.num_rows
    try:
        fields = [field_bytes(table.column(i), name) for i, name in enumerate(table.column_names)]
        with temporary.open("wb") as out:
            out.write((",".join(_quoted_header(table.column_names)) + NEWLINE).encode(ENCODING))
            for offset in range(0, total, CHUNK_ROWS):
                out.write(join_lines([f.slice(offset, CHUNK_ROWS) for f in fields]))
                if progress:
                    progress(stage, min(offset + CHUNK_ROWS, total), total)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def encode_rows(table: pa.Table) -> bytes:
    """The CSV lines (no header) of a table of string columns, CP932-encoded."""
    return join_lines([field_bytes(table.column(i), name) for i, name in enumerate(table.column_names)])


def join_lines(fields: list[Array]) -> bytes:
    """CSV lines from columns already in CP932 field form (see :func:`field_bytes`)."""
    if not fields or len(fields[0]) == 0:
        return b""
    last = pc.binary_join_element_wise(fields[-1], _NEWLINE_BYTES, b"")
    lines = flat(pc.binary_join_element_wise(*fields[:-1], last, b","))
    _, offset_buffer, data = lines.buffers()
    offsets = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, offset_buffer], offset=lines.offset)
    return bytes(memoryview(data)[offsets[0].as_py() : offsets[-1].as_py()])


def field_bytes(values: Array, column: str = "") -> Array:
    """A string column as CSV fields in CP932 (binary), quoted where needed."""
    values = flat(pc.fill_null(values, ""))
    if len(values) == 0:
        return pa.array([], pa.binary())
    ascii_only = pc.all(pc.string_is_ascii(values)).as_py()
    if ascii_only and not pc.any(pc.match_substring_regex(values, _NEEDS_QUOTES)).as_py():
        return pc.cast(values, pa.binary())  # ASCII is the same in CP932
    encoded = pc.dictionary_encode(values)
    distinct = flat(encoded.dictionary)
    needs_quotes = pc.match_substring_regex(distinct, _NEEDS_QUOTES)
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(distinct, '"', '""'), '"', "")
    distinct = pc.if_else(needs_quotes, quoted, distinct)
    return pc.take(_transcode(distinct, column), encoded.indices)


def _transcode(values: Array, column: str) -> Array:
    """UTF-8 strings to CP932 bytes in one codec call: NUL never occurs inside a CP932 character."""
    text = "\x00".join(values.to_pylist())
    try:
        blob = text.encode(ENCODING)
    except UnicodeEncodeError as error:
        bad = text[error.start : error.end]
        raise ValueError(f"column {column}: {bad!r} cannot be written in {ENCODING}") from error
    return pa.array(blob.split(b"\x00"), pa.binary())


_NEEDS_QUOTES: Final = '[",\r\n]'
_NEWLINE_BYTES: Final = NEWLINE.encode("ascii")


def _quoted_header(names: list[str]) -> list[str]:
    return [f'"{n}"' if any(c in n for c in ',"\r\n') else n for n in names]
