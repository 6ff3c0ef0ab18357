"""What a package's Parquet file may carry besides its rows: exactly what renkei's extract writes.

A Parquet file has room for free text outside its rows, where the spec's default deny never looks: key/value
metadata on the file, on the Arrow schema and on each of its fields (inside the file's ``ARROW:schema``), on
each column chunk; a column chunk's external ``file_path``; the writer's ``created_by``; the root schema's name;
and each column chunk's statistics. A sending tool (or a hand) that put names or 宛名番号 there would have them
stored in the vault as they are. The extract writes ``pq.ParquetWriter(path, spec.output_schema)``: the file
key ``ARROW:schema`` holding the spec's output schema without any metadata, pyarrow's ``created_by`` and root
name, and statistics. Anything else is refused (a package is signed, so nothing is stripped: the vault keeps
the bytes the sender signed), naming the file and the key or column. Statistics come from the data and are
kept, but scanned like the data is on the sending side (:func:`renkei.identifiers.scan_leftovers`: not the
pseudonymous IDs), and so is every refused value, so that the refusal says what it held: a kind, never the
value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from renkei.identifiers import LEFTOVER_LABELS_JA, scan_leftovers
from renkei.manifest import DATA_FILE
from renkei.spec import DatasetSpec

ARROW_SCHEMA_KEY = b"ARROW:schema"
# What pyarrow (the extract's writer) puts in created_by and as the root's name.
WRITER = re.compile(r"parquet-cpp-arrow version [0-9]+\.[0-9]+\.[0-9]+(?:-SNAPSHOT)?")
ROOT_NAME = "schema"
_ROOT_LINE = re.compile(r"required group field_id=-?[0-9]+ (.*) \{")
SHOWN_CHARS = 40  # how much of an unexpected key the message shows


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a Parquet file is refused (one finding, or all of them), Japanese first."""

    ja: str
    en: str


def unexpected_content(parquet: pq.ParquetFile, spec: DatasetSpec) -> Refusal | None:
    """``None`` if ``parquet`` carries nothing but what the extract writes for ``spec``, else every finding.

    Call it after the schema's names and types have been checked against the spec.
    """
    meta = parquet.metadata
    findings = [
        *_file_metadata(meta.metadata or {}, spec),
        *_column_chunks(meta),
        *_writer(meta),
        *_statistics(meta, spec),
    ]
    if not findings:
        return None
    return Refusal(
        f"{DATA_FILE} に抽出処理が書き込まない内容があります: " + "、".join(f.ja for f in findings),
        f"{DATA_FILE} carries what the extract never writes: " + "; ".join(f.en for f in findings),
    )


# -- key/value metadata --------------------------------------------------------------------------------


def _file_metadata(metadata: dict[bytes, bytes], spec: DatasetSpec) -> Iterator[Refusal]:
    for key, value in sorted(metadata.items()):
        if key != ARROW_SCHEMA_KEY:
            yield _unexpected_key("ファイルのメタデータ", "file metadata", key, value)
    if ARROW_SCHEMA_KEY in metadata:
        yield from _arrow_schema(metadata[ARROW_SCHEMA_KEY], spec.output_schema)


def _arrow_schema(encoded: bytes, expected: pa.Schema) -> Iterator[Refusal]:
    """The Arrow schema pyarrow stores in the file: the spec's output schema, with no metadata anywhere."""
    try:
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded, validate=True)))
    except (binascii.Error, ValueError, pa.ArrowException):
        yield Refusal("ARROW:schema が読めません", "ARROW:schema does not decode")
        return
    for key, value in sorted((schema.metadata or {}).items()):
        yield _unexpected_key("スキーマのメタデータ", "schema metadata", key, value)
    for path, field in _fields(schema):
        for key, value in sorted((field.metadata or {}).items()):
            yield _unexpected_key(f"列「{path}」のメタデータ", f"metadata of column {path!r}", key, value)
    if not schema.equals(expected, check_metadata=False):  # what pyarrow read may differ from what it stores
        yield Refusal("ARROW:schema が仕様の列構成と違います", "ARROW:schema differs from the spec's schema")


def _fields(schema: pa.Schema) -> Iterator[tuple[str, pa.Field]]:
    """Every field, nested ones included (a list's item, a struct's children), by dotted path."""
    stack = [(f.name, f) for f in reversed(schema)]
    while stack:
        path, field = stack.pop()
        yield path, field
        stack += [
            (f"{path}.{child.name}", child)
            for child in reversed([field.type.field(i) for i in range(field.type.num_fields)])
        ]


