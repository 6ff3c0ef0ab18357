"""The sandboxed SQL workspace over an analyst's granted snapshots (issue 8, items 1-2).

Exports are resolved lazily: the worker process imports :mod:`.worker` through this package, and it must not
pull in the catalog, the vault or SQLAlchemy (the worker holds no key and touches no database).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "QueryRefused",
    "QueryTimeout",
    "ViewInfo",
    "Workspace",
    "WorkspaceClosed",
    "WorkspaceError",
    "WorkspaceLimits",
]


def __getattr__(name: str) -> Any:
    if name in ("QueryRefused", "QueryTimeout", "WorkspaceClosed", "WorkspaceError"):
        from renkei.hub.workspace import errors  # noqa: PLC0415 (lazy: see the docstring)

        return getattr(errors, name)
    if name in ("Workspace", "WorkspaceLimits", "ViewInfo"):
        from renkei.hub.workspace import workspace  # noqa: PLC0415

        return getattr(workspace, name)
    raise AttributeError(name)
