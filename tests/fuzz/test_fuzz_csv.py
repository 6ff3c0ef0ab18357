"""Fuzzing the CSV readers (renkei.sending.read): any bytes are read or refused with an InputError naming the
file (and the line when it can be told); never another exception, never a hang."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from renkei.errors import InputError
from renkei.sending.read import ENCODINGS, iter_batches, read_header
from tests.fuzz.support import assert_clear

pytestmark = pytest.mark.timeout(300)  # a hang fails the run instead of stalling it

ENCODING = st.sampled_from(sorted(ENCODINGS))
CELL_BYTES = st.sampled_from(
    [
        b"",
        b"a",
        b"0012",
        b'"',
        b'""',
        b'"a,b"',
        b'"x""y"',
        b",",
        b"\x00",
        b"\r",
        b"\n",
        b"\r\n",
        b"\xef\xbb\xbf",
        "①㈱髙".encode("cp932"),
        "①㈱髙".encode(),
        b"\x82",
        b"\xff\xfe",
        b"\xe3\x81",
        b" ",
        b"\t",
        b"a" * 200_000,
    ]
)


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """CSV-shaped bytes: a header, ragged rows of hostile cells, sometimes a BOM or raw noise."""
    width = draw(st.integers(1, 4))
    header = b",".join(f"c{i}".encode() for i in range(width))
    if draw(st.integers(0, 5)) == 0:
        header = b",".join(draw(st.lists(CELL_BYTES, min_size=1, max_size=4)))
    rows = [
        b",".join(draw(st.lists(CELL_BYTES | st.binary(max_size=8), min_size=0, max_size=width + 2)))
        for _ in range(draw(st.integers(0, 5)))
    ]
    newline = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    body = newline.join([header, *rows]) + draw(st.sampled_from([b"", newline]))
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]))
    return prefix + body if draw(st.integers(0, 7)) else draw(st.binary(max_size=300))


def read_all(data: bytes, encoding: str, block_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.csv"
        path.write_bytes(data)
        try:
            header = read_header(path, encoding)
            for batch in iter_batches(path, encoding, header, block_size=block_size):
                assert batch.num_columns == len(header.columns)
        except InputError as error:
            assert_clear(error, path)


@given(csv_bytes(), ENCODING, st.sampled_from([1 << 10, 1 << 16, 1 << 20]))
@example(b"c0\n" + b"a" * 200_000 + b"\n", "utf-8", 1 << 10)  # a field beyond csv's own limit
@example(b'"' + b"a" * 200_000 + b'"\n1\n', "utf-8", 1 << 20)  # a huge header field
@example(b"c0,c1\n1,2\n3\n", "cp932", 1 << 16)  # a ragged row
@example(b"c0\n\x00\x00\n", "utf-8", 1 << 16)  # NULs
@example(b'c0\n"open quote\n', "utf-8", 1 << 16)
def test_any_bytes_are_read_or_refused_with_the_file_named(
    data: bytes, encoding: str, block_size: int
) -> None:
    read_all(data, encoding, block_size)
