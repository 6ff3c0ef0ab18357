"""The one place that decrypts a snapshot for analysis (ARCHITECTURE invariant 5).

A snapshot's plaintext — its data, or the record keys stored beside it — is produced only against an allowed,
recorded :class:`Decision` of ``authorize()`` for exactly that snapshot and a read action.
``tests/unit/test_decrypt_callers.py`` fails if any other module (except the vault's and the importer's own
verification) calls the vault's decrypting methods.

:class:`SnapshotCache` shares what the gate decrypted between the workspaces of one process: one sealed memfd
per stored file (a snapshot's data, or its record keys), reference-counted, so that N workspaces granted the
same snapshots hold one plaintext copy and only the first pays for the decryption. A cached file is handed out
only as :func:`open_granted_snapshots` would decrypt it — under the caller's own allowed, recorded decision for
exactly that snapshot, checked every time — and only while the stored file is the one decrypted (its
:meth:`~renkei.hub.vault.Vault.stamp`: a key rotation or a missing file is a miss, which decrypts afresh or
fails as before). The last lease to go closes the memfd after ``idle`` seconds (0: at once; the setting
``workspace.shared_idle_seconds``); the workers keep their own descriptors until they exit.

What is derived from a set of snapshots' record keys (the merged (pid, rkey) table a workspace's control
database needs: seconds of every core for a large city) is shared the same way by :meth:`SnapshotCache.derived`:
keyed by exactly that set of snapshots, handed out only under a decision for each of them, and dropped
``idle`` seconds after its last use (at once with 0).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from renkei.hub.access.authz import Action, Decision, ResourceType
from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE
from renkei.hub.vault import SnapshotRef, Vault
from renkei.hub.workspace.errors import WorkspaceError
from renkei.manifest import DATA_FILE

READ_ACTIONS = frozenset({Action.SNAPSHOT_READ.value, Action.SNAPSHOT_READ_ROWS.value})
ANALYSIS_FILES = frozenset({DATA_FILE, RECORD_KEYS_FILE})  # what a workspace reads of a snapshot


@dataclass(frozen=True, slots=True)
class Granted:
    """A snapshot and the recorded decision that allowed reading it."""

    decision: Decision
    snapshot_id: int
    ref: SnapshotRef


def open_granted_snapshots(vault: Vault, granted: Sequence[Granted], name: str = DATA_FILE) -> list[int]:
    """Sealed, read-only memfds with file ``name`` of each snapshot, in order; the caller owns (and closes)
    the fds. Every decision is checked before anything is decrypted; the files then decrypt side by side."""
    _check_name(name)
    for item in granted:
        _check(item)
    return vault.decrypt_to_memfds([(item.ref, name) for item in granted])


def _check_name(name: str) -> None:
    if name not in ANALYSIS_FILES:
        raise WorkspaceError(
            "分析で読めるのはデータとレコードキーだけです",
            f"a workspace does not read {name!r} of a snapshot",
        )


def _check(item: Granted) -> None:
    decision = item.decision
    resource = decision.resource if isinstance(decision, Decision) else None
    problems = [
        (not isinstance(decision, Decision), "not a decision of authorize()"),
        (isinstance(decision, Decision) and not decision.allowed, "the decision denied access"),
        (isinstance(decision, Decision) and decision.action not in READ_ACTIONS, "not a read decision"),
        (resource is None or resource.type != ResourceType.SNAPSHOT.value, "not about a snapshot"),
        (
            resource is None or resource.id is None or resource.id != item.snapshot_id,
            "about another snapshot",
        ),
        (resource is None or resource.name != f"snapshot/{item.ref}", "names another snapshot's files"),
        (isinstance(decision, Decision) and decision.audit_seq <= 0, "the decision was not recorded"),
    ]
    failed = [why for bad, why in problems if bad]
    if failed:
        raise WorkspaceError(
            "このスナップショットを復号する許可がありません",
            f"refusing to decrypt snapshot {item.snapshot_id}: {'; '.join(failed)}",
        )


# -- sharing ----------------------------------------------------------------------------------------------

CacheKey = tuple[SnapshotRef, str]  # a snapshot and the name of its file
DerivedKey = tuple[str, tuple[SnapshotRef, ...]]  # what is derived, from which snapshots (sorted)
T = TypeVar("T")
MAX_DERIVED = 16  # derived values kept at most (8 snapshot sets: their merged record keys and unique pids)


@dataclass(eq=False)
class _Derived:
    stamps: tuple[tuple[int, ...], ...]
    value: Any
    used: int = 0  # how many times it was handed out (names the timer that may drop it)


@dataclass(eq=False)
class _Entry:
    key: CacheKey
    stamp: tuple[int, ...]
    fd: int = -1
    users: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    detached: bool = False  # no longer handed out (stale or failed): closed when its last user goes
    idle_timer: threading.Timer | None = None
    idled: int = 0  # how many times the last user went (names the timer that may close it)


class SnapshotLease:
    """Read-only sealed memfds of a workspace's snapshots, in the order asked for; the numbers stay valid
    until :meth:`close` (idempotent). The holder must not close them itself."""

    def __init__(self, cache: SnapshotCache, entries: list[_Entry]) -> None:
        self._cache, self._entries = cache, entries
        self.fds = [entry.fd for entry in entries]
        self._closed = False
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._cache._release(self._entries)

    def __enter__(self) -> SnapshotLease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SnapshotCache:
    """The decrypted files of one vault shared by the workspaces of this process (see the module docstring)."""

    def __init__(self, vault: Vault, idle: float = 0.0) -> None:
        self.vault, self.idle = vault, idle
        self.decryptions = 0  # files decrypted by this cache (for tests and the benchmarks)
        self._entries: dict[CacheKey, _Entry] = {}
        self._derived: dict[DerivedKey, _Derived] = {}
        self._deriving: dict[DerivedKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def open(self, granted: Sequence[Granted], name: str = DATA_FILE) -> SnapshotLease:
        """A lease on the memfds of file ``name`` of each granted snapshot, in order. Every decision is
        checked first (as :func:`open_granted_snapshots` does), for cached files too; what is not cached, or
        cached from a file that has changed since, is decrypted through the gate, once for all callers."""
        _check_name(name)
        for item in granted:
            _check(item)
        stamps = [self._stamp(item.ref, name) for item in granted]  # raises as decrypting would
        entries: list[_Entry] = []
        mine: list[tuple[Granted, _Entry]] = []
        with self._lock:
            for item, stamp in zip(granted, stamps, strict=True):
                key = (item.ref, name)
                entry = self._entries.get(key)
                if entry is not None and entry.stamp != stamp:
                    self._detach(entry)  # decrypted before a rotation (or a replaced file): never again
                    entry = None
                if entry is None:
                    entry = self._entries[key] = _Entry(key, stamp)
                    mine.append((item, entry))
                entry.users += 1
                if entry.idle_timer is not None:
                    entry.idle_timer.cancel()
                    entry.idle_timer = None
                entries.append(entry)
        try:
            self._fill(mine, name)
            for entry in entries:
                entry.ready.wait()
                if entry.error is not None:
                    raise entry.error
        except BaseException:
            self._release(entries)
            raise
        return SnapshotLease(self, entries)

    def _stamp(self, ref: SnapshotRef, name: str) -> tuple[int, ...]:
        """The stored file's stamp; if it cannot be had (gone, or a key file of another KEK after a rotation),
        what was cached of it is handed out no more, and the error is the caller's."""
        try:
            return self.vault.stamp(ref, name)
        except BaseException:
            with self._lock:
                entry = self._entries.get((ref, name))
                if entry is not None and entry.ready.is_set():
                    self._detach(entry)
            raise

    def _fill(self, mine: list[tuple[Granted, _Entry]], name: str) -> None:
        """Decrypt the entries this caller created (the others wait for it); a failure fails them all."""
        if not mine:
            return
        try:
            fds = open_granted_snapshots(self.vault, [item for item, _ in mine], name)
        except BaseException as e:
            with self._lock:
                for _, entry in mine:
                    entry.error = e
                    self._detach(entry)
                    entry.ready.set()
            raise
        with self._lock:
            self.decryptions += len(fds)
            for (_, entry), fd in zip(mine, fds, strict=True):
                entry.fd = fd
                entry.ready.set()

    def _release(self, entries: list[_Entry]) -> None:
        with self._lock:
            for entry in entries:
                entry.users -= 1
                if entry.users > 0:
                    continue
                if entry.detached or self.idle <= 0 or entry.fd < 0:
                    self._drop(entry)
                else:
                    entry.idled += 1
                    timer = threading.Timer(self.idle, self._expire, (entry, entry.idled))
                    timer.daemon = True
                    entry.idle_timer = timer
                    timer.start()

    def _expire(self, entry: _Entry, idled: int) -> None:
        with self._lock:
            if entry.users == 0 and entry.idled == idled:  # not used again since this timer started
                entry.idle_timer = None
                self._drop(entry)

    def _detach(self, entry: _Entry) -> None:
        """Hand the entry out no more; closed now if nobody uses it (called with the lock held)."""
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        entry.detached = True
        if entry.users == 0:
            self._drop(entry)

    def _drop(self, entry: _Entry) -> None:
        """Close the entry's memfd (called with the lock held, once nobody uses it)."""
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        entry.detached = True
        if entry.idle_timer is not None:
            entry.idle_timer.cancel()
            entry.idle_timer = None
        if entry.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(entry.fd)
            entry.fd = -1

    def derived(
        self, what: str, granted: Sequence[Granted], name: str, build: Callable[[list[int]], T | None]
    ) -> T | None:
        """``build`` (over a lease of file ``name`` of every granted snapshot) once for all callers with the
        same snapshots, while the files are the ones it was built from; every caller's decisions are checked
        first. ``build`` may return None (interrupted): nothing is kept and the next caller builds."""
        _check_name(name)
        for item in granted:
            _check(item)
        pairs = sorted((item.ref, self._stamp(item.ref, name)) for item in granted)
        key: DerivedKey = (f"{what}:{name}", tuple(ref for ref, _ in pairs))
        stamps = tuple(stamp for _, stamp in pairs)
        with self._lock:
            deriving = self._deriving.setdefault(key, threading.Lock())
        with deriving:  # one build at a time per key: the others wait for it and take its value
            with self._lock:
                kept = self._derived.get(key)
                if kept is not None and kept.stamps == stamps:
                    self._keep(key, kept)
                    return kept.value  # type: ignore[no-any-return]
                self._derived.pop(key, None)
            with self.open(granted, name) as lease:
                value = build(lease.fds)
            if value is not None and self.idle > 0:
                with self._lock:
                    kept = self._derived[key] = _Derived(stamps, value)
                    while len(self._derived) > MAX_DERIVED:
                        del self._derived[next(iter(self._derived))]  # the oldest
                    self._keep(key, kept)
            return value

    def _keep(self, key: DerivedKey, kept: _Derived) -> None:
        """Drop ``kept`` ``idle`` seconds from now unless it is used again (called with the lock held)."""
        kept.used += 1
        self._derived[key] = self._derived.pop(key)  # most recently used last
        timer = threading.Timer(self.idle, self._forget, (key, kept, kept.used))
        timer.daemon = True
        timer.start()

    def _forget(self, key: DerivedKey, kept: _Derived, used: int) -> None:
        with self._lock:
            if self._derived.get(key) is kept and kept.used == used:
                del self._derived[key]

    def clear(self) -> None:
        """Close every memfd nobody uses now (the rest close with their last lease) and drop what was derived:
        at shutdown, or after revoking access wholesale."""
        with self._lock:
            for entry in list(self._entries.values()):
                self._detach(entry)
            self._derived.clear()

    def cached(self) -> dict[CacheKey, int]:
        """Cached file → how many leases use it (0: idle, waiting to expire)."""
        with self._lock:
            return {key: entry.users for key, entry in self._entries.items()}

    def derived_kept(self) -> list[DerivedKey]:
        with self._lock:
            return list(self._derived)
