"""The package container's reader (renkei.package.open_archive) against headers that declare huge sizes."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from renkei.hub.importer import OUTER_LIMITS
from renkei.package import PackageFormatError, checked_members, open_archive


def pax_header_declaring(length: int) -> bytes:
    """A PAX extended header that declares ``length`` bytes of records and holds none."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    header = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    header[124:136] = b"\x80" + length.to_bytes(11, "big")  # GNU base-256: any size
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    return bytes(header) + bytes(1024)


@pytest.mark.parametrize("length", [1 << 40, 1 << 80])
def test_a_header_declaring_a_huge_size_is_refused_without_reading_it(tmp_path: Path, length: int) -> None:
    # Found by tests/fuzz: tarfile read the declared size in one call (2**80: OverflowError, a traceback;
    # 2**40: an allocation of a terabyte). The reader now never asks for more than the file holds.
    path = tmp_path / "bomb.rkpkg"
    path.write_bytes(pax_header_declaring(length))
    with pytest.raises((tarfile.TarError, PackageFormatError, EOFError)), open_archive(path) as tar:
        checked_members(tar, OUTER_LIMITS, path.stat().st_size)


def test_a_plain_archive_reads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "ok.tar"
    with tarfile.open(path, "w") as tar:
        for name in OUTER_LIMITS:
            info = tarfile.TarInfo(name)
            tar.addfile(info)
    with open_archive(path) as tar:
        assert sorted(checked_members(tar, OUTER_LIMITS, path.stat().st_size)) == sorted(OUTER_LIMITS)


def test_a_pax_sparse_size_that_is_no_number_is_a_format_error(tmp_path: Path) -> None:
    # Found by tests/fuzz: tarfile's int() of GNU.sparse.realsize escaped as a ValueError traceback.
    path = tmp_path / "bad.rkpkg"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("envelope.json"))
        info = tarfile.TarInfo("payload.age")
        info.pax_headers = {"GNU.sparse.realsize": "x"}
        tar.addfile(info)
    with pytest.raises(PackageFormatError, match="malformed tar header"), open_archive(path) as tar:
        checked_members(tar, OUTER_LIMITS, path.stat().st_size)
