"""How many workspace queries run at once in one process (the setting ``workspace.max_running_queries``).

Every query of every workspace takes a slot before its worker starts it, and the query's wall clock starts
only then. A DuckDB query is CPU-bound and uses ``workspace.threads`` cores, so queries beyond the cores add no
throughput — only memory (each worker's buffers) and wall time, until every one of them runs past its limit.
With slots, a busy hub queues its analysts' queries (first come, first served, as the lock hands them out)
instead of failing them; a query that waits longer than ``workspace.queue_seconds`` is refused with
:class:`WorkspaceBusy` (503), and nothing has run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from renkei.hub.workspace.errors import WorkspaceError


class WorkspaceBusy(WorkspaceError):  # noqa: N818 (a state)
    """Every query slot stayed taken for ``workspace.queue_seconds`` (503: ``ERRORS`` in renkei.errors)."""


class QuerySlots:
    """A bounded number of running queries; the waiting ones wait in arrival order."""

    def __init__(self, slots: int, wait: float) -> None:
        self.slots = slots if slots > 0 else (os.cpu_count() or 1)
        self.wait = wait
        self._free = threading.Semaphore(self.slots)
        self._lock = threading.Lock()
        self.running = 0
        self.waiting = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            self.waiting += 1
        try:
            taken = self._free.acquire(timeout=self.wait)
        finally:
            with self._lock:
                self.waiting -= 1
        if not taken:
            raise WorkspaceBusy(
                f"分析の実行が混み合っています（{self.wait:.0f} 秒待ちました）。しばらくしてからやり直してください",
                f"the hub is busy: no query slot came free in {self.wait:.0f} s; try again shortly",
            )
        with self._lock:
            self.running += 1
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
            self._free.release()
