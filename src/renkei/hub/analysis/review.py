"""Review: a steward of an owning department (never the requester) approves or rejects a table in review."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Actor, Forbidden
from renkei.hub.access.people import Role, User
from renkei.hub.analysis.errors import AnalysisError
from renkei.hub.analysis.ledger import (
    Release,
    ReleaseStatus,
)
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset
from renkei.hub.home import Hub


def decide_review(
    hub: Hub, actor: Actor, release_id: int, *, approve: bool, comment: str, clock: Clock = SYSTEM_CLOCK
) -> Release:
    """A steward of an owning department (never the requester) approves or rejects a table in review."""
    if not comment.strip():
        raise AnalysisError("理由を入力してください", "give a reason", None)
    with hub.session() as session:
        release = session.get(Release, release_id)
        steward = session.get(User, actor.user_id) if actor.user_id is not None else None
        refusal = _review_refusal(session, release, steward)
        if refusal is not None:
            hub.audit.append(
                actor=actor.name,
                action=AuditAction.RELEASE_REVIEW,
                resource=f"release/{release_id}",
                details={"denied": refusal},
            )
            raise Forbidden(refusal, refusal)
        assert release is not None and steward is not None
        release.status = ReleaseStatus.APPROVED if approve else ReleaseStatus.REJECTED
        release.reviewer_id = steward.id
        release.review_comment = comment
        release.reviewed_at = clock.now()
        session.commit()
        session.refresh(release)
        session.expunge(release)
    hub.audit.append(
        actor=actor.name,
        action=AuditAction.RELEASE_REVIEW,
        resource=f"release/{release_id}",
        details={"decision": release.status, "comment": comment},
    )
    return release


def _review_refusal(session: Session, release: Release | None, steward: User | None) -> str | None:
    if release is None or release.status != ReleaseStatus.REVIEW:
        return "審査待ちの集計表ではありません / not a table in review"
    if steward is None or steward.role != Role.STEWARD or steward.disabled:
        return "審査はデータ管理者が行います / only stewards review"
    if steward.id == release.user_id:
        return "申請者本人は審査できません / the requester cannot review"
    owners = {d.owner_id for d in session.scalars(select(Dataset).where(Dataset.name.in_(release.datasets)))}
    if steward.department_id not in owners:
        return "所管課のデータ管理者のみが審査できます / only a steward of an owning department"
    return None


def in_review_for(hub: Hub, actor: Actor) -> list[Release]:
    """Tables waiting for the caller's decision: in review, of the caller's department's datasets, not their
    own. Anyone else (not a steward) gets an empty list."""
    with hub.session() as session:
        steward = session.get(User, actor.user_id) if actor.user_id is not None else None
        if steward is None or steward.role != Role.STEWARD or steward.disabled:
            return []
        owned = set(session.scalars(select(Dataset.name).where(Dataset.owner_id == steward.department_id)))
        waiting = [
            r
            for r in session.scalars(select(Release).where(Release.status == ReleaseStatus.REVIEW))
            if r.user_id != steward.id and owned & set(r.datasets)
        ]
        session.expunge_all()
    return waiting
