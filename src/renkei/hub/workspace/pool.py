"""One workspace per login session, kept between the session's requests (the portal's workspaces).

Opening a workspace (authorize, decrypt every granted snapshot, start and lock down the worker) costs seconds
at city scale; a session's later requests reuse it. A kept workspace is closed:

- at logout (:meth:`SessionWorkspaces.close_session`), and when its login session has ended otherwise — timed
  out (idle or absolute), ended by a password change or a disabled user — found by :meth:`sweep`;
- when the session's grants change: a revoked or expired grant, or a new one. Each lease compares the grants
  with those the workspace opened and opens a new workspace if they differ; :meth:`sweep` closes idle ones
  whose grants lapsed, so no decrypted snapshot outlives its grant by more than a sweep interval. (While a
  workspace is used, each of its queries re-checks the grants itself and closes it on a lapse.)
- after ``idle`` without a request (the setting ``web.workspace_idle_seconds``);
- to make room: at most ``max_workspaces`` per process (the setting ``web.max_workspaces``); the least recently used workspace not in use is
  closed, and if every one is in use the request is refused (:class:`WorkspacesFull`, 503).

A daemon thread sweeps every :data:`SWEEP_SECONDS` once the first workspace is kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Actor
from renkei.hub.access.sessions import IDLE_TIMEOUT, SessionRecord
from renkei.hub.home import Hub
from renkei.hub.settings import DEFAULTS
from renkei.hub.workspace.errors import WorkspaceError
from renkei.hub.workspace.workspace import GrantedSet, Workspace, granted_set

DEFAULT_MAX_WORKSPACES = DEFAULTS.web.max_workspaces  # the settings web.max_workspaces and
DEFAULT_IDLE = dt.timedelta(seconds=DEFAULTS.web.workspace_idle_seconds)  # web.workspace_idle_seconds
SWEEP_SECONDS = 30.0

logger = logging.getLogger("renkei.workspace")

Opener = Callable[[Hub, Actor, Clock], Workspace]


class WorkspacesFull(WorkspaceError):  # noqa: N818 (a state)
    """Every kept workspace is in use and the process keeps no more (503: ``ERRORS`` in renkei.errors)."""


def _open(hub: Hub, actor: Actor, clock: Clock) -> Workspace:
    return Workspace.open(hub, actor, clock=clock)


@dataclass
class _Kept:
    workspace: Workspace
    user_id: int
    grants: GrantedSet
    last_used: dt.datetime
    leases: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # one open or close at a time


class SessionWorkspaces:
    """The workspaces of the portal's login sessions, by session id (``Actor.session_id``)."""

    def __init__(
        self,
        hub: Hub,
        clock: Clock = SYSTEM_CLOCK,
        *,
        max_workspaces: int = DEFAULT_MAX_WORKSPACES,
        idle: dt.timedelta = DEFAULT_IDLE,
        opener: Opener = _open,
    ) -> None:
        self.hub, self.clock = hub, clock
        self.max_workspaces, self.idle = max_workspaces, idle
        self._opener = opener
        self._kept: dict[str, _Kept] = {}
        self._opening: dict[str, threading.Lock] = {}
        self._reserved = 0  # workspaces being opened now, counted against max_workspaces
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    # -- leasing ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self, actor: Actor) -> Iterator[Workspace]:
        """The session's workspace (opened now if it has none, or none over its current grants)."""
        if not actor.session_id or actor.user_id is None:
            raise WorkspaceError(
                "ログインセッションのない作業環境は保持しません", "only a login session keeps a workspace"
            )
        kept = self._acquire(actor)
        try:
            yield kept.workspace
        finally:
            with self._lock:
                kept.leases -= 1
                kept.last_used = self.clock.now()
                if kept.workspace.closed and self._kept.get(actor.session_id) is kept:
                    del self._kept[actor.session_id]  # a lapsed grant or a killed worker closed it

    def _acquire(self, actor: Actor) -> _Kept:
        session_id = actor.session_id
        assert actor.user_id is not None
        with self._lock:
            opening = self._opening.setdefault(session_id, threading.Lock())
        with opening:  # two requests of one session open one workspace
            grants = self._grants(actor.user_id)
            with self._lock:
                kept = self._kept.get(session_id)
                if kept is not None and self._reusable(kept, actor.user_id, grants):
                    kept.leases += 1
                    return kept
            if kept is not None:
                self._close(session_id, kept, "the session's grants changed")
            self._reserve_room()
            try:
                workspace = self._opener(self.hub, actor, self.clock)
            finally:
                with self._lock:
                    self._reserved -= 1
            kept = _Kept(workspace, actor.user_id, workspace.granted, self.clock.now(), leases=1)
            with self._lock:
                earlier = self._kept.get(session_id)
                self._kept[session_id] = kept
            if earlier is not None:  # only if a pruned opening lock let two opens race: keep one
                self._close_workspace(earlier, "replaced by the session's newer workspace")
            self._start_sweeper()
            return kept

    def _reusable(self, kept: _Kept, user_id: int, grants: GrantedSet) -> bool:
        return not kept.workspace.closed and kept.user_id == user_id and kept.grants == grants

    def _reserve_room(self) -> None:
        """A place for one more workspace (kept or being opened, never more than ``max_workspaces``): close
        the least recently used one not in use while the pool is full; refuse if all are in use."""
        self.sweep()
        while True:
            with self._lock:
                if len(self._kept) + self._reserved < self.max_workspaces:
                    self._reserved += 1
                    return
                idle = sorted((k.last_used, s) for s, k in self._kept.items() if k.leases == 0)
                if not idle:
                    raise WorkspacesFull(
                        "作業環境が上限まで使用中です。しばらくしてからやり直してください",
                        f"all {self.max_workspaces} workspaces of this server are in use; try again shortly",
                    )
                session_id = idle[0][1]
                kept = self._kept[session_id]
            self._close(session_id, kept, "closed to make room for another session's workspace")

    # -- closing ------------------------------------------------------------------------------------------

    def close_session(self, session_id: str, reason: str = "logged out") -> None:
        """Close the session's workspace, if it has one (waits for a query it is running)."""
        with self._lock:
            kept = self._kept.get(session_id)
        if kept is not None:
            self._close(session_id, kept, reason)

    def sweep(self) -> int:
        """Close what must not stay open: ended sessions, idle workspaces, lapsed grants. Returns how many."""
        now = self.clock.now()
        with self._lock:
            kept = dict(self._kept)
        if not kept:
            return 0
        live = self._live_sessions(set(kept), now)
        closing: list[tuple[str, _Kept, str]] = []
        for session_id, entry in kept.items():
            if entry.workspace.closed:
                closing.append((session_id, entry, entry.workspace.closed_reason))
            elif session_id not in live:
                closing.append((session_id, entry, "the login session ended"))
            elif entry.leases == 0 and now - entry.last_used >= self.idle:
                closing.append((session_id, entry, f"idle for {self.idle}"))
            elif entry.leases == 0 and self._grants(entry.user_id) != entry.grants:
                closing.append((session_id, entry, "the session's grants changed (revoked, expired or new)"))
        for session_id, entry, reason in closing:
            self._close(session_id, entry, reason)
        with self._lock:  # forget the opening locks of sessions that keep nothing and open nothing now
            for session_id in [
                s for s, lock in self._opening.items() if s not in self._kept and not lock.locked()
            ]:
                del self._opening[session_id]
        return len(closing)

    def close_all(self, reason: str = "the portal stopped") -> None:
        self._stop.set()
        with self._lock:
            kept = dict(self._kept)
        for session_id, entry in kept.items():
            self._close(session_id, entry, reason)
        self.hub.snapshot_cache.clear()  # what the closed workspaces shared, idle now

    def _close(self, session_id: str, kept: _Kept, reason: str) -> None:
        with self._lock:
            if self._kept.get(session_id) is kept:
                del self._kept[session_id]
        self._close_workspace(kept, reason)

    def _close_workspace(self, kept: _Kept, reason: str) -> None:
        with kept.lock:
            kept.workspace.close(reason)

    # -- state --------------------------------------------------------------------------------------------

    def kept(self, session_id: str) -> Workspace | None:
        """The session's kept workspace, if any (for tests and the operator)."""
        with self._lock:
            entry = self._kept.get(session_id)
        return entry.workspace if entry is not None else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    def _grants(self, user_id: int) -> GrantedSet:
        with self.hub.session() as session:
            return granted_set(session, user_id, self.clock)

    def _live_sessions(self, session_ids: set[str], now: dt.datetime) -> set[str]:
        """The ids among ``session_ids`` of sessions that are still valid (not ended, not timed out)."""
        ids = [int(s) for s in session_ids if s.isdigit()]
        with self.hub.session() as session:
            alive = session.scalars(
                select(SessionRecord.id).where(
                    SessionRecord.id.in_(ids),
                    SessionRecord.expires_at > now,
                    SessionRecord.last_seen_at > now - IDLE_TIMEOUT,
                )
            ).all()
        return {str(i) for i in alive}

    def _start_sweeper(self) -> None:
        with self._lock:
            if self._sweeper is not None:
                return
            self._sweeper = threading.Thread(
                target=self._sweep_forever, name="workspace-sweeper", daemon=True
            )
        self._sweeper.start()

    def _sweep_forever(self) -> None:
        while not self._stop.wait(SWEEP_SECONDS):
            try:
                self.sweep()
            except Exception:  # the next round tries again; a failed sweep must not end the thread
                logger.exception("sweeping the kept workspaces failed")
