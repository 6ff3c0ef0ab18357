"""Edit a Parquet file's footer (Thrift compact protocol) where pyarrow has no writer for it.

pyarrow writes file-level key/value metadata, but not a column chunk's key/value metadata, ``created_by``, a
column chunk's ``file_path``, the root's name or forged statistics; a hostile writer can. This decodes the
footer into a tree of fields, lets a test change it, and writes it back (the data pages, before the footer, do
not move). Field numbers are parquet.thrift's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"PAR1"
STRUCT, LIST, BINARY, I32, I64 = 12, 9, 8, 5, 6
BOOL_TRUE, BOOL_FALSE, BYTE, I16, DOUBLE, SET, MAP = 1, 2, 3, 4, 7, 10, 11

# parquet.thrift field ids
FILE_SCHEMA, FILE_ROW_GROUPS, FILE_CREATED_BY = 2, 4, 6
SCHEMA_ELEMENT_NAME = 4
ROW_GROUP_COLUMNS = 1
CHUNK_FILE_PATH, CHUNK_META = 1, 3
META_KEY_VALUE, META_STATISTICS = 8, 12
STATS_MAX_VALUE, STATS_MIN_VALUE = 5, 6
KEY_VALUE_KEY, KEY_VALUE_VALUE = 1, 2


@dataclass
class Struct:
    """A Thrift struct: its fields by id, each a (compact type, value) pair, kept in order."""

    fields: dict[int, tuple[int, Any]] = field(default_factory=dict)

    def get(self, fid: int) -> Any:
        return self.fields[fid][1]

    def set(self, fid: int, ctype: int, value: Any) -> None:
        self.fields[fid] = (ctype, value)
        self.fields = dict(sorted(self.fields.items()))


@dataclass
class ThriftList:
    etype: int
    items: list[Any]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, ctype: int) -> Any:
        if ctype in (BOOL_TRUE, BOOL_FALSE):
            return ctype == BOOL_TRUE
        if ctype == BYTE:
            return self.byte()
        if ctype in (I16, I32, I64):
            return self.zigzag()
        if ctype == DOUBLE:
            self.pos += 8
            return self.data[self.pos - 8 : self.pos]
        if ctype == BINARY:
            n = self.varint()
            self.pos += n
            return self.data[self.pos - n : self.pos]
        if ctype in (LIST, SET):
            head = self.byte()
            size, etype = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return ThriftList(etype, [self.element(etype) for _ in range(size)])
        if ctype == STRUCT:
            return self.struct()
        raise ValueError(f"compact type {ctype} not handled (maps never occur in a Parquet footer)")

    def element(self, etype: int) -> Any:
        return self.byte() == 1 if etype in (BOOL_TRUE, BOOL_FALSE) else self.value(etype)

    def struct(self) -> Struct:
        out, last = Struct(), 0
        while (head := self.byte()) != 0:
            ctype, delta = head & 0x0F, head >> 4
            fid = last + delta if delta else self.zigzag()
            out.fields[fid] = (ctype, self.value(ctype))
            last = fid
        return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            return bytes([*out, n])
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def _value(ctype: int, value: Any) -> bytes:
    if ctype in (BOOL_TRUE, BOOL_FALSE):
        return b""
    if ctype == BYTE:
        return bytes([value])
    if ctype in (I16, I32, I64):
        return _zigzag(value)
    if ctype == DOUBLE:
        return bytes(value)
    if ctype == BINARY:
        return _varint(len(value)) + bytes(value)
    if ctype in (LIST, SET):
        size = len(value.items)
        head = (
            bytes([(size << 4) | value.etype]) if size < 15 else bytes([0xF0 | value.etype]) + _varint(size)
        )
        return head + b"".join(_element(value.etype, item) for item in value.items)
    if ctype == STRUCT:
        return _struct(value)
    raise ValueError(f"compact type {ctype} not handled")


def _element(etype: int, item: Any) -> bytes:
    return bytes([1 if item else 2]) if etype in (BOOL_TRUE, BOOL_FALSE) else _value(etype, item)


def _struct(s: Struct) -> bytes:
    out, last = bytearray(), 0
    for fid, (declared, value) in s.fields.items():
        ctype = (BOOL_TRUE if value else BOOL_FALSE) if declared in (BOOL_TRUE, BOOL_FALSE) else declared
        delta = fid - last
        out += bytes([(delta << 4) | ctype]) if 0 < delta <= 15 else bytes([ctype]) + _zigzag(fid)
        out += _value(ctype, value)
        last = fid
    return bytes(out) + b"\0"


def read_footer(path: Path) -> Struct:
    data = path.read_bytes()
    (length,) = struct.unpack("<I", data[-8:-4])
    assert data[-4:] == MAGIC
    return _Reader(data[-8 - length : -8]).struct()


def write_footer(path: Path, footer: Struct) -> None:
    data = path.read_bytes()
    (length,) = struct.unpack("<I", data[-8:-4])
    body = _struct(footer)
    path.write_bytes(data[: -8 - length] + body + struct.pack("<I", len(body)) + MAGIC)


def column_meta(footer: Struct, column: int) -> list[Struct]:
    """The ColumnMetaData of column ``column`` in every row group."""
    return [
        rg.get(ROW_GROUP_COLUMNS).items[column].get(CHUNK_META) for rg in footer.get(FILE_ROW_GROUPS).items
    ]


def key_values(pairs: dict[str, str]) -> ThriftList:
    return ThriftList(
        STRUCT,
        [
            Struct({KEY_VALUE_KEY: (BINARY, k.encode()), KEY_VALUE_VALUE: (BINARY, v.encode())})
            for k, v in pairs.items()
        ],
    )
