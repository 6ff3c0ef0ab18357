"""The C library's CP932 decoder is used only where it gives exactly Python's bytes (renkei.sending.cp932)."""

from __future__ import annotations

import io

import pytest

from renkei.sending import cp932

pytestmark = pytest.mark.skipif(not cp932.iconv_agrees(), reason="no iconv that agrees with Python's cp932")

_LEADS = (*range(0x81, 0xA0), *range(0xE0, 0xFD))


def _every_character() -> bytes:
    """Every 1- and 2-byte sequence Python's cp932 accepts, one per line."""
    singles = [bytes([b]) for b in range(256) if b not in (0x0A, 0x0D) and b not in _LEADS]
    pairs = [bytes([a, b]) for a in _LEADS for b in range(256)]
    chars = []
    for seq in singles + pairs:
        try:
            seq.decode("cp932")
        except UnicodeDecodeError:
            continue
        chars.append(seq)
    return b"\n".join(chars) + b"\n"


def _read_all(data: bytes, size: int) -> bytes:
    stream = cp932.utf8_stream(io.BytesIO(data))
    assert stream is not None
    parts = []
    while part := stream.read(size):
        assert len(part) <= size
        parts.append(part)
    stream.close()
    return b"".join(parts)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_the_stream_gives_pythons_utf8_for_every_character(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(cp932, "_CHUNK", chunk)  # chunks cut mid-line and mid-character
    data = _every_character() + "①㈱髙,ｱｲｳ,〜\r\nno final newline".encode("cp932")
    assert _read_all(data, 1000) == data.decode("cp932").encode("utf-8")


def test_bytes_only_python_accepts_are_decoded_by_python() -> None:
    data = b"a,\x80\n\xa0,\xfd\xfe\xff\n"  # glibc refuses these single bytes; Python maps them
    assert _read_all(data, 1 << 20) == data.decode("cp932").encode("utf-8")


@pytest.mark.parametrize("bad", [b"\x81\x7f\n", b"ok\n\x82", b"\x85\x40\n"])
def test_undecodable_bytes_raise_as_pythons_codec_does(bad: bytes) -> None:
    with pytest.raises(UnicodeDecodeError):
        _read_all(b"header\n" + bad, 1 << 20)


def test_lines_ended_by_carriage_returns_alone_are_cut_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cp932, "_CHUNK", 5)
    data = "宛名番号\r髙橋①\rｱｲｳｴｵ漢字\r".encode("cp932") * 50
    assert _read_all(data, 64) == data.decode("cp932").encode("utf-8")
