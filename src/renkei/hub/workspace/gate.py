"""The one place that decrypts a snapshot for analysis (ARCHITECTURE invariant 5).

A snapshot's plaintext — its data, or the record keys stored beside it — is produced only against an allowed,
recorded :class:`Decision` of ``authorize()`` for exactly that snapshot and a read action.
``tests/unit/test_decrypt_callers.py`` fails if any other module (except the vault's and the importer's own
verification) calls the vault's decrypting methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    if name not in ANALYSIS_FILES:
        raise WorkspaceError(
            "分析で読めるのはデータとレコードキーだけです",
            f"a workspace does not read {name!r} of a snapshot",
        )
    for item in granted:
        _check(item)
    return vault.decrypt_to_memfds([(item.ref, name) for item in granted])


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
