"""The sealed package (封緘パッケージ): the only thing that travels from the sending side to the hub.

A package is an uncompressed tar with exactly three members:

- ``envelope.json`` — who sent what: package id, sender name, dataset, as-of date, SHA-256 and size of the
  payload. Readable without keys so the hub can route and reject early.
- ``envelope.sig`` — the sender's Ed25519 signature over the exact bytes of ``envelope.json``.
- ``payload.age`` — an age file encrypted to the hub's X25519 recipient, holding a tar of ``manifest.json``,
  ``data.parquet`` and ``seal.json`` (package id and sender again, so that the encrypted content is bound to
  the signed envelope: a registered sender cannot re-sign another sender's payload as its own).

Both sides share this module: the format is defined once. Standard constructions only (age, Ed25519).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

PACKAGE_FORMAT = "renkei.package/1"
PACKAGE_SUFFIX = ".rkpkg"
ENVELOPE, SIGNATURE, PAYLOAD = "envelope.json", "envelope.sig", "payload.age"
SEAL = "seal.json"
OUTER_MEMBERS = (ENVELOPE, SIGNATURE, PAYLOAD)
MAX_ENVELOPE_BYTES = 64 << 10
MAX_SIGNATURE_BYTES = 1 << 10
MAX_SEAL_BYTES = 4 << 10
MAX_MANIFEST_BYTES = 4 << 20
# The largest payload the hub accepts at all, whatever a signed envelope declares. Checked before anything is
# written; a candidate for the hub's settings.
MAX_PAYLOAD_BYTES = 32 << 30


class PackageFormatError(ValueError):
    """The container is not the shape a package must have (members, types, sizes)."""


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = PACKAGE_FORMAT
    package_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    sender: str = Field(min_length=1, max_length=64)
    dataset: str
    as_of: dt.date
    payload_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    payload_bytes: int = Field(ge=0)
    created_at: dt.datetime

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class Seal(BaseModel):
    """Inside the encrypted payload: binds it to the envelope that was signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package_id: str
    sender: str


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o400
    tar.addfile(info, io.BytesIO(data))


def add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mode = 0o400
    with path.open("rb") as f:
        tar.addfile(info, f)


class _BoundedReader:
    """A file whose ``read(n)`` never asks for more than is left in it.

    ``tarfile`` reads a PAX or GNU long-name header's declared size in one call: a header that declares
    2**40 bytes would make it allocate them (and 2**80 raises OverflowError) before noticing the file is short.
    """

    def __init__(self, raw: BinaryIO, size: int) -> None:
        self.raw, self.size = raw, size

    def read(self, n: int = -1) -> bytes:
        left = max(0, self.size - self.raw.tell())
        return self.raw.read(left if n is None or n < 0 else min(n, left))

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


@contextmanager
def open_archive(path: Path) -> Iterator[tarfile.TarFile]:
    """An uncompressed tar opened for reading headers and checked members, whatever sizes its headers declare."""
    with path.open("rb") as raw:
        bounded = _BoundedReader(raw, path.stat().st_size)
        try:
            tar = tarfile.open(fileobj=bounded, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115 (closed below)
        except _MALFORMED as exc:
            raise PackageFormatError(f"malformed tar header ({type(exc).__name__})") from None
        with tar:
            yield tar


# What tarfile itself raises on some malformed headers (a PAX ``GNU.sparse.realsize`` that is not a number, a
# broken sparse map) instead of a TarError.
_MALFORMED = (ValueError, OverflowError)


def checked_members(
    tar: tarfile.TarFile, limits: Mapping[str, int], archive_bytes: int
) -> dict[str, tarfile.TarInfo]:
    """Exactly the members named in ``limits``, once each, plain files within their size limit.

    Only headers are read, nothing is written. Refused: sparse members (GNU or PAX: ``tarfile`` would expand
    their holes to the declared size), links, devices, fifos, directories, duplicates, other names, and
    sizes beyond the limit or beyond the archive itself.
    """
    members: dict[str, tarfile.TarInfo] = {}
    headers = iter(tar)
    while True:
        try:
            info = next(headers)
        except StopIteration:
            break
        except _MALFORMED as exc:
            raise PackageFormatError(f"malformed tar header ({type(exc).__name__})") from None
        _check_member(info, limits, members, archive_bytes)
        members[info.name] = info
    missing = sorted(set(limits) - set(members))
    if missing:
        raise PackageFormatError(f"missing members {missing}")
    return members


def _check_member(
    info: tarfile.TarInfo, limits: Mapping[str, int], seen: Mapping[str, object], archive_bytes: int
) -> None:
    name = info.name
    if name not in limits:
        raise PackageFormatError(f"unexpected member {name!r}")
    if name in seen:
        raise PackageFormatError(f"duplicate member {name!r}")
    if info.sparse is not None or info.type == tarfile.GNUTYPE_SPARSE:
        raise PackageFormatError(f"sparse member {name!r}")
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        raise PackageFormatError(f"member {name!r} is not a plain file (type {info.type!r})")
    if info.size > limits[name]:
        raise PackageFormatError(f"member {name!r} too large ({info.size} > {limits[name]} bytes)")
    if info.offset_data + info.size > archive_bytes:
        raise PackageFormatError(f"member {name!r} extends past the end of the archive")


def read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    """A checked member's bytes (its size is bounded by :func:`checked_members`)."""
    src = tar.extractfile(info)
    if src is None:
        raise PackageFormatError(f"unreadable member {info.name!r}")
    data = src.read(info.size + 1)
    if len(data) != info.size:
        raise PackageFormatError(f"member {info.name!r} does not hold its declared size")
    return data


def copy_member(tar: tarfile.TarFile, info: tarfile.TarInfo, dest: BinaryIO, chunk: int = 1 << 20) -> str:
    """Copy a checked member, never more than its declared size; returns the SHA-256 (hex) of what was copied."""
    src = tar.extractfile(info)
    if src is None:
        raise PackageFormatError(f"unreadable member {info.name!r}")
    digest, left = hashlib.sha256(), info.size
    while left and (block := src.read(min(chunk, left))):
        dest.write(block)
        digest.update(block)
        left -= len(block)
    if left or src.read(1):
        raise PackageFormatError(f"member {info.name!r} does not hold its declared size")
    return digest.hexdigest()
