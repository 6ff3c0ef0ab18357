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
import io
import tarfile
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

PACKAGE_FORMAT = "renkei.package/1"
PACKAGE_SUFFIX = ".rkpkg"
ENVELOPE, SIGNATURE, PAYLOAD = "envelope.json", "envelope.sig", "payload.age"
SEAL = "seal.json"
OUTER_MEMBERS = (ENVELOPE, SIGNATURE, PAYLOAD)
MAX_ENVELOPE_BYTES = 64 << 10


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


def regular_members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Members by name; raises ValueError on anything but plain files with simple names, or duplicates."""
    members: dict[str, tarfile.TarInfo] = {}
    for info in tar.getmembers():
        if not info.isreg() or "/" in info.name or info.name in members:
            raise ValueError(f"unexpected member {info.name!r}")
        members[info.name] = info
    return members


def copy_member(tar: tarfile.TarFile, info: tarfile.TarInfo, dest: BinaryIO, chunk: int = 1 << 20) -> None:
    src = tar.extractfile(info)
    if src is None:
        raise ValueError(f"unreadable member {info.name!r}")
    while block := src.read(chunk):
        dest.write(block)
