"""File helpers shared by both sides: private key files that are never overwritten, durable writes."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from renkei.errors import KeyFileError, Location


def write_private(
    path: Path,
    data: bytes,
    *,
    ja: str = "鍵ファイルは既に存在します（上書きしません）",
    en: str = "key file exists; not overwriting",
) -> Path:
    """Create ``path`` with mode 0600 and write ``data``; refuse if it exists (O_EXCL, no race)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(ja, en, Location(path)) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


def fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_private(path: Path, name_ja: str, name_en: str, *, create_ja: str, create_en: str) -> bytes:
    """Read a key file; refuse a missing one (saying how to create it) or one that others can access."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(
            f"{name_ja}がありません。{create_ja}", f"{name_en} not found; {create_en}", Location(path)
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{name_ja}のアクセス権が広すぎます（0600 にしてください）",
            f"{name_en} is accessible to others (mode {stat.S_IMODE(mode):o}); chmod 600",
            Location(path),
        )
    return path.read_bytes()


@contextmanager
def exclusive_flock(fd: int, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive flock on ``fd`` (which this closes); yields False if not blocking and it is held."""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
