"""CP932 CSV files the way core systems export them: header row, CRLF, quotes only where needed.

Lines are built with pyarrow.compute (quote the values that need it, join the columns, append CRLF), so the
UTF-8 body of a chunk is simply the string array's data buffer; Python then transcodes each chunk to CP932.
A file is written under a temporary name and renamed into place, so a crash never leaves a half file under the
final name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth.vec import Array, join, where

ENCODING: Final = "cp932"
NEWLINE: Final = "\r\n"
CHUNK_ROWS: Final = 200_000

Progress = Callable[[str, int, int], None]


def write_csv(table: pa.Table, path: Path, *, stage: str = "", progress: Progress | None = None) -> None:
    """Write ``table`` (string columns, header = column names) to ``path`` atomically."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    total = table.num_rows
    try:
        with temporary.open("wb") as out:
            out.write((",".join(_quoted_header(table.column_names)) + NEWLINE).encode(ENCODING))
            for offset in range(0, total, CHUNK_ROWS):
                out.write(encode_rows(table.slice(offset, CHUNK_ROWS)))
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
    """The CSV lines of a table of string columns, CP932-encoded."""
    if table.num_rows == 0:
        return b""
    columns = [_quote_if_needed(pc.fill_null(table.column(i).combine_chunks(), "")) for i in range(table.num_columns)]
    lines = join(pc.binary_join_element_wise(*columns, ","), NEWLINE)
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    _, offset_buffer, data = lines.buffers()
    offsets = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, offset_buffer], offset=lines.offset)
    body = memoryview(data)[offsets[0].as_py() : offsets[-1].as_py()]
    return str(body, "utf-8").encode(ENCODING)


def _quote_if_needed(values: Array) -> Array:
    needs = pc.match_substring_regex(values, '[",\r\n]')
    quoted = join('"', pc.replace_substring(values, '"', '""'), '"')
    return where(needs, quoted, values)


def _quoted_header(names: list[str]) -> list[str]:
    return [f'"{n}"' if any(c in n for c in ',"\r\n') else n for n in names]
