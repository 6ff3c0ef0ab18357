"""Asking the choke point on a face's behalf: refusals as errors, and refusals for a missing object as 404."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from renkei.clock import Clock
from renkei.errors import RenkeiError
from renkei.hub.access.authz import Action, Actor, Decision, Forbidden, Resource, authorize
from renkei.hub.home import Hub

NOT_FOUND_POLICY = "deny:not-found"  # the rules' policy for a resource that names no object


class NotFoundError(RenkeiError):
    """The request names an object that does not exist.

    Only a designated user ever learns this: ``authorize()`` checks the user before any rule looks the object up.
    """

    def __init__(self, ja: str = "指定されたデータが見つかりません", en: str = "not found") -> None:
        super().__init__(ja, en)


def require(
    db: Session, hub: Hub, actor: Actor, action: Action, resource: Resource, clock: Clock
) -> Decision:
    """authorize(), raising the verdict's error when denied (NotFoundError when the object does not exist)."""
    decision = authorize(db, hub.audit, actor, action, resource, clock=clock)
    verdict = decision.verdict
    if not verdict.allowed:
        if verdict.policy == NOT_FOUND_POLICY:
            raise NotFoundError(verdict.reason_ja, verdict.reason_en)
        raise verdict.error(verdict.reason_ja, verdict.reason_en, decision)
    return decision


def allowed(db: Session, hub: Hub, actor: Actor, action: Action, resource: Resource, clock: Clock) -> bool:
    """authorize() as a bool, for filtering a list object by object (each one is a recorded decision)."""
    return authorize(db, hub.audit, actor, action, resource, clock=clock).allowed


@contextmanager
def missing_as_not_found() -> Iterator[None]:
    """For workflow functions that call check() themselves: a refusal for a missing object is NotFoundError."""
    try:
        yield
    except Forbidden as exc:
        if exc.decision is not None and exc.decision.verdict.policy == NOT_FOUND_POLICY:
            raise NotFoundError(exc.ja, exc.en) from None
        raise
