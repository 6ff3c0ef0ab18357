"""Exports: a released table as CSV or XLSX, within the download permission and quota, hashed in the audit log."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType, deny, record_decision
from renkei.hub.access.quotas import reserve_export
from renkei.hub.analysis.errors import AnalysisError, ReleaseNotFound
from renkei.hub.analysis.ledger import (
    Export,
    ExportFormat,
    Release,
    ReleaseStatus,
)
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import writing
from renkei.hub.home import Hub
from renkei.hub.tables.files import to_csv, to_xlsx


@dataclass(frozen=True, slots=True)
class ExportFile:
    export_id: int
    file_name: str
    content: bytes
    sha256: str


def export_release(
    hub: Hub, actor: Actor, release_id: int, fmt: ExportFormat, *, clock: Clock = SYSTEM_CLOCK
) -> ExportFile:
    """Write a released table as CSV or XLSX: only the requester's own released (or approved) tables, within
    the download permission and quota (one atomic reservation); the file's SHA-256 goes to the audit log."""
    with hub.session() as session:
        release = _own_release(session, hub, actor, release_id)
        if release.status not in {ReleaseStatus.RELEASED, ReleaseStatus.APPROVED}:
            raise AnalysisError(
                f"集計表 {release_id} は審査中または却下のため出力できません（状態: {release.status}）",
                f"release {release_id} is {release.status}; only released or approved tables are exported",
                None,
            )
        shown = release.shown
        content = _file(fmt, shown, release.record)
        snapshot_ids = list(release.snapshot_ids)
    digest = hashlib.sha256(content).hexdigest()
    file_name = f"renkei-release-{release_id}.{fmt.value}"
    with hub.session() as session:
        # The place in the quota commits first, on its own: a failure after it cannot be used to go past a
        # limit (the place stays used). The export row and its `export.file` entry then commit together, so a
        # kill leaves either both or neither (docs/reliability.md).
        reservation_id = reserve_export(
            session, hub.audit, actor, snapshot_ids, len(shown["rows"]), len(content), clock=clock
        ).id
        with writing(session):
            export = Export(
                release_id=release_id,
                user_id=actor.user_id,
                format=fmt.value,
                file_name=file_name,
                rows=len(shown["rows"]),
                bytes=len(content),
                sha256=digest,
                created_at=clock.now(),
            )
            session.add(export)
            session.flush()
            export_id = export.id
            hub.audit.append_in(
                session,
                actor=actor.name,
                action=AuditAction.EXPORT_FILE,
                resource=f"export/{export_id}",
                terminal=actor.terminal,  # where the file went: the 点検 asks which terminal downloaded what
                client_addr=actor.client_addr,
                details={
                    "release": release_id,
                    "sha256": digest,
                    "bytes": len(content),
                    "reservation": reservation_id,
                },
            )
    return ExportFile(export_id, file_name, content, digest)


def _file(fmt: ExportFormat, shown: dict[str, Any], record: dict[str, Any]) -> bytes:
    header, rows, notes = shown["header"], shown["rows"], shown["notes"]
    if fmt is ExportFormat.CSV:
        return to_csv(header, rows, notes)
    return to_xlsx(header, rows, record, notes)


def _own_release(session: Session, hub: Hub, actor: Actor, release_id: int) -> Release:
    """The caller's own release; else "not found" (another's is not told from none), on the record as a denied
    export decision whose policy does tell them apart (deny:not-found, deny:not-owner)."""
    release = session.get(Release, release_id)
    if release is None or release.user_id != actor.user_id:
        ja = f"集計表 {release_id} はありません（ご自身が作成したものだけを出力できます）"
        en = f"no release {release_id} of yours"
        policy = "deny:not-found" if release is None else "deny:not-owner"
        session.rollback()  # the decision commits on its own connection: this session holds nothing open
        resource = Resource(ResourceType.EXPORT.value, None, f"release/{release_id}")
        record_decision(hub.audit, actor, Action.EXPORT.value, resource, deny(policy, ja, en))
        raise ReleaseNotFound(ja, en, None)
    return release
