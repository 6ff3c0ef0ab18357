"""The imports' private work directories under ``<home>/staging`` (decrypted data) and their sweep.

Every running import holds ``<home>/staging/.lock`` shared (an ``flock``) while its work directory
``import-<random>`` exists. Whoever gets that lock exclusively knows no import is running, so every work
directory there was left by a killed one and is removed: the next import does so when it starts, and so does
every hub start (:class:`renkei.hub.home.Hub`), so that decrypted files do not wait for the next import.
Kept free of heavy imports: a hub start loads it.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

WORK_PREFIX = "import-"
STAGING_LOCK = ".lock"


@contextmanager
def import_workspace(staging: Path) -> Iterator[Path]:
    """A private work directory under ``staging`` for one import, removed afterwards.

    Every import holds the staging lock shared while it works. One that finds no other import running
    (the lock free for exclusive use) first removes whatever killed imports left behind: decrypted data.
    """
    staging.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging.chmod(0o700)
    fd = os.open(staging / STAGING_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        with suppress(BlockingIOError):  # others are importing: their directories are live
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            sweep_import_staging(staging)
        fcntl.flock(fd, fcntl.LOCK_SH)
        work = staging / f"{WORK_PREFIX}{secrets.token_hex(8)}"
        work.mkdir(mode=0o700)
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        os.close(fd)  # releases the lock


def sweep_import_staging(staging: Path) -> int:
    """Remove the work directories of earlier imports; call only while holding the staging lock exclusively."""
    leftovers = sorted(staging.glob(f"{WORK_PREFIX}*"))
    for leftover in leftovers:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    return len(leftovers)


def sweep_dead_imports(staging: Path) -> int:
    """At a hub start: remove killed imports' work directories if no import is running; returns how many.

    Costs one directory listing when there is nothing to sweep. Never waits: if an import holds the lock, its
    directory is live and the sweep is left to a later start or import. A home this process may not write
    (another user's, read-only) is left alone.
    """
    try:
        if not any(staging.glob(f"{WORK_PREFIX}*")):
            return 0
        fd = os.open(staging / STAGING_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # an import is running: its work directory is live
        try:
            return sweep_import_staging(staging)
        except OSError:
            return 0  # not this start's to stop: the next import sweeps again, and fails if it cannot
    finally:
        os.close(fd)
