"""The analysis path's one error type: a request it refuses, with the reason in Japanese and English."""

from __future__ import annotations

from renkei.errors import RenkeiError
from renkei.hub.access.authz import Actor, Forbidden


class AnalysisError(RenkeiError):
    """A result the rules do not let the hub show or export as asked (the message says why and what to do)."""


class ReleaseNotFound(AnalysisError):  # noqa: N818
    """No released table of that id belongs to the caller."""


def analyst_id(actor: Actor) -> int:
    """The user behind an analysis request; a console or anonymous actor is refused."""
    if actor.user_id is None:
        raise Forbidden("分析は指定職員のみが行えます", "only designated staff analyse data")
    return actor.user_id
