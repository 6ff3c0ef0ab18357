"""Control results reused across workspaces: the same hub SQL over the same snapshots has the same answer.

A control query (the table builder's cells, the re-derived groups of a user's aggregate) reads only the
opened snapshots, which never change once imported, and the record keys, which are a function of the IDs. So
its result is a function of the SQL text and the set of snapshots, and a second workspace (another analyst,
the same dashboard refreshed) asking the same is given the first one's result instead of scanning
millions of rows again. What is kept is the raw result (counts and cell keys, before disclosure control),
in this process only, bounded in bytes, least recently used first out. Nothing here decides or audits: the
workspace still authorizes and records every query it answers from here (``reused`` in its audit entry).

Only what the caller declares deterministic is kept (the table builder's compiled SQL always is; user SQL
only when :func:`renkei.hub.sql.control.analyse` found no function outside its deterministic list).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import pyarrow as pa

# Workspace.granted: (snapshot id, row-level) of each opened snapshot; a kept result's key adds the SQL.
GrantedKey = frozenset[tuple[int, bool]]
Key = tuple[GrantedKey, str]


class ControlResults:
    """At most ``max_bytes`` of control results, keyed by (the opened snapshots, the SQL).

    A result being computed is computed once: a second caller asking for it meanwhile waits for the first
    (:meth:`get` with ``wait``) instead of scanning the same rows beside it — 40 analysts opening the same
    dashboard at nine o'clock run its queries once."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._tables: OrderedDict[Key, pa.Table] = OrderedDict()
        self._running: dict[Key, threading.Event] = {}  # results a caller is computing now
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, granted: GrantedKey, sql: str, *, wait: float = 0.0) -> pa.Table | None:
        """The kept result; else None, and the caller computes it and then calls :meth:`put` or
        :meth:`abandon`. While another caller computes it, this waits up to ``wait`` seconds for its result
        (past that, or if it failed, this caller computes it too)."""
        key = (granted, sql)
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                table = self._tables.get(key)
                if table is not None:
                    self._tables.move_to_end(key)
                    self.hits += 1
                    return table
                running = self._running.get(key)
                if running is None or time.monotonic() >= deadline:
                    if running is None and self.max_bytes > 0:
                        self._running[key] = threading.Event()
                    self.misses += 1
                    return None
            running.wait(max(0.0, deadline - time.monotonic()))

    def put(self, granted: GrantedKey, sql: str, table: pa.Table) -> None:
        key = (granted, sql)
        size = table.nbytes
        with self._lock:
            self._finished(key)
            if size > self.max_bytes:
                return  # larger than the whole cache (or the cache is off): never kept
            previous = self._tables.pop(key, None)
            if previous is not None:
                self._bytes -= previous.nbytes
            self._tables[key] = table
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._tables.popitem(last=False)
                self._bytes -= evicted.nbytes

    def abandon(self, granted: GrantedKey, sql: str) -> None:
        """The caller that was computing the result failed: whoever waits for it stops waiting."""
        with self._lock:
            self._finished((granted, sql))

    def _finished(self, key: Key) -> None:
        running = self._running.pop(key, None)
        if running is not None:
            running.set()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._tables)