def _column_chunks(meta: pq.FileMetaData) -> Iterator[Refusal]:
    """Key/value metadata and external file paths of column chunks, reported once per column."""
    reported: set[tuple[str, bytes | str]] = set()
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            for key, value in sorted((chunk.metadata or {}).items()):
                if (chunk.path_in_schema, key) not in reported:
                    reported.add((chunk.path_in_schema, key))
                    where = chunk.path_in_schema
                    yield _unexpected_key(
                        f"列「{where}」の列チャンクのメタデータ",
                        f"column chunk metadata of {where!r}",
                        key,
                        value,
                    )
            if chunk.file_path and (chunk.path_in_schema, "") not in reported:
                reported.add((chunk.path_in_schema, ""))
                yield Refusal(
                    f"列「{chunk.path_in_schema}」が別ファイルを指しています",
                    f"column {chunk.path_in_schema!r} points to another file",
                )


def _unexpected_key(where_ja: str, where_en: str, key: bytes, value: bytes) -> Refusal:
    shown = _shown(key)
    kinds = _kinds(f"{where_en}: {shown}", [key.decode("utf-8", "replace"), value.decode("utf-8", "replace")])
    held_ja = f"（{'・'.join(LEFTOVER_LABELS_JA.get(k, k) for k in kinds)}の形の値を含む）" if kinds else ""
    held_en = f" (holding a value shaped like {', '.join(kinds)})" if kinds else ""
    return Refusal(f"{where_ja}にキー「{shown}」{held_ja}", f"{where_en} has the key {shown!r}{held_en}")


def _shown(text: bytes) -> str:
    """A key as a message may show it: printable, short, and never an identifier-shaped value."""
    decoded = text.decode("utf-8", "replace")
    if _kinds("key", [decoded]):
        return "<識別符号の形の値 (identifier-shaped)>"
    printable = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in decoded)
    return printable if len(printable) <= SHOWN_CHARS else printable[:SHOWN_CHARS] + "…"


# -- the writer and the schema's root --------------------------------------------------------------------


def _writer(meta: pq.FileMetaData) -> Iterator[Refusal]:
    created_by = meta.created_by or ""
    if WRITER.fullmatch(created_by) is None:
        shown = _shown(created_by.encode())
        yield Refusal(
            f"作成ツール (created_by) が pyarrow ではありません: {shown}",
            f"created_by is not pyarrow's: {shown!r}",
        )
    # pyarrow names the root only in the schema's text form: its second line (the first is the object).
    lines = str(meta.schema).splitlines()
    root = _ROOT_LINE.fullmatch(lines[1]) if len(lines) > 1 else None
    if root is None or root.group(1) != ROOT_NAME:
        shown = _shown(root.group(1).encode()) if root else "?"
        yield Refusal(
            f"スキーマの根の名前が {ROOT_NAME} ではありません: {shown}", f"schema root named {shown!r}"
        )


# -- statistics ----------------------------------------------------------------------------------------


def _statistics(meta: pq.FileMetaData, spec: DatasetSpec) -> Iterator[Refusal]:
    """Identifier-shaped values among the min/max statistics of the text columns (not the pseudonyms)."""
    text = {
        f.name
        for f in spec.output_schema
        if pa.types.is_string(f.type) and f.name not in spec.pseudonym_columns
    }
    values: dict[str, list[str]] = {}
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            stats = chunk.statistics
            if chunk.path_in_schema in text and stats is not None and stats.has_min_max:
                values.setdefault(chunk.path_in_schema, []).extend(
                    bound.decode("utf-8", "replace") for bound in (stats.min_raw, stats.max_raw)
                )
    for column, bounds in values.items():
        if kinds := _kinds(column, bounds):
            labels = "・".join(LEFTOVER_LABELS_JA.get(k, k) for k in kinds)
            yield Refusal(
                f"列「{column}」の統計情報 (min/max) に{labels}の形の値",
                f"statistics (min/max) of column {column!r} hold a value shaped like {', '.join(kinds)}",
            )


def _kinds(where: str, texts: list[str]) -> list[str]:
    return sorted({hit.kind for hit in scan_leftovers(where, pa.array(texts, pa.string()))})
