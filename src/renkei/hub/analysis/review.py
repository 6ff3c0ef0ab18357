"""Review: a steward of an owning department (never the requester) approves or rejects a table in review.

The decision who may is the ``release.review`` rule of ``authorize()`` (registered here, listed in
``renkei.hub.access.authz.RULE_MODULES`` and in ``authz_matrix.yaml``), so it is recorded like every other
access decision, denials included."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import (
    Action,
    Actor,
    InvalidTransition,
    Principal,
    Resource,
    ResourceType,
    Verdict,
    allow,
    authorize_each,
    check,
    deny,
    resolve_principal,
    rule,
)
from renkei.hub.access.people import Role
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
    """A steward of an owning department (never the requester) approves or rejects a table in review.

    Whether the caller may is decided by ``authorize()`` (action ``release.review``), which records the
    decision, allowed or denied; the outcome and its reason are logged as ``release.review``."""
    if not comment.strip():
        raise AnalysisError("理由を入力してください", "give a reason", None)
    with hub.session() as session:
        decision = check(
            session, hub.audit, actor, Action.RELEASE_REVIEW, release_resource(release_id), clock=clock
        )
        release = session.get_one(Release, release_id, populate_existing=True)
        release.status = ReleaseStatus.APPROVED if approve else ReleaseStatus.REJECTED
        release.reviewer_id = actor.user_id
        release.review_comment = comment
        release.reviewed_at = clock.now()
        session.commit()
        session.refresh(release)
        session.expunge(release)
    hub.audit.append(
        actor=actor.name,
        action=AuditAction.RELEASE_REVIEW,
        resource=f"release/{release_id}",
        details={"decision": release.status, "comment": comment, "authz_seq": decision.audit_seq},
    )
    return release


def in_review_for(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[Release]:
    """Tables waiting for the caller's decision: in review, and ``authorize()`` allows ``release.review``
    (one recorded decision for the list). Anyone who is not a steward gets an empty list, undecided."""
    with hub.session() as session:
        principal = resolve_principal(session, actor)
        if principal is None or principal.role is not Role.STEWARD:  # only candidates; authorize() decides
            return []
        candidates = list(
            session.scalars(
                select(Release)
                .where(Release.status == ReleaseStatus.REVIEW, Release.user_id != principal.user_id)
                .order_by(Release.id)
            )
        )
        session.expunge_all()
        decisions = authorize_each(
            session,
            hub.audit,
            actor,
            Action.RELEASE_REVIEW,
            [release_resource(r.id) for r in candidates],
            clock=clock,
        )
    return [r for r, d in zip(candidates, decisions, strict=True) if d.allowed]


def release_resource(release_id: int) -> Resource:
    return Resource(ResourceType.RELEASE.value, release_id, f"release/{release_id}")


@rule(Action.RELEASE_REVIEW, on=[ResourceType.RELEASE])
def _may_review(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    """A steward of a department owning one of the table's datasets, who did not request it; the table must
    be waiting in review. Admins run the hub and do not decide (as with applications)."""
    release = session.get(Release, resource.id, populate_existing=True) if resource.id is not None else None
    if release is None:
        return deny("deny:not-found", "集計表がありません", "no such release")
    label = f"release/{release.id}"
    if principal.role is not Role.STEWARD:
        return deny("deny:role", "審査はデータ管理者が行います", "only stewards review", label=label)
    if principal.user_id == release.user_id:
        return deny(
            "deny:separation-of-duties",
            "申請者本人は審査できません",
            "the requester cannot review their own table",
            label=label,
        )
    owners = set(session.scalars(select(Dataset.owner_id).where(Dataset.name.in_(release.datasets))))
    if principal.department_id not in owners:
        return deny(
            "deny:not-owner",
            "所管課のデータ管理者のみが審査できます",
            "only a steward of a department owning the table's data reviews it",
            label=label,
        )
    if release.status != ReleaseStatus.REVIEW:  # told only to those who could review it
        return deny(
            "deny:state",
            "審査待ちの集計表ではありません",
            "not a table in review",
            label=label,
            error=InvalidTransition,
        )
    return allow(
        "owning-steward", "所管課のデータ管理者です", "a steward of an owning department", label=label
    )
