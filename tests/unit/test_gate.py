"""The workspace's gate decrypts a snapshot's data or stored record keys only under a decision for exactly that
snapshot; every decision is checked before anything is decrypted."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from renkei.hub.access.authz import Action, Decision, Resource, ResourceType, Verdict
from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE
from renkei.hub.keys import AesGcmKek
from renkei.hub.vault import SnapshotRef, Vault
from renkei.hub.workspace.errors import WorkspaceError
from renkei.hub.workspace.gate import Granted, open_granted_snapshots
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
