"""The one place that decrypts a snapshot for analysis (ARCHITECTURE invariant 5).

A snapshot's plaintext is produced only against an allowed, recorded :class:`Decision` of ``authorize()`` for
exactly that snapshot and a read action. ``tests/unit/test_decrypt_callers.py`` fails if any other module
(except the vault's and the importer's own verification) calls the vault's decrypting methods.
"""

from __future__ import annotations

from renkei.hub.access.authz import Action, Decision, ResourceType
from renkei.hub.catalog import Snapshot
from renkei.hub.vault import SnapshotRef, Vault
from renkei.hub.workspace.errors import WorkspaceError
from renkei.manifest import DATA_FILE

READ_ACTIONS = frozenset({Action.SNAPSHOT_READ.value, Action.SNAPSHOT_READ_ROWS.value})


def open_granted_snapshot(vault: Vault, decision: Decision, snapshot: Snapshot) -> int:
    """A sealed, read-only memfd with the snapshot's Parquet; the caller owns (and closes) the fd."""
    _check(decision, snapshot)
    ref = SnapshotRef(snapshot.dataset.name, snapshot.period, snapshot.version)
    return vault.decrypt_to_memfd(ref, DATA_FILE)


def _check(decision: Decision, snapshot: Snapshot) -> None:
    resource = decision.resource if isinstance(decision, Decision) else None
    problems = [
        (not isinstance(decision, Decision), "not a decision of authorize()"),
        (isinstance(decision, Decision) and not decision.allowed, "the decision denied access"),
        (isinstance(decision, Decision) and decision.action not in READ_ACTIONS, "not a read decision"),
        (resource is None or resource.type != ResourceType.SNAPSHOT.value, "not about a snapshot"),
        (resource is None or resource.id is None or resource.id != snapshot.id, "about another snapshot"),
        (isinstance(decision, Decision) and decision.audit_seq <= 0, "the decision was not recorded"),
    ]
    failed = [why for bad, why in problems if bad]
    if failed:
        raise WorkspaceError(
            "このスナップショットを復号する許可がありません",
            f"refusing to decrypt snapshot {snapshot.id}: {'; '.join(failed)}",
        )
