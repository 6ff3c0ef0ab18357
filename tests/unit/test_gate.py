"""The workspace's gate decrypts a snapshot's data or stored record keys only under a decision for exactly that
snapshot; every decision is checked before anything is decrypted."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from renkei.hub.access.authz import Action, Decision, Resource, ResourceType, Verdict
from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE
from renkei.hub.keys import AesGcmKek, WrongKekError
from renkei.hub.vault import MEMFD_SEALS, SnapshotRef, Vault
from renkei.hub.workspace.errors import WorkspaceError
from renkei.hub.workspace.gate import Granted, SnapshotCache, SnapshotLease, open_granted_snapshots
from renkei.manifest import DATA_FILE, MANIFEST_FILE

A = SnapshotRef("juki", dt.date(2025, 1, 1), 1)
B = SnapshotRef("juki", dt.date(2026, 1, 1), 1)


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    vault = Vault(tmp_path / "vault", AesGcmKek(bytes(range(32)), "test"))
    for ref in (A, B):
        files = {}
        for name in (DATA_FILE, MANIFEST_FILE, RECORD_KEYS_FILE):
            files[name] = tmp_path / f"{ref.period}-{name}"
            files[name].write_bytes(f"{ref} {name}".encode())
        vault.store(ref, files)
    return vault


def decision(snapshot_id: int, ref: SnapshotRef, *, allowed: bool = True, seq: int = 5) -> Decision:
    resource = Resource(ResourceType.SNAPSHOT.value, snapshot_id, f"snapshot/{ref}")
    verdict = Verdict(allowed, "test", "テスト", "test")
    return Decision(Action.SNAPSHOT_READ.value, resource, verdict, seq)


def fds() -> set[str]:
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}


@pytest.mark.parametrize("name", [DATA_FILE, RECORD_KEYS_FILE])
def test_the_data_and_the_stored_keys_open_under_the_snapshots_decisions(vault: Vault, name: str) -> None:
    opened = open_granted_snapshots(
        vault, [Granted(decision(1, A), 1, A), Granted(decision(2, B), 2, B)], name
    )
    try:
        assert [os.pread(fd, 100, 0) for fd in opened] == [f"{A} {name}".encode(), f"{B} {name}".encode()]
    finally:
        for fd in opened:
            os.close(fd)


@pytest.mark.parametrize(
    ("granted", "reason"),
    [
        (Granted(decision(1, A), 1, B), "names another snapshot's files"),
        (Granted(decision(1, A), 2, A), "about another snapshot"),
        (Granted(decision(1, A, allowed=False), 1, A), "the decision denied access"),
        (Granted(decision(1, A, seq=0), 1, A), "the decision was not recorded"),
    ],
    ids=["other-files", "other-snapshot", "denied", "unrecorded"],
)
def test_one_wrong_decision_decrypts_nothing(vault: Vault, granted: Granted, reason: str) -> None:
    before = fds()
    with pytest.raises(WorkspaceError, match=reason):
        open_granted_snapshots(vault, [Granted(decision(2, B), 2, B), granted])
    assert fds() == before


def test_the_gate_reads_nothing_else_of_a_snapshot(vault: Vault) -> None:
    with pytest.raises(WorkspaceError, match=r"does not read 'manifest\.json'"):
        open_granted_snapshots(vault, [Granted(decision(1, A), 1, A)], MANIFEST_FILE)


# -- the shared cache (SnapshotCache) -----------------------------------------------------------------------


def memfd_inode(fd: int) -> int:
    return os.fstat(fd).st_ino


def test_two_leases_share_one_decryption_and_the_last_close_closes_the_fd(vault: Vault) -> None:
    cache = SnapshotCache(vault, idle=0)
    before = fds()
    first = cache.open([Granted(decision(1, A), 1, A), Granted(decision(2, B), 2, B)])
    second = cache.open([Granted(decision(1, A, seq=9), 1, A)])  # another user's decision, same snapshot
    assert cache.decryptions == 2
    assert second.fds == first.fds[:1]  # one memfd, not a copy
    assert os.pread(second.fds[0], 100, 0) == f"{A} {DATA_FILE}".encode()
    seals = fcntl.fcntl(first.fds[0], fcntl.F_GET_SEALS)
    assert seals & MEMFD_SEALS == MEMFD_SEALS
    with pytest.raises(OSError, match=r"Bad file descriptor|Operation not permitted"):
        os.write(first.fds[0], b"x")  # read-only, and sealed against every writer
    first.close()
    first.close()  # idempotent: does not release twice
    assert cache.cached() == {(A, DATA_FILE): 1}
    os.fstat(second.fds[0])  # still open for the second lease
    second.close()
    assert cache.cached() == {}
    assert fds() == before
    cache.open([Granted(decision(1, A), 1, A)]).close()
    assert cache.decryptions == 3  # closed means gone: the next open decrypts again


def test_an_idle_entry_is_kept_for_the_idle_time_then_closed(vault: Vault) -> None:
    cache = SnapshotCache(vault, idle=0.3)
    before = fds()
    with cache.open([Granted(decision(1, A), 1, A)]):
        pass
    assert cache.cached() == {(A, DATA_FILE): 0}
    with cache.open([Granted(decision(1, A), 1, A)]):  # reopened within the idle time: no decryption
        assert cache.decryptions == 1
    deadline = time.monotonic() + 5
    while cache.cached() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.cached() == {}
    assert fds() == before


@pytest.mark.parametrize(
    "granted",
    [
        Granted(decision(1, A, allowed=False), 1, A),
        Granted(decision(2, B), 2, A),  # a decision about B does not open A
        Granted(decision(1, A, seq=0), 1, A),
    ],
    ids=["denied", "other-snapshot", "unrecorded"],
)
def test_a_cached_snapshot_is_not_handed_out_without_its_own_decision(vault: Vault, granted: Granted) -> None:
    cache = SnapshotCache(vault, idle=60)
    with cache.open([Granted(decision(1, A), 1, A)]):
        before = fds()
        with pytest.raises(WorkspaceError, match="refusing to decrypt"):
            cache.open([granted])
        assert fds() == before
        assert cache.cached() == {(A, DATA_FILE): 1}  # the refused caller holds nothing
    cache.clear()
    assert cache.cached() == {}


def test_concurrent_opens_decrypt_once(vault: Vault) -> None:
    cache = SnapshotCache(vault, idle=0)
    leases: list[SnapshotLease] = []
    threads = [
        threading.Thread(target=lambda: leases.append(cache.open([Granted(decision(1, A), 1, A)])))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.decryptions == 1 and len({lease.fds[0] for lease in leases}) == 1
    for lease in leases:
        lease.close()
    assert cache.cached() == {}


def test_a_key_rotation_is_a_miss_and_the_old_plaintext_goes_with_its_last_lease(
    vault: Vault, tmp_path: Path
) -> None:
    cache = SnapshotCache(vault, idle=60)
    old = cache.open([Granted(decision(1, A), 1, A)])
    new_kek = AesGcmKek(bytes(range(1, 33)), "next")
    Vault(vault.root, AesGcmKek(bytes(range(32)), "test")).rotate_kek(new_kek)  # `renkei rotate-key`
    rotated = Vault(vault.root, new_kek)  # the hub once it has loaded the new KEK
    with pytest.raises(WrongKekError):
        cache.open([Granted(decision(1, A), 1, A)])  # the old KEK no longer opens it: refused, not served
    assert cache.cached() == {}  # and the copy decrypted before the rotation is handed out no more
    cache.vault = rotated
    with cache.open([Granted(decision(1, A), 1, A)]) as fresh:
        assert cache.decryptions == 2  # decrypted afresh under the new key, not the cached copy
        assert memfd_inode(fresh.fds[0]) != memfd_inode(old.fds[0])
    stale = old.fds[0]
    old.close()  # the stale copy was detached: closed with its last lease, not kept for the idle time
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(stale)


def test_a_derived_value_is_built_once_for_the_same_snapshots_and_only_under_their_decisions(
    vault: Vault,
) -> None:
    cache = SnapshotCache(vault, idle=60)
    builds: list[list[bytes]] = []

    def build(opened: list[int]) -> bytes:
        builds.append(sorted(os.pread(fd, 100, 0) for fd in opened))
        return b"merged"

    both = [Granted(decision(1, A), 1, A), Granted(decision(2, B), 2, B)]
    assert cache.derived("merged", both, RECORD_KEYS_FILE, build) == b"merged"
    assert cache.derived("merged", both[::-1], RECORD_KEYS_FILE, build) == b"merged"  # the order is no matter
    assert len(builds) == 1 and cache.decryptions == 2
    assert cache.cached() == {(A, RECORD_KEYS_FILE): 0, (B, RECORD_KEYS_FILE): 0}  # the files: idle, expiring
    cache.derived("merged", both[:1], RECORD_KEYS_FILE, build)  # another set of snapshots: built for it
    assert len(builds) == 2
    with pytest.raises(WorkspaceError, match="refusing to decrypt"):
        cache.derived(
            "merged", [both[0], Granted(decision(2, B, allowed=False), 2, B)], RECORD_KEYS_FILE, build
        )
    assert len(builds) == 2
    cache.clear()
    assert cache.derived_kept() == [] and cache.cached() == {}


def test_with_no_idle_time_nothing_derived_is_kept(vault: Vault) -> None:
    cache = SnapshotCache(vault, idle=0)
    one = [Granted(decision(1, A), 1, A)]
    for _ in range(2):
        assert cache.derived("merged", one, RECORD_KEYS_FILE, lambda fds: b"x") == b"x"
    assert cache.decryptions == 2 and cache.derived_kept() == [] and cache.cached() == {}
