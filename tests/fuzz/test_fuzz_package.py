"""Fuzzing the package container (renkei.package, as hub/importer.py opens it): hostile tar archives —
sparse members, links, devices, FIFOs, duplicates, absolute and ``..`` names, huge declared sizes, truncated
archives, compressed ones, flipped bytes — are read within their limits or refused with exactly the exceptions
the importer turns into a PackageRejectedError naming the package (tarfile.TarError, PackageFormatError,
EOFError); never another exception, never more read than the limits allow, never a hang."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from renkei.hub.importer import OUTER_LIMITS
from renkei.package import (
    ENVELOPE,
    PAYLOAD,
    SIGNATURE,
    PackageFormatError,
    checked_members,
    copy_member,
    open_archive,
    read_member,
)

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),
]

LIMITS = {**OUTER_LIMITS, PAYLOAD: 64 << 10}  # the payload ceiling as a hub setting may lower it
REJECTIONS = (tarfile.TarError, PackageFormatError, EOFError)  # what Importer._open_envelope refuses with
NAMES = st.sampled_from(
    [
        ENVELOPE,
        SIGNATURE,
        PAYLOAD,
        "/payload.age",
        "../payload.age",
        "./payload.age",
        "payload.age/",
        "a/../payload.age",
        "notes.txt",
        "",
        "payload.age\x00x",
        "ペイロード",
    ]
)
TYPES = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.AREGTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
        tarfile.DIRTYPE,
        tarfile.CONTTYPE,
        tarfile.GNUTYPE_SPARSE,
        b"x",
        b"Z",
    ]
)
FORMATS = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])


def octal12(n: int) -> bytes:
    return b"%011o\0" % n


def base256(n: int) -> bytes:
    """A 12-byte size field in GNU's base-256 form: any size, whatever the archive holds."""
    return b"\x80" + n.to_bytes(11, "big")


def with_checksum(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    return bytes(header)


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    buf = io.BytesIO()
    fmt = draw(FORMATS)
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for _ in range(draw(st.integers(0, 5))):
            info = tarfile.TarInfo(draw(NAMES))
            info.type = draw(TYPES)
            data = draw(st.binary(max_size=600)) if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else b""
            info.size = len(data)
            info.linkname = draw(st.sampled_from(["", "/etc/passwd", "../../x", ENVELOPE]))
            if fmt == tarfile.PAX_FORMAT and draw(st.booleans()):
                info.pax_headers = draw(
                    st.dictionaries(
                        st.sampled_from(
                            ["size", "path", "GNU.sparse.realsize", "GNU.sparse.major", "linkpath"]
                        ),
                        st.sampled_from(["0", "-1", "1" * 30, "x", "payload.age", "1"]),
                        max_size=3,
                    )
                )
            try:
                tar.addfile(info, io.BytesIO(data))
            except (ValueError, tarfile.TarError):  # a name the format cannot hold: leave it out
                continue
    archive = buf.getvalue()
    if archive and draw(st.booleans()):  # a huge declared size in the first header
        header = bytearray(archive[:512])
        header[124:136] = draw(st.sampled_from([base256(1 << 80), base256(1 << 40), octal12(8**11 - 1)]))
        archive = with_checksum(header) + archive[512:]
    for _ in range(draw(st.integers(0, 3))):  # flipped bytes
        if archive:
            i = draw(st.integers(0, len(archive) - 1))
            archive = archive[:i] + bytes([draw(st.integers(0, 255))]) + archive[i + 1 :]
    if draw(st.booleans()):  # truncated
        archive = archive[: draw(st.integers(0, len(archive)))]
    compress = draw(st.sampled_from([None, gzip.compress, bz2.compress, lzma.compress]))
    return compress(archive) if compress else archive


def open_as_the_importer_does(path: Path) -> None:
    """What Importer._open_envelope does with the outer tar before any key is used."""
    with open_archive(path) as tar:
        members = checked_members(tar, LIMITS, path.stat().st_size)
        for name in (ENVELOPE, SIGNATURE):
            assert len(read_member(tar, members[name])) <= LIMITS[name]
        sink = io.BytesIO()
        copy_member(tar, members[PAYLOAD], sink)
        assert sink.tell() <= LIMITS[PAYLOAD]


def sparse_gnu(name: str, realsize: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = tarfile.GNUTYPE_SPARSE, 512
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[386:398], header[398:410] = octal12(0), octal12(512)
    header[483:495] = octal12(realsize)
    return with_checksum(header) + b"x" * 512 + bytes(1024)


def huge_size(size_field: bytes) -> bytes:
    info = tarfile.TarInfo(PAYLOAD)
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[124:136] = size_field
    return with_checksum(header) + bytes(1024)


def huge_pax_header(length: int) -> bytes:
    """A PAX extended header that declares ``length`` bytes of records and holds none."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    header = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    header[124:136] = base256(length)
    return with_checksum(header) + bytes(1024)


@given(archives())
@example(sparse_gnu(PAYLOAD, 1 << 40))
@example(huge_size(base256(1 << 80)))
@example(huge_pax_header(1 << 40))
@example(huge_pax_header(1 << 80))
@example(b"")
@example(gzip.compress(bytes(10240)))
def test_any_archive_is_read_within_limits_or_refused(archive: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "package.rkpkg"
        path.write_bytes(archive)
        with contextlib.suppress(*REJECTIONS):
            open_as_the_importer_does(path)
