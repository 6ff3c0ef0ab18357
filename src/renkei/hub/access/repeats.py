"""Events anyone can repeat at will, on the record without letting them flood it.

A request with an unknown session token, or one that poses as the reverse proxy, costs an attacker nothing;
one audit entry each would let them grow the log without bound (and bury what matters). So such an event is
counted per source (e.g. action, reason, client address, terminal) in windows of :data:`WINDOW`, and only the
1st, 2nd, 4th, 8th … occurrence of a window is logged, each entry carrying the count so far. N requests in a
window therefore leave about log2(N) + 1 entries, and the last one says "at least this many". When more than
:data:`MAX_SOURCES` sources are live at once, further ones are counted together under :data:`ALL_SOURCES`
(the entry then says so), so neither memory nor the log grows with the number of addresses an attacker uses.

The counts are in the process's memory: a restart begins new windows (and so logs the next occurrence).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from renkei.clock import SYSTEM_CLOCK, Clock

WINDOW = dt.timedelta(minutes=10)
MAX_SOURCES = 1024
ALL_SOURCES: tuple[str, ...] = ("*",)  # the key under which sources beyond MAX_SOURCES are counted


@dataclass(frozen=True, slots=True)
class Occurrence:
    """The occurrence to log: its number in the current window, when that window began, and for whom."""

    count: int
    window_started: dt.datetime
    window: dt.timedelta
    all_sources: bool  # counted together with every source beyond MAX_SOURCES

    def details(self) -> dict[str, object]:
        """What the audit entry says about the repetition."""
        details: dict[str, object] = {
            "occurrence": self.count,
            "window_started": self.window_started.astimezone(dt.UTC).isoformat(),
            "window_seconds": int(self.window.total_seconds()),
        }
        if self.all_sources:
            details["all_sources"] = True
        return details


@dataclass(slots=True)
class _Window:
    started: dt.datetime
    count: int


class RepeatedEvents:
    """Counts repeatable events per source and says which occurrences to log (thread-safe)."""

    def __init__(
        self, clock: Clock = SYSTEM_CLOCK, *, window: dt.timedelta = WINDOW, max_sources: int = MAX_SOURCES
    ) -> None:
        self.clock = clock
        self.window = window
        self.max_sources = max_sources
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, ...], _Window] = {}

    def occurrence(self, source: tuple[str, ...]) -> Occurrence | None:
        """Count one event of ``source``: the occurrence to log, or None when this one is only counted."""
        now = self.clock.now()
        with self._lock:
            key = self._key(source, now)
            current = self._windows.get(key)
            if current is None or now - current.started >= self.window:
                current = self._windows[key] = _Window(now, 0)
            current.count += 1
            count = current.count
            started = current.started
        if count & (count - 1):  # not a power of two: counted, not logged
            return None
        return Occurrence(count, started, self.window, all_sources=key == ALL_SOURCES)

    def _key(self, source: tuple[str, ...], now: dt.datetime) -> tuple[str, ...]:
        if source in self._windows or len(self._windows) < self.max_sources:
            return source
        cutoff = now - self.window
        for stale in [k for k, w in self._windows.items() if w.started <= cutoff and k != ALL_SOURCES]:
            del self._windows[stale]
        # ALL_SOURCES takes the last place, so the table never holds more than max_sources + 1 keys.
        return source if len(self._windows) < self.max_sources else ALL_SOURCES
