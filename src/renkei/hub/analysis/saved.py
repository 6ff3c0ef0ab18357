"""Saved analyses: a builder request or SQL text saved by name and re-run later; never a result."""

from __future__ import annotations

from sqlalchemy import select

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Actor
from renkei.hub.analysis.errors import AnalysisError, analyst_id
from renkei.hub.analysis.ledger import (
    ReleaseKind,
    SavedAnalysis,
)
from renkei.hub.audit_actions import AuditAction
from renkei.hub.home import Hub
from renkei.hub.tables.request import TableRequest


def save_analysis(
    hub: Hub,
    actor: Actor,
    name: str,
    definition: TableRequest | str,
    *,
    theme: str = "",
    clock: Clock = SYSTEM_CLOCK,
) -> SavedAnalysis:
    """Save (or replace) the caller's analysis ``name``: a builder request or SQL text, never a result."""
    user_id = analyst_id(actor)
    if not name.strip() or len(name) > 200:
        raise AnalysisError("名前は 1〜200 文字です", "a name has 1 to 200 characters", None)
    kind = ReleaseKind.SQL if isinstance(definition, str) else ReleaseKind.TABLE
    body = {"sql": definition} if isinstance(definition, str) else definition.model_dump(mode="json")
    now = clock.now()
    with hub.session() as session:
        saved = session.scalars(
            select(SavedAnalysis).where(SavedAnalysis.user_id == user_id, SavedAnalysis.name == name)
        ).first() or SavedAnalysis(user_id=user_id, name=name, created_at=now)
        saved.kind, saved.definition, saved.theme, saved.updated_at = kind, body, theme, now
        session.add(saved)
        session.commit()
        session.refresh(saved)
        session.expunge(saved)
    hub.audit.append(
        actor=actor.name,
        action=AuditAction.ANALYSIS_SAVE,
        resource=f"analysis/{saved.id}",
        details={"kind": kind},
    )
    return saved


def saved_analyses(hub: Hub, actor: Actor) -> list[SavedAnalysis]:
    with hub.session() as session:
        found = list(
            session.scalars(
                select(SavedAnalysis)
                .where(SavedAnalysis.user_id == analyst_id(actor))
                .order_by(SavedAnalysis.name)
            )
        )
        session.expunge_all()
    return found
