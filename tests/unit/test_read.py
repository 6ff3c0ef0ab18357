from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from renkei.errors import InputError
from renkei.sending.read import iter_batches, read_header

ROWS = [
    "宛名番号,氏名,住所",
    "0000000001,髙橋　①子,神戸市中央区加納町6-5-1",
    "0000000002,㈱テスト,神戸市灘区",
]


def write(
    tmp_path: Path, lines: list[str], encoding: str, *, bom: bool = False, newline: str = "\r\n"
) -> Path:
    path = tmp_path / "in.csv"
    data = (newline.join(lines) + newline).encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def read_all(path: Path, encoding: str, block_size: int = 1 << 20) -> pa.Table:
    header = read_header(path, encoding)
    schema = pa.schema([(c, pa.string()) for c in header.columns])
    return pa.Table.from_batches(
        list(iter_batches(path, encoding, header, block_size=block_size)), schema=schema
    )


def test_cp932_extensions_and_leading_zeros_survive(tmp_path: Path) -> None:
    table = read_all(write(tmp_path, ROWS, "cp932"), "cp932")
    assert table.column("宛名番号").to_pylist() == ["0000000001", "0000000002"]
    assert table.column("氏名").to_pylist() == ["髙橋　①子", "㈱テスト"]
    assert all(t == pa.string() for t in table.schema.types)


@pytest.mark.parametrize("bom", [True, False])
def test_utf8_with_or_without_bom(tmp_path: Path, bom: bool) -> None:
    table = read_all(write(tmp_path, ROWS, "utf-8", bom=bom, newline="\n"), "utf-8")
    assert table.column_names == ["宛名番号", "氏名", "住所"]
    assert table.num_rows == 2


def test_streams_in_batches(tmp_path: Path) -> None:
    lines = [ROWS[0]] + [f"{i:010d},名前{i},住所{i}" for i in range(20000)]
    path = write(tmp_path, lines, "cp932")
    header = read_header(path, "cp932")
    seen: list[int] = []
    batches = list(
        iter_batches(path, "cp932", header, block_size=64 << 10, on_progress=lambda d, t: seen.append(d))
    )
    assert len(batches) > 3
    assert sum(b.num_rows for b in batches) == 20000
    assert seen == sorted(seen) and seen[-1] == path.stat().st_size


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty file") as info:
        read_header(path, "cp932")
    assert info.value.where is not None and info.value.where.line == 1


def test_header_only_is_zero_rows(tmp_path: Path) -> None:
    assert read_all(write(tmp_path, ROWS[:1], "cp932"), "cp932").num_rows == 0


def test_duplicate_headers(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="duplicate header") as info:
        read_header(write(tmp_path, ["a,b,a", "1,2,3"], "cp932"), "cp932")
    assert "a" in info.value.ja


def test_blank_header_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="field 2 is blank"):
        read_header(write(tmp_path, ["a,,c", "1,2,3"], "cp932"), "cp932")


def test_utf8_file_declared_cp932_in_header(tmp_path: Path) -> None:
    path = write(tmp_path, ["宛名番号,氏名,住所を書く", "1,2,3"], "utf-8")
    with pytest.raises(InputError, match="looks like utf-8"):
        read_header(path, "cp932")


def test_cp932_file_declared_utf8_names_line_and_column(tmp_path: Path) -> None:
    lines = ["a,b,c"] + [f"{i},x,y" for i in range(50)] + ["51,x,髙橋"]
    path = write(tmp_path, [lines[0]], "utf-8")
    path.write_bytes("\r\n".join(lines[:-1]).encode() + b"\r\n" + lines[-1].encode("cp932") + b"\r\n")
    with pytest.raises(InputError, match="cannot decode as utf-8; the file looks like cp932") as info:
        read_all(path, "utf-8")
    where = info.value.where
    assert where is not None and where.line == 52 and where.column == "c"


def test_undecodable_bytes_in_cp932_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"a,b\r\n1,x\r\n2,\x82\xff\r\n3,y\r\n")
    with pytest.raises(InputError, match="cannot decode as cp932") as info:
        read_all(path, "cp932")
    assert info.value.where is not None and (info.value.where.line, info.value.where.column) == (3, "b")


def test_malformed_row_names_the_line_without_values(tmp_path: Path) -> None:
    lines = ["a,b,c"] + [f"{i},x,y" for i in range(10)] + ["secret,only-two"] + ["1,2,3"]
    with pytest.raises(InputError, match="expected 3 fields, found 2") as info:
        read_all(write(tmp_path, lines, "cp932"), "cp932")
    assert info.value.where is not None and info.value.where.line == 12
    assert "secret" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_header(tmp_path / "nope.csv", "cp932")


def test_a_header_field_beyond_the_csv_limit_is_an_input_error(tmp_path: Path) -> None:
    # Found by tests/fuzz: Python's csv module refuses fields over 128 KiB with csv.Error (was a traceback).
    path = tmp_path / "in.csv"
    path.write_bytes(b'"' + b"a" * 200_000 + b'"\n1\n')
    with pytest.raises(InputError) as info:
        read_header(path, "utf-8")
    assert info.value.where is not None and info.value.where.line == 1


def test_a_huge_field_in_a_bad_file_still_names_the_line(tmp_path: Path) -> None:
    # The slow path that finds the line after pyarrow failed read it with csv too (was a csv.Error traceback).
    path = tmp_path / "in.csv"
    path.write_bytes(b"c0\n" + b"a" * 200_000 + b"\n")
    with pytest.raises(InputError) as info:
        read_all(path, "utf-8", block_size=1 << 10)
    assert info.value.where is not None and info.value.where.line == 2
    assert "a" * 20 not in str(info.value)  # no cell values in the message
