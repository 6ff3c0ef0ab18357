"""Asking the choke point on a face's behalf: refusals as errors, and refusals for a missing object as 404."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.orm import Session

from renkei.clock import Clock
from renkei.errors import RenkeiError
from renkei.hub.access.authz import Action, Actor, Decision, Forbidden, Resource, authorize, authorize_each
from renkei.hub.home import Hub

T = TypeVar("T")
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


def permitted(
    db: Session,
    hub: Hub,
    actor: Actor,
    action: Action,
    items: Sequence[T],
    resource: Callable[[T], Resource],
    clock: Clock,
) -> list[T]:
    """The items of a list the actor may see, each decided by authorize(), all recorded in ONE entry.

    One list request is one access: its entry names every object it covered (issue 9 item 8), instead of
    one entry per listed object.
    """
    decisions = authorize_each(db, hub.audit, actor, action, [resource(i) for i in items], clock=clock)
    return [item for item, decision in zip(items, decisions, strict=True) if decision.allowed]


@contextmanager
def missing_as_not_found() -> Iterator[None]:
    """For workflow functions that call check() themselves: a refusal for a missing object is NotFoundError."""
    try:
        yield
    except Forbidden as exc:
        if exc.decision is not None and exc.decision.verdict.policy == NOT_FOUND_POLICY:
            raise NotFoundError(exc.ja, exc.en) from None
        raise
