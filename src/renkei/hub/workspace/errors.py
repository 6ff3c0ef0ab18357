"""Errors of the workspace; each says in Japanese and English what happened and whether it still works."""

from __future__ import annotations

from renkei.errors import RenkeiError


class WorkspaceError(RenkeiError):
    """The workspace cannot be opened or used (sandbox, worker, lock-down)."""


class WorkspaceClosed(WorkspaceError):  # noqa: N818 (a state, like Forbidden)
    """The workspace is closed (by the user, a revoked or expired grant, or a killed worker)."""


class QueryRefused(WorkspaceError):  # noqa: N818
    """The query is not a single SELECT, or its result cannot be returned."""


class QueryTimeout(WorkspaceError):  # noqa: N818
    """The query ran past its wall-clock limit and was interrupted (or its worker killed)."""

    def __init__(self, ja: str, en: str, *, closed: bool) -> None:
        super().__init__(ja, en)
        self.closed = closed  # True when the worker had to be killed and the workspace is gone


class QueryFailed(WorkspaceError):  # noqa: N818
    """DuckDB reported an error for the query; the workspace stays open."""
